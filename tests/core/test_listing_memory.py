"""What a big listing keeps per name: no read state for files nobody reads, no event for
HEADs nobody waits for (the bench's peak RSS after `ls -l` of 100,000 objects: an idle
``Reader`` with its trio.Event is ~0.6 KB a file, a queued HEAD's event ~0.2 KB)."""

from __future__ import annotations

import trio

from mountsync.backend.memory import MemoryStore
from tests.core.test_ls_requests import _ls_l
from tests.support.rig import run_rig

N = 300


def _fill(store: MemoryStore) -> None:
    for i in range(N):
        store.put(f"d/f{i:04d}", b"x" * 10)


def test_listed_files_hold_no_read_state_until_read(tmp_path):
    store = MemoryStore("b")
    _fill(store)

    async def body(rig):
        out = await _ls_l(rig)
        assert len(out) == N
        d = rig.fs.tree.at("d")
        assert d is not None and d.children is not None
        assert [n for n in d.children.values() if n._reader is not None] == []
        assert await rig.read_file("d/f0007") == b"x" * 10
        with_reader = [name for name, n in d.children.items() if n._reader is not None]
        assert with_reader == ["f0007"]

    run_rig(body, tmp_path, store, metadata_ttl=3600)


def test_queued_heads_make_events_only_for_lookups_that_wait(tmp_path):
    store = MemoryStore("b")
    _fill(store)
    gate = trio.Event()
    original_head = store.head

    def slow_head(key: str):
        if key.startswith("d/f"):  # the files' HEADs wait until the test lets them go
            trio.from_thread.run(gate.wait)
        return original_head(key)

    store.head = slow_head  # type: ignore[method-assign]

    async def body(rig):
        try:
            await check(rig)
        finally:
            gate.set()

    async def check(rig):
        d = await rig.ino("d")
        dh = await rig.fs.opendir(d)
        names = [name for name, _a, _n in await rig.fs.readdir(dh, 0)]
        rig.fs.releasedir(dh)
        assert len(names) == N
        fetcher = rig.fs.listings.meta
        pending = dict(fetcher._pending)
        assert len(pending) == N and all(ev is None for ev in pending.values())
        async with trio.open_nursery() as nursery:
            got: dict[str, object] = {}

            async def look() -> None:
                got["attr"] = await rig.fs.lookup(d, "f0042")

            nursery.start_soon(look)
            await trio.testing.wait_all_tasks_blocked()
            assert fetcher._pending["d/f0042"] is not None  # the waiting lookup made one
            assert sum(ev is not None for ev in fetcher._pending.values()) == 1
            gate.set()
        assert got["attr"].size == 10  # type: ignore[attr-defined]

    run_rig(body, tmp_path, store, metadata_ttl=3600)
