"""SPEC §3: keys that cannot be POSIX names are not shown, never modified, and no key makes
the daemon read or write outside its cache directory."""

import os

from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig

CRAFTED = ["../escape", "a/../../escape2", "/abs", "a//b", "./dot", "d/./x", "d/..", "nul\x00byte",
           "x" * 300, "ok/" + "y" * 256]


def test_crafted_keys_are_hidden_untouched_and_cannot_escape(tmp_path, allow_log):
    store = MemoryStore("b")
    for k in CRAFTED:
        store.put(k, b"crafted")
    store.put("a/fine.txt", b"fine")
    store.put("d/fine.txt", b"fine too")
    before = store.objects()
    outside = tmp_path.parent

    async def body(rig):
        names = await rig.listdir("")
        assert ".." not in names and "." not in names and "" not in names
        assert not any(len(n.encode()) > 255 or "\x00" in n for n in names)
        for d in [n for n in names if n in ("a", "d", "ok")]:
            for name in await rig.listdir(d):
                assert name not in (".", "..", "")
                await rig.read_file(f"{d}/{name}")
        assert await rig.read_file("a/fine.txt") == b"fine"
        await rig.write_file("a/new.txt", b"new")
        assert (await rig.sync()).ok

    run_rig(body, tmp_path, store, allow_delete=True)
    after = store.objects()
    assert {k: v for k, v in after.items() if k in CRAFTED} == {k: before[k] for k in CRAFTED}
    assert after["a/new.txt"] == b"new"
    for name in ("escape", "escape2", "abs", "dot"):
        assert not (outside / name).exists() and not (tmp_path / name).exists()
    # every file the daemon wrote is inside its cache dir (or the test's mountpoint path)
    cache = tmp_path / "cache"
    for dirpath, _dirs, files in os.walk(tmp_path):
        for f in files:
            assert os.path.realpath(os.path.join(dirpath, f)).startswith(str(cache))
