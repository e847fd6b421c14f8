"""readdir in kernel-sized pieces costs work in proportion to the directory, not its square.

The kernel reads a directory a buffer at a time (a few dozen READDIRPLUS entries per
request) and continues from the last position it accepted. The core computed the
attributes of every entry from that position to the end on each request, and the adapter
threw all but the first few dozen away: `ls -l` of 100,000 names then spent minutes in
attribute building (the bench's 100,000-entry listing overran its 600 s bound). Entries
are now produced as the adapter takes them."""

from __future__ import annotations

from mountsync.backend.memory import MemoryStore
from mountsync.core import nodes
from tests.support.rig import run_rig

N = 3000
PER_REQUEST = 30  # about what one READDIRPLUS buffer holds


def test_reading_a_directory_in_kernel_sized_pieces_builds_each_attr_about_once(tmp_path, monkeypatch):
    store = MemoryStore("b")
    for i in range(N):
        store.put(f"d/f{i:05d}", b"x")
    built = {"n": 0}
    original = nodes.Node.attr

    def counting_attr(self, ttl):
        built["n"] += 1
        return original(self, ttl)

    async def body(rig):
        ino = await rig.ino("d")
        dh = await rig.fs.opendir(ino)
        names: list[str] = []
        start = 0
        monkeypatch.setattr(nodes.Node, "attr", counting_attr)
        try:
            while True:
                taken = 0
                for name, _attr, position in await rig.fs.readdir(dh, start):
                    names.append(name)
                    start = position
                    taken += 1
                    if taken == PER_REQUEST:  # the kernel's buffer is full
                        break
                if taken < PER_REQUEST:
                    break
        finally:
            monkeypatch.setattr(nodes.Node, "attr", original)
            rig.fs.releasedir(dh)
        assert names == sorted(f"f{i:05d}" for i in range(N))
        # one attr per entry handed over, plus at most one per request not taken
        assert built["n"] <= N + N // PER_REQUEST + 1, built["n"]

    run_rig(body, tmp_path, store, metadata_ttl=3600)
