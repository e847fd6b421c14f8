"""SPEC §4/§8: every download is bounded: ranged GETs of at most ``CHUNK`` bytes, streamed
in pieces, each piece under its own timeout, landing in the cache file as it arrives (a
retry resumes).

Covers the read path's siblings that used to fetch a whole object in one GET held
in memory: the first write to a partly cached file, truncate, the conflict path
that sets the bucket's version aside, and symlink objects on lookup.
"""

import errno
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from mountsync.backend.base import TransientError
from mountsync.backend.memory import MemoryStore
from mountsync.cache.fetch import CHUNK, plan_chunks
from mountsync.errors import FsError
from tests.support.rig import run_rig

MiB = 1024 * 1024


def pattern(size: int, seed: int = 0) -> bytes:
    """Distinct bytes per MiB, so a misplaced chunk shows."""
    blocks = [((i + seed) % 251).to_bytes(1, "big") * MiB for i in range(-(-size // MiB))]
    return b"".join(blocks)[:size]


class RecordingStore(MemoryStore):
    """A memory bucket that records each GET's range; optionally slow (seconds per MiB)
    or failing once at a given offset (a GET starting there, or a streaming GET reaching it)."""

    def __init__(self, *, per_mib: float = 0.0) -> None:
        super().__init__("b")
        self.per_mib = per_mib
        self.ranges: list[tuple[int, int]] = []
        self.keys: list[str] = []  # the key of each GET, in the order of ``ranges``
        self.fail_at: set[int] = set()
        self._mu = threading.Lock()

    def _recorded_get(self, key, start, end, if_match):
        data = super().get(key, start, end, if_match)
        with self._mu:  # recorded when asked, so a request abandoned later is not mistaken for a retry
            self.ranges.append((start, start + len(data)))
            self.keys.append(key)
            fail = start in self.fail_at
            self.fail_at.discard(start)
        if fail:
            raise TransientError("503 injected")
        return data

    def get(self, key, start=0, end=None, if_match=None):
        data = self._recorded_get(key, start, end, if_match)
        if self.per_mib:
            time.sleep(len(data) / MiB * self.per_mib)
        return data

    def get_into(self, key, start, end, if_match, sink, piece=MiB):
        """A streaming GET over a link of ``per_mib``: each piece arrives in its time."""
        data = self._recorded_get(key, start, end, if_match)
        for at in range(0, len(data), piece):
            with self._mu:
                fail = start + at in self.fail_at
                self.fail_at.discard(start + at)
            if fail:  # the connection breaks in the middle of the body
                raise TransientError("connection reset (injected)")
            if self.per_mib:
                time.sleep(min(piece, len(data) - at) / MiB * self.per_mib)
            sink(data[at:at + piece], start + at)
        return len(data)


def test_plan_chunks_cuts_ranges_into_bounded_pieces():
    assert plan_chunks([(0, 10), (20, 25)], 4) == [(0, 4), (4, 8), (8, 10), (20, 24), (24, 25)]
    assert plan_chunks([], 4) == []
    assert plan_chunks([(5, 6)], CHUNK) == [(5, 6)]
    with pytest.raises(ValueError):
        plan_chunks([(0, 1)], 0)


def test_first_write_to_partly_cached_object_fetches_in_bounded_chunks(tmp_path):
    size = 40 * MiB + 123
    blob = pattern(size)
    store = RecordingStore()
    store.put("big.bin", blob)

    async def body(rig):
        fh = await rig.open("big.bin")
        assert await rig.fs.read(fh, 0, 4096) == blob[:4096]  # partly cached now
        await rig.fs.release(fh)
        await rig.write_at("big.bin", size, b"x")  # append: brings in the rest first
        assert store.ranges and max(e - s for s, e in store.ranges) <= CHUNK
        assert (await rig.sync()).ok
        assert store.objects()["big.bin"] == blob + b"x"

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=60)


def test_each_chunk_has_its_own_timeout(tmp_path):
    """The whole object takes longer than --read-timeout to arrive; each chunk does not."""
    size = 96 * MiB
    blob = pattern(size, 3)
    store = RecordingStore(per_mib=0.005)  # 1 MiB piece: 0.005 s; the whole object: 0.48 s

    store.put("big.bin", blob)

    async def body(rig):
        await rig.write_at("big.bin", size, b"tail")
        assert (await rig.sync()).ok
        assert store.objects()["big.bin"] == blob + b"tail"

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=60, read_timeout=0.3)


class SharedLinkStore(MemoryStore):
    """A bucket behind a link that concurrent GETs share fairly: a GET alone takes
    ``per_get`` seconds; k GETs in flight each progress k times slower."""

    def __init__(self, per_get: float) -> None:
        super().__init__("b")
        self.per_get = per_get
        self.active = 0
        self._mu = threading.Lock()

    def get(self, key, start=0, end=None, if_match=None):
        with self._mu:
            self.active += 1
        try:
            done, last = 0.0, time.monotonic()
            while done < 1.0:
                time.sleep(0.005)
                now = time.monotonic()
                with self._mu:
                    done += (now - last) / (self.per_get * self.active)
                last = now
            return super().get(key, start, end, if_match)
        finally:
            with self._mu:
                self.active -= 1


def test_gets_sharing_a_slow_link_do_not_fail_the_fetch(tmp_path):
    """One chunk alone arrives well within the time limit, four at once would not: the
    fetch narrows down instead of failing (a retry would meet the same wall)."""
    size = 64 * MiB
    blob = pattern(size, 13)
    store = SharedLinkStore(per_get=0.1)  # alone 0.1 s; 4 started together: 0.4 s; limit 0.3 s
    store.put("big.bin", blob)

    async def body(rig):
        await rig.write_at("big.bin", size, b"!")
        assert (await rig.sync()).ok
        assert store.objects()["big.bin"] == blob + b"!"

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=60, read_timeout=0.3)


