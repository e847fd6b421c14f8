"""Read path: small blocks for random reads, a growing asynchronous read-ahead for
sequential ones, one fetch per range however many readers wait for it.

Counted, never timed: the store counts GETs and bytes; "in flight" is shown with a
gate that holds GETs until the test has seen them.
"""

import random
import threading

import trio

from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig, wait_until

MiB = 1024 * 1024
KiB = 1024


class CountingStore(MemoryStore):
    """A memory bucket that records each GET's range, and can hold GETs that start at
    or after ``hold_from`` until ``release()`` (``held`` counts the ones waiting)."""

    def __init__(self) -> None:
        super().__init__("b")
        self.ranges: list[tuple[int, int]] = []
        self.hold_from: int | None = None
        self.held = 0
        self._mu = threading.Condition()
        self._open = False

    def get(self, key, start=0, end=None, if_match=None):
        with self._mu:
            self.ranges.append((start, end if end is not None else -1))
            if self.hold_from is not None and start >= self.hold_from:
                self.held += 1
                self._mu.notify_all()
                ok = self._mu.wait_for(lambda: self._open, timeout=30)
                self.held -= 1
                assert ok, "the test never released the held GETs"
        return super().get(key, start, end, if_match)

    def release(self) -> None:
        with self._mu:
            self._open = True
            self._mu.notify_all()

    def held_now(self) -> int:
        with self._mu:
            return self.held


def sparse_object(size: int) -> bytes:
    """A big object cheaply: zeros with a marker every MiB (so misplaced bytes show)."""
    buf = bytearray(size)
    for at in range(0, size, MiB):
        buf[at:at + 8] = at.to_bytes(8, "big")
    return bytes(buf)


def test_random_4k_reads_of_a_256_mib_object_fetch_small_blocks(tmp_path):
    size = 256 * MiB
    blob = sparse_object(size)
    store = CountingStore()
    store.put("big.bin", blob)
    rng = random.Random(11)
    offsets = [rng.randrange(0, size - 4096) for _ in range(200)]

    async def body(rig):
        fh = await rig.open("big.bin")
        per_read = []
        for off in offsets:
            down0 = store.stats.bytes_down
            assert await rig.fs.read(fh, off, 4096) == blob[off:off + 4096]
            per_read.append(store.stats.bytes_down - down0)
        await rig.fs.release(fh)
        assert max(per_read) <= 256 * KiB, max(per_read)
        assert sum(per_read) <= 16 * MiB, sum(per_read)

    run_rig(body, tmp_path, store, metadata_ttl=60)


def test_one_small_read_of_a_big_object_fetches_one_block(tmp_path):
    size = 64 * MiB
    store = CountingStore()
    store.put("big.bin", sparse_object(size))

    async def body(rig):
        fh = await rig.open("big.bin")
        off = 40 * MiB + 12345
        assert await rig.fs.read(fh, off, 4096) == sparse_object(size)[off:off + 4096]
        await rig.fs.release(fh)
        assert store.stats.bytes_down <= 256 * KiB
        assert len(store.ranges) == 1

    run_rig(body, tmp_path, store, metadata_ttl=60)


def test_sequential_read_grows_its_requests_and_fetches_ahead(tmp_path):
    size = 64 * MiB
    blob = sparse_object(size)
    store = CountingStore()
    store.put("big.bin", blob)
    store.hold_from = 1 * MiB  # everything past the first MiB waits until released

    async def body(rig):
        fh = await rig.open("big.bin")
        step = 128 * KiB
        # the first MiB arrives; reading through it starts the read-ahead of what follows
        for off in range(0, MiB, step):
            assert await rig.fs.read(fh, off, step) == blob[off:off + step]
        # the next window's GET is in flight (held here) before the reader gets there,
        # and the reader was only ever given bytes that were there
        assert await wait_until(lambda: store.held_now() >= 1, timeout=20), store.ranges
        store.release()
        off = MiB
        while off < size:
            got = await rig.fs.read(fh, off, step)
            assert got == blob[off:off + step], off
            off += step
        await rig.fs.release(fh)
        assert store.stats.bytes_down == size  # each byte once
        gets = store.ranges
        assert len(gets) <= 16, gets  # 512 reads of 128 KiB, a handful of GETs
        sizes = [e - s for s, e in gets]
        assert max(sizes) >= 8 * MiB  # requests grew from the first MiB

    run_rig(body, tmp_path, store, metadata_ttl=60)


def test_concurrent_readers_of_one_range_share_one_fetch(tmp_path):
    size = 8 * MiB
    blob = sparse_object(size)
    store = CountingStore()
    store.put("big.bin", blob)
    store.hold_from = 0

    async def body(rig):
        fh = await rig.open("big.bin")
        off = 5 * MiB + 100
        results = []

        async def reader():
            results.append(await rig.fs.read(fh, off, 4096))

        async with trio.open_nursery() as n:
            for _ in range(3):
                n.start_soon(reader)
            assert await wait_until(lambda: store.held_now() >= 1, timeout=20)
            store.release()
        await rig.fs.release(fh)
        assert results == [blob[off:off + 4096]] * 3
        assert len(store.ranges) == 1, store.ranges

    run_rig(body, tmp_path, store, metadata_ttl=60)


def test_read_ahead_stops_when_the_file_is_closed(tmp_path):
    size = 32 * MiB
    blob = sparse_object(size)
    store = CountingStore()
    store.put("big.bin", blob)
    store.hold_from = 1 * MiB

    async def body(rig):
        fh = await rig.open("big.bin")
        for off in range(0, MiB, 128 * KiB):
            assert await rig.fs.read(fh, off, 128 * KiB) == blob[off:off + 128 * KiB]
        assert await wait_until(lambda: store.held_now() >= 1, timeout=20)
        node = rig.fs.files.handle(fh).node
        await rig.fs.release(fh)
        # the GETs are still held: only the cancellation ends the read-ahead
        assert await wait_until(lambda: not node.reader.inflight and not node.reader.scopes, timeout=20)
        store.release()
        assert await wait_until(lambda: store.held_now() == 0, timeout=20)
        await trio.sleep(0.05)  # a late GET would land now if it were still wanted
        assert rig.stack.journal.get("big.bin").ranges == [(0, MiB)]
        # reopened, the file reads right (the abandoned GETs wrote nothing stale)
        fh = await rig.open("big.bin")
        assert await rig.fs.read(fh, 5 * MiB, 4096) == blob[5 * MiB:5 * MiB + 4096]
        await rig.fs.release(fh)

    run_rig(body, tmp_path, store, metadata_ttl=60)
