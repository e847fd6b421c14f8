"""Thread hops per filesystem operation (performance issue: counts, never times).

Every ``trio.to_thread.run_sync`` is a hop off the trio thread and back: a few tens of
microseconds of handover and a wake-up of the loop, paid per FUSE request. What may
block for long hops (store requests, fsync, copying a whole cache file); what is
bounded by one FUSE request stays on the trio thread: ``pread``/``pwrite`` of at most
128 KiB of the cache file (page-cache speed) and the journal's small commits (no
fsync, docs/DURABILITY.md). So the common requests on known, cached data make no hop.

The counter wraps ``trio.to_thread.run_sync`` and counts the hops made by the task
running one operation (a context variable marks it; background tasks started earlier,
such as the reconciler, are not counted). The expected counts are today's: a change
that adds a hop to one of these paths fails here and says which.
"""

from __future__ import annotations

import contextvars
import os
import stat
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig

_MEASURING: contextvars.ContextVar[Counter | None] = contextvars.ContextVar("measuring", default=None)


@pytest.fixture
def hops(monkeypatch):
    """``with hops() as c:`` counts, in ``c``, the hops of the current task by the
    function handed to the thread."""
    real = trio.to_thread.run_sync

    async def counting(fn, *args, **kw):
        c = _MEASURING.get()
        if c is not None:
            target = getattr(fn, "func", fn)  # functools.partial: the function inside
            c[getattr(target, "__qualname__", repr(target))] += 1
        return await real(fn, *args, **kw)

    monkeypatch.setattr(trio.to_thread, "run_sync", counting)

    @contextmanager
    def measure() -> Iterator[Counter]:
        c: Counter = Counter()
        token = _MEASURING.set(c)
        try:
            yield c
        finally:
            _MEASURING.reset(token)

    return measure


def test_hops_per_operation(tmp_path, hops):
    store = MemoryStore("b")
    store.put("d/known", b"k" * 4096)
    counts: dict[str, Counter] = {}

    async def body(rig):
        assert await rig.listdir("d") == ["known"]
        await rig.stat("d/known")
        with hops() as c:
            assert await rig.read_file("d/known") == b"k" * 4096  # cached from here on
        counts["open, read 4 KiB not cached, release"] = c
        parent = await rig.ino("d")
        with hops() as c:
            await rig.fs.lookup(parent, "known")
        counts["lookup of a known name"] = c
        ino = await rig.ino("d/known")
        with hops() as c:
            await rig.fs.getattr(ino)
        counts["getattr"] = c
        with hops() as c:
            await rig.listdir("d")
        counts["readdir of a listed directory"] = c
        with hops() as c:
            assert await rig.read_file("d/known") == b"k" * 4096
        counts["open, read 4 KiB cached, release"] = c
        with hops() as c:
            fh, _ = await rig.fs.create(parent, "new", stat.S_IFREG | 0o644,
                                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0, 0)
        counts["create"] = c
        with hops() as c:
            await rig.fs.write(fh, 0, b"y" * 4096)
        counts["write 4 KiB"] = c
        with hops() as c:
            await rig.fs.flush(fh)
            await rig.fs.release(fh)
        counts["flush and release after a write"] = c
        fh = await rig.open("d/new", os.O_WRONLY)
        with hops() as c:
            await rig.fs.fsync(fh, False)
        counts["fsync"] = c
        await rig.fs.release(fh)

    run_rig(body, tmp_path, store, write_back_delay=3600, metadata_ttl=3600)
    expected = {
        "open, read 4 KiB not cached, release": {"MemoryStore.get_into": 1},  # the GET
        "lookup of a known name": {},
        "getattr": {},
        "readdir of a listed directory": {},
        "open, read 4 KiB cached, release": {},
        "create": {},
        "write 4 KiB": {},
        "flush and release after a write": {},
        "fsync": {"CacheItem.fsync": 1, "Journal.make_durable": 1},
    }
    assert {op: dict(c) for op, c in counts.items()} == expected