def test_failed_fill_keeps_what_landed_and_a_retry_resumes(tmp_path, allow_log):
    allow_log("cannot read 'big.bin'")
    size = 40 * MiB
    blob = pattern(size, 5)
    store = RecordingStore()
    store.put("big.bin", blob)
    # the fill is one streaming GET: the connection breaks after 24 MiB have landed
    store.fail_at.add(24 * MiB)

    async def body(rig):
        with pytest.raises(FsError) as ei:
            await rig.write_at("big.bin", size, b"!")
        assert ei.value.errno == errno.EIO
        e = rig.stack.journal.get("big.bin")
        assert not e.complete and not e.pending
        landed = e.ranges
        assert sum(t - s for s, t in landed) >= 24 * MiB  # recorded in the journal, not only in memory
        before = len(store.ranges)
        await rig.write_at("big.bin", size, b"!")  # the retry fetches only what is missing
        again = store.ranges[before:]
        # (a GET the failed fetch had started may still be recorded here, late; it is
        # for a chunk that never landed, so it overlaps nothing that did)
        for s, t in again:
            assert not any(s < le and ls < t for ls, le in landed), (again, landed)
        assert (await rig.sync()).ok
        assert store.objects()["big.bin"] == blob + b"!"

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=60)


def test_truncate_of_partly_cached_object_fetches_in_bounded_chunks(tmp_path):
    size = 30 * MiB
    blob = pattern(size, 7)
    store = RecordingStore()
    store.put("big.bin", blob)

    async def body(rig):
        await rig.truncate("big.bin", 25 * MiB)
        assert max(e - s for s, e in store.ranges) <= CHUNK
        assert sum(e - s for s, e in store.ranges) == 25 * MiB
        assert (await rig.sync()).ok
        assert store.objects()["big.bin"] == blob[:25 * MiB]

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=60)


