"""Faults on the memory backend: a dying worker, the endpoint going away, lock per cache dir."""

import errno
import time

import pytest
import trio
import trio.testing

from mountsync.backend.base import TransientError, UnreachableError
from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from mountsync.errors import FsError, UserError
from mountsync.stack import Stack
from tests.support.rig import make_config, run_rig


def test_dead_reconciler_is_noticed_and_restarted(tmp_path, allow_log):
    allow_log("upload worker died")
    store = MemoryStore("b")

    async def body(rig):
        rec = rig.stack.reconciler
        original = rec._eligible
        calls = {"n": 0}

        def broken(item):
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("simulated bug in the queue")
            return original(item)

        rec._eligible = broken
        await rig.write_file("f", b"data")
        with trio.fail_after(20):
            res = await rig.sync()
        assert res.ok, res
        assert store.objects() == {"f": b"data"}
        assert rec.restarts == 1
        assert rec.status()["worker_restarts"] == 1

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_endpoint_down_writes_and_cached_reads_work_and_uploads_resume(tmp_path, allow_log):
    allow_log("cannot read 'uncached' from the bucket")
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    mem.put("cached", b"c" * 1000)
    mem.put("uncached", b"u" * 1000)

    async def body(rig):
        assert await rig.read_file("cached") == b"c" * 1000
        await rig.listdir("")
        store.set_down(True)
        await rig.write_file("new", b"written while down")  # no network needed
        assert await rig.read_file("cached") == b"c" * 1000
        assert await rig.read_file("new") == b"written while down"
        with pytest.raises(FsError) as ei:
            await rig.read_file("uncached")
        assert ei.value.errno == errno.EIO
        res = await rig.sync(timeout=1.5)  # cannot finish while down
        assert not res.ok and res.remaining == ["new"]
        st = rig.stack.reconciler.status()
        (p,) = st["pending"]
        assert p["path"] == "new" and p["attempts"] >= 1 and p["error"] and p["next_attempt"]
        store.set_down(False)
        with trio.fail_after(30):
            while not (await rig.sync(timeout=5)).ok:
                pass
        assert mem.objects()["new"] == b"written while down"

    run_rig(body, tmp_path, store, write_back_delay=60, read_timeout=2)


def test_uncached_read_while_down_fails_within_the_read_timeout(tmp_path, allow_log):
    allow_log("reading 'f' timed out")
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    mem.put("f", b"x" * 100)

    async def body(rig):
        ino = await rig.ino("f")
        store.set_delay("get", 8.0)  # a hanging endpoint, not a refusing one
        fh, _ = await rig.fs.open(ino, 0)
        start = trio.current_time()
        with pytest.raises(FsError) as ei:
            await rig.fs.read(fh, 0, 10)
        assert ei.value.errno == errno.EIO
        assert trio.current_time() - start < 5
        await rig.fs.release(fh)
        store.set_delay("get", 0)

    run_rig(body, tmp_path, store, write_back_delay=60, read_timeout=1)


def test_second_daemon_on_the_same_cache_dir_is_refused(tmp_path):
    config = make_config(tmp_path)
    first = Stack.open(config, MemoryStore("b"))
    try:
        with pytest.raises(UserError, match="in use by another mountsync daemon"):
            Stack.open(config, MemoryStore("b"))
    finally:
        first.close()
    Stack.open(config, MemoryStore("b")).close()  # free again once the first is closed


def test_transient_errors_then_success(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)

    async def body(rig):
        store.fail_next("put", TransientError("503 SlowDown"), times=3)
        await rig.write_file("f", b"eventually")
        with trio.fail_after(30):
            res = await rig.sync(timeout=25)
        assert res.ok, res
        assert mem.objects() == {"f": b"eventually"}

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_unreachable_error_is_transient():
    assert UnreachableError("x").transient


