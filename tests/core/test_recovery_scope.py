"""SPEC §5/§8: recovery resumes what an earlier run left pending, and nothing else.

The mount serves before recovery runs (mount first, reconcile in the
background), so files created in that window belong to this run: they wait for
their write-back delay, and a temporary file removed within it never reaches
the bucket.
"""

import os
import stat

import trio

from mountsync.backend.memory import MemoryStore
from mountsync.core.filesystem import ROOT_INO
from mountsync.reconciler.items import Upload
from mountsync.stack import Stack
from tests.support.rig import make_config


async def _create(stack: Stack, name: str, data: bytes) -> int:
    fh, _attr = await stack.fs.create(ROOT_INO, name, stat.S_IFREG | 0o600, os.O_WRONLY | os.O_CREAT, 0, 0)
    await stack.fs.write(fh, 0, data)
    await stack.fs.release(fh)
    return stack.journal.get(name).id


def _run(tmp_path, store, fn, **kw):
    config = make_config(tmp_path, **kw)

    async def main():
        stack = Stack.open(config, store)
        try:
            async with trio.open_nursery() as nursery:
                await fn(stack, nursery)
                nursery.cancel_scope.cancel()
        finally:
            stack.close()

    trio.run(main)


def test_file_created_before_recovery_runs_keeps_its_write_back_delay(tmp_path):
    store = MemoryStore("b")

    async def body(stack, nursery):
        entry_id = await _create(stack, "edit.swp", b"swap")  # the mount serves; recovery not yet run
        nursery.start_soon(stack.run_background)
        await stack.recovered.wait()
        due = stack.reconciler.due.get(Upload(entry_id))
        assert due is not None and due > trio.current_time() + 30, "queued for immediate upload"
        assert stack.carried.count == 0
        p, name = ROOT_INO, "edit.swp"
        await stack.fs.unlink(p, name)
        assert (await stack.reconciler.sync(10)).ok
        assert store.objects() == {}
        assert store.stats.requests.get("put", 0) == 0

    _run(tmp_path, store, body, write_back_delay=60)


def test_restart_still_resumes_what_was_pending_before(tmp_path):
    store = MemoryStore("b")

    async def first(stack, nursery):
        nursery.start_soon(stack.run_background)
        await stack.recovered.wait()
        await _create(stack, "old", b"from the first run")

    _run(tmp_path, store, first, write_back_delay=60)
    assert store.objects() == {}

    async def second(stack, nursery):
        new_id = await _create(stack, "new", b"this run")  # before recovery runs
        assert stack.carried.count == 1
        old_id = stack.journal.get("old").id
        nursery.start_soon(stack.run_background)
        await stack.recovered.wait()
        assert Upload(old_id) in stack.reconciler.inflight or "old" in store.objects() \
            or stack.reconciler.due[Upload(old_id)] <= trio.current_time()
        assert stack.reconciler.due[Upload(new_id)] > trio.current_time() + 30
        with trio.fail_after(20):
            while "old" not in store.objects():
                await trio.sleep(0.02)
        assert "new" not in store.objects()

    _run(tmp_path, store, second, write_back_delay=60)
