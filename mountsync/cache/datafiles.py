"""Cache data files: one sparse file per journal entry id, never named by key.

Layout below the cache dir: ``data/<id % 256 as 2 hex>/<id>`` and
``snap/<id>.<gen>`` for upload snapshots. Every file is created 0600.

``CacheFile`` is the one open object per data file (a registry in ``DataStore``
hands the same object to the core and to the reconciler). It owns the file
descriptor, the set of present ranges and the *snapshot gate*:

- Writers (the core) call ``await cf.wait_writable()`` before mutating; it
  returns at once unless a snapshot is being taken.
- The reconciler calls ``await cf.snapshot(dst)``, which closes the gate,
  copies the file in a worker thread, and opens the gate again. A snapshot is
  therefore a consistent image of the file at one instant.

All methods run on the trio thread; only the copy runs in a worker thread while
the gate is closed (so nothing else touches the file meanwhile).
"""

from __future__ import annotations

import os
import shutil
from contextlib import asynccontextmanager

import trio

from .ranges import RangeSet


class CacheFile:
    """An open cache data file. Reference-counted by ``DataStore``."""

    def __init__(self, store: DataStore, entry_id: int, path: str) -> None:
        self.store = store
        self.id = entry_id
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)  # never through a link
        self.ranges = RangeSet()
        self.complete = False
        self.refs = 0
        self.loaded = False  # the core copied complete/ranges from the journal
        self.dirty_since_snapshot = False  # a write since the last snapshot bumped dirty_gen
        self._gate: trio.Event | None = None
        self._holder: trio.lowlevel.Task | None = None  # the task inside exclusive(), if any

    # -- writers
    async def wait_writable(self) -> None:
        while self._gate is not None:
            await self._gate.wait()

    def pwrite(self, data: bytes, offset: int) -> int:
        n = os.pwrite(self.fd, data, offset)
        if not self.complete:
            self.ranges.add(offset, offset + n)
        return n

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        if not self.complete:
            self.ranges.remove_from(size)

    def size_on_disk(self) -> int:
        return os.fstat(self.fd).st_size

    def fsync(self) -> None:
        os.fsync(self.fd)

    def mark_complete(self) -> None:
        self.complete = True
        self.ranges.clear()

    def discard(self) -> None:
        """Forget the content (the remote object changed): empty, nothing present."""
        os.ftruncate(self.fd, 0)
        self.complete = False
        self.ranges.clear()

    # -- reconciler
    @asynccontextmanager
    async def exclusive(self):
        """Close the gate for the duration of the block (writers wait)."""
        await self.wait_writable()
        gate = self._gate = trio.Event()
        self._holder = trio.lowlevel.current_task()
        try:
            yield
        finally:
            self._gate = None
            self._holder = None
            gate.set()

    async def snapshot(self, dst: str, read_gen) -> tuple[int, int]:
        """Copy the file to ``dst`` atomically with respect to writers.

        ``read_gen()`` is called at the instant the gate closes and its result
        (the entry's dirty generation) is returned with the size: the snapshot
        holds every write of that generation, and the next write bumps it."""
        if self._holder is trio.lowlevel.current_task():
            # inside our own exclusive() block: the file cannot change; copy as is
            gen = read_gen()
            size = await trio.to_thread.run_sync(_copy_file, self.fd, dst)
            return size, gen
        await self.wait_writable()
        gate = self._gate = trio.Event()
        try:
            gen = read_gen()
            self.dirty_since_snapshot = False
            size = await trio.to_thread.run_sync(_copy_file, self.fd, dst)
            return size, gen
        finally:
            self._gate = None
            gate.set()


def _copy_file(fd: int, dst: str) -> int:
    size = os.fstat(fd).st_size
    out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        offset = 0
        while offset < size:
            n = os.copy_file_range(fd, out, size - offset, offset, offset)
            if n == 0:
                break
            offset += n
        os.ftruncate(out, size)
    finally:
        os.close(out)
    return size


class DataStore:
    """Data files below ``root``; a registry of open ``CacheFile`` objects by id."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.data_dir = os.path.join(root, "data")
        self.snap_dir = os.path.join(root, "snap")
        for d in (self.data_dir, self.snap_dir):
            os.makedirs(d, mode=0o700, exist_ok=True)
        self._open: dict[int, CacheFile] = {}

    def path_for(self, entry_id: int) -> str:
        return os.path.join(self.data_dir, f"{entry_id % 256:02x}", str(entry_id))

    def snapshot_path(self, entry_id: int, gen: int) -> str:
        return os.path.join(self.snap_dir, f"{entry_id}.{gen}")

    def acquire(self, entry_id: int) -> CacheFile:
        """The open CacheFile for ``entry_id`` (created on first use); pair with ``release``."""
        cf = self._open.get(entry_id)
        if cf is None:
            path = self.path_for(entry_id)
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            cf = CacheFile(self, entry_id, path)
            self._open[entry_id] = cf
        cf.refs += 1
        return cf

    def peek(self, entry_id: int) -> CacheFile | None:
        return self._open.get(entry_id)

    def release(self, cf: CacheFile) -> None:
        cf.refs -= 1
        if cf.refs <= 0:
            os.close(cf.fd)
            self._open.pop(cf.id, None)

    def exists(self, entry_id: int) -> bool:
        return os.path.exists(self.path_for(entry_id))

    def file_size(self, entry_id: int) -> int:
        try:
            return os.stat(self.path_for(entry_id)).st_size
        except FileNotFoundError:
            return 0

    def free_bytes(self) -> int:
        """Space left for us on the cache filesystem."""
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def allocated(self, entry_id: int) -> int:
        """Bytes the data file occupies on disk (holes excluded)."""
        try:
            return os.stat(self.path_for(entry_id)).st_blocks * 512
        except FileNotFoundError:
            return 0

    def remove(self, entry_id: int) -> None:
        """Delete the data file (callers ensure nobody holds it open)."""
        try:
            os.unlink(self.path_for(entry_id))
        except FileNotFoundError:
            pass

    def clear_snapshots(self) -> None:
        shutil.rmtree(self.snap_dir, ignore_errors=True)
        os.makedirs(self.snap_dir, mode=0o700, exist_ok=True)

    def disk_usage(self) -> int:
        """Bytes allocated by data files (sparse holes not counted)."""
        total = 0
        for dirpath, _dirs, files in os.walk(self.data_dir):
            for f in files:
                try:
                    total += os.stat(os.path.join(dirpath, f)).st_blocks * 512
                except FileNotFoundError:
                    pass
        return total
