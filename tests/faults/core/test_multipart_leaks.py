"""SPEC §5: an interrupted multipart upload resumes or is aborted, never leaked.

Every upload id is recorded in the journal before its first part and forgotten
only after CompleteMultipartUpload or a successful AbortMultipartUpload; an
abort that fails is retried in the background and again after a restart.
"""

import random

import trio

from mountsync.backend.base import TransientError
from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from mountsync.reconciler.items import Upload
from tests.support.rig import run_rig, wait_until

MiB = 1024 * 1024
SETTINGS = {"write_back_delay": 60, "multipart_threshold": 1 * MiB, "part_size": 256 * 1024}


def test_failed_abort_during_outage_is_retried_until_it_succeeds(tmp_path, allow_log):
    """Parts and the abort fail (an outage), the next attempt succeeds: the first
    upload id must still be aborted, in the same run, without a restart."""
    blob = random.Random(21).randbytes(2 * MiB)
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)
    faulty.fail_next("upload_part", TransientError("503 outage"), times=1)
    faulty.fail_next("abort_multipart", TransientError("503 outage"), times=1)

    async def body(rig):
        await rig.write_file("big", blob)
        res = await rig.sync(timeout=20)
        assert res.ok, res
        assert mem.objects()["big"] == blob
        assert mem.stats.requests.get("create_multipart") == 2
        with trio.fail_after(20):
            while mem.list_multipart_uploads() or rig.stack.journal.multipart_uploads():
                await trio.sleep(0.05)
        assert len(faulty.calls_to("abort_multipart")) == 2

    run_rig(body, tmp_path, faulty, **SETTINGS)


def test_abort_that_keeps_failing_is_retried_after_a_restart(tmp_path, allow_log):
    blob = random.Random(22).randbytes(2 * MiB)
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)
    faulty.fail_next("upload_part", TransientError("503 outage"), times=1)
    faulty.fail_next("abort_multipart", TransientError("503 outage"), times=1000)

    async def body(rig):
        await rig.write_file("big", blob)
        res = await rig.sync(timeout=20)
        assert res.ok, res
        (left,) = mem.list_multipart_uploads()  # the abort could not be done yet
        (recorded,) = rig.stack.journal.multipart_uploads()
        assert recorded.upload_id == left.upload_id and recorded.key == "big"
        await rig.restart()
        faulty.clear()
        assert await wait_until(lambda: not mem.list_multipart_uploads(), timeout=20)
        assert await wait_until(lambda: not rig.stack.journal.multipart_uploads(), timeout=20)
        assert mem.objects()["big"] == blob

    run_rig(body, tmp_path, faulty, **SETTINGS)


def test_upload_id_is_recorded_before_the_first_part(tmp_path):
    blob = random.Random(23).randbytes(2 * MiB)
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)

    async def body(rig):
        gate = faulty.hold("upload_part")
        await rig.write_file("big", blob)
        rig.stack.reconciler.forced.add(Upload(rig.stack.journal.get("big").id))
        await rig.stack.reconciler.sync(timeout=0)  # start it without waiting
        assert await trio.to_thread.run_sync(gate.wait_held, 1)
        (upload,) = mem.list_multipart_uploads()
        (recorded,) = rig.stack.journal.multipart_uploads()
        assert recorded.upload_id == upload.upload_id
        gate.release()
        assert (await rig.sync(timeout=20)).ok
        assert rig.stack.journal.multipart_uploads() == []
        assert mem.list_multipart_uploads() == []

    run_rig(body, tmp_path, faulty, **SETTINGS)


def test_crash_mid_upload_aborts_recorded_upload_at_restart(tmp_path, allow_log):
    blob = random.Random(24).randbytes(2 * MiB)
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)

    async def body(rig):
        gate = faulty.hold("upload_part")
        await rig.write_file("big", blob)
        await rig.stack.reconciler.sync(timeout=0)
        assert await trio.to_thread.run_sync(gate.wait_held, 1)
        faulty.fail_next("abort_multipart", TransientError("503 outage"), times=1)
        await rig.restart()  # a crash as far as the bucket is concerned; the part never finishes
        gate.release()
        assert (await rig.sync(timeout=20)).ok
        assert mem.objects()["big"] == blob
        assert await wait_until(lambda: not mem.list_multipart_uploads(), timeout=20)
        assert rig.stack.journal.multipart_uploads() == []

    run_rig(body, tmp_path, faulty, **SETTINGS)