@pytest.mark.parametrize("strategy", ["local-wins", "newest-wins"])
def test_conflict_copy_of_the_bucket_version_is_fetched_in_bounded_chunks(tmp_path, allow_log, strategy):
    allow_log("conflict on")
    remote = pattern(20 * MiB + 5, 9)
    store = RecordingStore()

    async def body(rig):
        await rig.write_file("f.bin", b"v1")
        assert (await rig.sync()).ok
        await rig.write_file("f.bin", b"local edit")  # newer mtime than the other writer's
        store.put("f.bin", remote, {"mtime": "1"})
        assert (await rig.sync()).ok
        assert store.objects()["f.bin"] == b"local edit"
        (c,) = rig.stack.journal.conflicts()
        assert Path(c.remote_to[len("recovery:"):]).read_bytes() == remote
        assert max(e - s for s, e in store.ranges) <= CHUNK

    run_rig(body, tmp_path, store, write_back_delay=60, conflict_strategy=strategy)


def test_large_object_marked_as_symlink_is_a_regular_file_never_read_on_lookup(tmp_path):
    store = RecordingStore()
    link_meta = {"mode": str(stat.S_IFLNK | 0o777)}
    store.put("huge-link", b"t" * (150 * 1024), link_meta)
    store.put("limit-link", b"/" + b"a" * 4094, link_meta)  # PATH_MAX - 1 bytes: still a symlink
    store.put("real-link", b"target/file", link_meta)

    async def body(rig):
        await rig.listdir("")
        st = await rig.stat("huge-link")
        assert stat.S_ISREG(st.mode) and st.size == 150 * 1024
        # not read (the other links' targets may be read already: a listing reads them in the background)
        assert "huge-link" not in store.keys
        assert stat.S_ISLNK((await rig.stat("limit-link")).mode)
        assert await rig.readlink("limit-link") == "/" + "a" * 4094
        assert await rig.readlink("real-link") == "target/file"
        assert all(s == 0 and e <= 4095 for s, e in store.ranges)
        # its content reads like any file's
        assert await rig.read_file("huge-link") == b"t" * (150 * 1024)
        with pytest.raises(FsError) as ei:
            await rig.readlink("huge-link")
        assert ei.value.errno == errno.EINVAL

    run_rig(body, tmp_path, store, metadata_ttl=60)


def test_symlink_object_that_cannot_be_read_fails_with_eio_until_it_can(tmp_path, allow_log):
    allow_log("cannot read symlink 'link'")
    store = RecordingStore()
    store.put("link", b"target", {"mode": str(stat.S_IFLNK | 0o777)})
    store.fail_at.add(0)

    async def body(rig):
        with pytest.raises(FsError) as ei:
            await rig.stat("link")  # the GET of the target fails: one clear EIO, no traceback
        assert ei.value.errno == errno.EIO
        assert await rig.readlink("link") == "target"  # the next lookup reads it

    run_rig(body, tmp_path, store, metadata_ttl=0)


def test_memory_store_recording_is_not_a_test_artifact():
    """Guard for the helpers above: a GET is recorded with its real range."""
    store = RecordingStore()
    store.put("k", os.urandom(100))
    store.get("k", 10, 20)
    assert store.ranges == [(10, 20)]


def test_conflict_copy_that_fails_half_way_leaves_no_partial_file(tmp_path, allow_log):
    allow_log("conflict on")
    remote = pattern(20 * MiB, 11)
    store = RecordingStore()

    async def body(rig):
        await rig.write_file("f.bin", b"v1")
        assert (await rig.sync()).ok
        await rig.write_file("f.bin", b"local edit")
        store.put("f.bin", remote, {"mtime": "1"})
        store.fail_at.add(16 * MiB)  # the third chunk fails once
        assert (await rig.sync()).ok
        assert store.objects()["f.bin"] == b"local edit"
        kept = {c.remote_to[len("recovery:"):] for c in rig.stack.journal.conflicts()
                if c.remote_to.startswith("recovery:")}
        (path,) = kept
        assert Path(path).read_bytes() == remote
        recovery = Path(rig.stack.conflicts.recovery_dir)
        assert {str(p) for p in recovery.iterdir()} == kept

    run_rig(body, tmp_path, store, write_back_delay=60, conflict_strategy="local-wins")