@pytest.mark.parametrize("size,threshold", [(5000, 64 * 1024**2), (3 * 1024**2, 1024**2)])
def test_lost_response_after_upload_is_not_a_conflict(tmp_path, size, threshold):
    """The server stored the object but the answer was lost (or the daemon died before the
    journal commit): the retry meets our own version and must not make a conflict copy."""
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    payload = bytes(range(256)) * (size // 256)

    async def body(rig):
        await rig.write_file("f", b"v1")
        assert (await rig.sync()).ok
        op = "put" if size < threshold else "complete_multipart"
        store.fail_next(op, TransientError("connection reset"), when="after")
        await rig.write_file("f", payload)
        with trio.fail_after(30):
            res = await rig.sync(timeout=25)
        assert res.ok, res
        assert mem.objects() == {"f": payload}
        assert rig.stack.journal.conflicts() == []
        assert not rig.stack.journal.pending()

    run_rig(body, tmp_path, store, write_back_delay=60, multipart_threshold=threshold,
            part_size=256 * 1024)


def test_creates_during_an_outage_do_not_relist_for_every_name(tmp_path, allow_log):
    """A listing that fails keeps the cached one for another TTL: found by the remount
    benchmark, where 10,000 creates with the endpoint refusing took over 600 s, each
    create paying a failed LIST once the directory's TTL had run out."""
    allow_log(r"cannot list")
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    clock = trio.testing.MockClock()  # moves only when the test jumps it

    async def body(rig):
        await rig.mkdir("d")
        await rig.listdir("d")
        store.set_down(True)
        clock.jump(10)  # the listing's TTL (5 s) has run out
        before = len(store.calls_to("list_page"))
        for i in range(20):
            await rig.write_file(f"d/f{i}", b"x")
        failed = [c.key for c in store.calls_to("list_page")[before:]]
        assert sorted(failed) == ["", "d/"], failed  # one failed attempt per directory, not per create
        assert len(await rig.listdir("d")) == 20
        clock.jump(10)
        await rig.write_file("d/g", b"x")
        assert len(store.calls_to("list_page")) - before == 4  # both tried again after another TTL
        store.set_down(False)

    run_rig(body, tmp_path, store, mock_clock=clock, metadata_ttl=5, write_back_delay=3600)


LOST_ANSWER_CASES = [(5000, 64 * 1024**2), (3 * 1024**2, 1024**2)]  # single PUT, multipart


def run_after_a_lost_answer(tmp_path, size: int, threshold: int, meanwhile, check) -> None:
    """Upload ``f`` once, then upload new content whose PUT (or multipart completion) lands
    but loses its answer; ``await meanwhile(rig)`` runs before the retry (the clock moves
    only when this jumps it), then the retry and a sync; ``await check(rig, mem, payload)``."""
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    payload = bytes(range(256)) * (size // 256)
    clock = trio.testing.MockClock()
    op = "put" if size < threshold else "complete_multipart"

    def failed_once() -> bool:
        return any(c.outcome.startswith("injected") for c in store.calls_to(op))

    async def body(rig):
        await rig.write_file("f", b"v1")
        assert (await rig.sync()).ok
        store.fail_next(op, TransientError("connection reset"), when="after")  # landed, answer lost
        await rig.write_file("f", payload)
        async with trio.open_nursery() as n:
            n.start_soon(rig.sync)
            give_up = time.monotonic() + 60  # wall clock: the trio clock stands still
            while not (failed_once() and any(p.get("attempts") for p in rig.status()["pending"])):
                assert time.monotonic() < give_up, "the upload never failed"
                await trio.lowlevel.checkpoint()
            await meanwhile(rig, payload)  # before the retry
            clock.jump(120)
        res = await rig.sync()
        assert res.ok, res
        await check(rig, mem, payload)

    run_rig(body, tmp_path, store, mock_clock=clock, write_back_delay=60, multipart_threshold=threshold,
            part_size=256 * 1024)


@pytest.mark.parametrize("size,threshold", LOST_ANSWER_CASES)
def test_unlink_after_a_lost_upload_answer_deletes_our_own_version(tmp_path, size, threshold, allow_log):
    """An upload landed but its answer was lost; the file is unlinked before the retry. The
    delete is conditional on the version before the upload, so the bucket answers 412: it
    holds our own landed upload, not another writer's change. Found by the mount model (a cut
    endpoint with a PUT in flight): the delete was refused as a conflict and the file came back."""
    allow_log("connection reset")

    async def meanwhile(rig, payload):
        await rig.unlink("f")

    async def check(rig, mem, payload):
        assert mem.objects() == {}, "the file came back"
        assert rig.stack.journal.conflicts() == []
        assert not await rig.exists("f")

    run_after_a_lost_answer(tmp_path, size, threshold, meanwhile, check)


@pytest.mark.parametrize("size,threshold", LOST_ANSWER_CASES)
def test_an_edit_after_a_lost_upload_answer_is_not_a_conflict(tmp_path, size, threshold, allow_log):
    """An upload landed but its answer was lost, and the file is edited again before the
    retry: the retry's condition (the version before) meets our own landed upload. That is
    not another writer's change: the new content replaces it, with no conflict copy."""
    allow_log("connection reset")

    async def meanwhile(rig, payload):
        await rig.write_file("f", payload + b" and more")

    async def check(rig, mem, payload):
        assert mem.objects() == {"f": payload + b" and more"}
        assert rig.stack.journal.conflicts() == []
        await rig.unlink("f")  # still ours: the mount may delete it
        assert (await rig.sync()).ok
        assert mem.objects() == {}

    run_after_a_lost_answer(tmp_path, size, threshold, meanwhile, check)
