"""The write-back queue's work per item must not grow with the queue's length
(performance issue: 5,000 uploads queued at start-up went up at a fifth of the
rate of a short queue). Counted, never timed: journal lookups per item."""

from __future__ import annotations

import trio

from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig, wait_until


def _count_lookups(journal) -> list[int]:
    """Count ``journal.get_by_id`` calls from now on (returns the live counter)."""
    counter = [0]
    inner = journal.get_by_id

    def counted(entry_id):
        counter[0] += 1
        return inner(entry_id)

    journal.get_by_id = counted
    return counter


def _lookups_per_item_in_sync(tmp_path, n: int) -> float:
    async def body(rig):
        for i in range(n):
            await rig.write_file(f"f{i:04d}", b"x" * 100)
        counter = _count_lookups(rig.stack.journal)
        res = await rig.sync(timeout=120)
        assert res.ok, res
        assert len(rig.store.objects()) == n
        return counter[0] / n

    return run_rig(body, tmp_path / str(n), write_back_delay=600)


def test_sync_work_per_item_does_not_grow_with_the_queue(tmp_path):
    short = _lookups_per_item_in_sync(tmp_path, 10)
    long = _lookups_per_item_in_sync(tmp_path, 400)
    # a few lookups per upload (the uploader reads its entry); not one per queued item
    assert long <= short * 1.5 + 2, (short, long)


def test_rename_with_a_long_queue_looks_only_at_running_uploads(tmp_path):
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)
    n = 200

    async def body(rig):
        gate = faulty.hold("put")
        for i in range(n):
            await rig.write_file(f"q/f{i:04d}", b"x")
        await rig.stack.reconciler.sync(timeout=0)  # forces every queued upload: due now
        assert await wait_until(lambda: gate.held >= 1)
        await rig.write_file("local", b"not queued yet")  # waits for its 600 s delay
        counter = _count_lookups(rig.stack.journal)
        await rig.rename("local", "renamed")
        lookups = counter[0]
        gate.release()
        assert (await rig.sync(timeout=60)).ok
        assert len(mem.objects()) == n + 2  # the files, "renamed" and the marker "q/"
        # the rename waits for uploads at or below its source: it may look at the
        # running ones (at most the worker count), never at every queued item
        assert lookups <= 40, lookups

    async def with_dir(rig):
        await rig.mkdir("q")
        return await body(rig)

    run_rig(with_dir, tmp_path, faulty, write_back_delay=600)


def test_multipart_parts_go_up_in_parallel(tmp_path):
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)
    MiB = 1024 * 1024

    async def body(rig):
        await rig.write_file("big", b"z" * (3 * MiB))
        gate = faulty.hold("upload_part")
        async with trio.open_nursery() as n:
            n.start_soon(rig.sync, 60)
            assert await trio.to_thread.run_sync(gate.wait_held, 2)
            gate.release()
        assert mem.objects()["big"] == b"z" * (3 * MiB)

    run_rig(body, tmp_path, faulty, write_back_delay=600, multipart_threshold=1 * MiB, part_size=256 * 1024)
