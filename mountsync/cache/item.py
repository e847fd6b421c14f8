"""Cache items: each cached file's data, present ranges, snapshot and sync state in one owner.

``Items`` is the registry of open ``CacheItem`` objects (one per journal entry id,
shared by the core and the reconciler) and the only writer of an entry's
data-state columns: ``complete``, ``ranges``, ``dirty_gen``/``uploaded_gen``,
``meta_only`` and the base version after an upload or a reset. Everyone else
reads them, through ``Entry`` and ``Entry.state``.

An item on disk is a data file (``DataStore`` layout) plus its journal row. While
open, a ``CacheItem`` holds:

- the file descriptor and the present ranges, loaded from the row when it is
  opened (a sparse file of the row's size when incomplete) and written back by
  ``commit``;
- the *snapshot gate*: writers ``await item.wait_writable()`` before mutating; a
  snapshot closes the gate, copies the file in a worker thread and opens it
  again, so a snapshot is the file at one instant;
- whether a write since the last snapshot already bumped the dirty generation
  (so only the first write after an upload snapshot commits to the journal).

Operations that do not need the bytes (``reset_to``, ``move``, ``evict``,
``record_upload``, ``mark_changed``) take an entry id and work whether or not the
item is open; an open item drops its bytes on a reset, a closed one loses its file.

Concurrency: everything runs on the trio thread; only file copies run in worker
threads, while the gate is closed (nothing else touches the file meanwhile).
Invariants: ``complete`` ⇒ ``ranges`` is empty; ``uploaded_gen ≤ dirty_gen``.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from .datafiles import DataStore, copy_file, unlink_quietly
from .journal import Entry, Journal
from .ranges import RangeSet
from .spares import SparePool
from .state import ItemState, item_state

log = logging.getLogger("mountsync.cache")


@dataclass(frozen=True)
class Snapshot:
    """What an upload sends: the file at ``path`` holds generation ``gen`` (``size`` bytes)."""

    path: str
    size: int
    gen: int


@dataclass(frozen=True)
class RemoteVersion:
    """A version of an object in the bucket that an entry is reset to."""

    etag: str
    version_id: str | None
    size: int


class CacheItem:
    """An open cached file. Reference-counted by ``Items``; see the module doc."""

    def __init__(self, journal: Journal, entry_id: int, path: str, row: Entry | None) -> None:
        self.id = entry_id
        self.path = path  # the data file
        self._journal = journal
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)  # never through a link
        self._refs = 0
        self._complete = row.complete if row is not None else False
        self._ranges = RangeSet(row.ranges if row is not None and not row.complete else None)
        self._dirty_since_snapshot = False
        self._recorded: tuple[Any, ...] | None = None  # what the last ``commit`` wrote
        self._gate: trio.Event | None = None
        self._holder: trio.lowlevel.Task | None = None  # the task that closed the gate
        if row is not None and not row.complete and self.size_on_disk() != row.size:
            os.ftruncate(self._fd, row.size)  # sparse, so reads past the cached part find holes

    # -- references (Items pairs them)
    def acquire(self) -> None:
        self._refs += 1

    def release(self) -> bool:
        """Drop one reference; the last one closes the descriptor (returns True)."""
        self._refs -= 1
        if self._refs > 0:
            return False
        os.close(self._fd)
        return True

    # -- content
    @property
    def complete(self) -> bool:
        return self._complete

    def present(self, start: int, end: int) -> bool:
        return self._complete or self._ranges.contains(start, end)

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        return [] if self._complete else self._ranges.missing(start, end)

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self._fd, size, offset)

    def pwrite(self, data: bytes, offset: int) -> int:
        """Write bytes (a change, after ``mark_dirty``, or fetched ones) and record them present."""
        n = os.pwrite(self._fd, data, offset)
        if not self._complete:
            self._ranges.add(offset, offset + n)
        return n

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        if not self._complete:
            self._ranges.remove_from(size)

    def mark_complete(self) -> None:
        self._complete = True
        self._ranges.clear()

    def size_on_disk(self) -> int:
        return os.fstat(self._fd).st_size

    def fsync(self) -> None:
        os.fsync(self._fd)

    # -- persistence
    def mark_dirty(self) -> bool:
        """Record a data change before its bytes land: the first one since the last
        snapshot bumps the dirty generation (one commit). Returns whether it did."""
        if self._dirty_since_snapshot:
            return False
        self._journal.bump_dirty(self.id)
        self._dirty_since_snapshot = True
        return True

    def born_dirty(self) -> None:
        """A new entry starts complete, empty, at dirty generation 1 (already recorded).

        A data file just made is already empty: it is truncated only when it is not
        (truncating to 0 makes ext4 flush the file's data at its close, a disk write
        per created file)."""
        if self.size_on_disk() != 0:
            self.truncate(0)
        self.mark_complete()
        self._dirty_since_snapshot = True

    def commit(self, size: int, mtime_ns: int) -> None:
        """Write size, mtime and the present ranges to the journal row, unless this item
        already wrote exactly these (a ``flush`` then ``release`` of an unchanged file
        commits once; ``last_used`` keeps the time of that commit)."""
        ranges = [] if self._complete else self._ranges.to_list()
        state = (size, mtime_ns, self._complete, ranges)
        if state == self._recorded:
            return
        self._journal.update(self.id, size=size, mtime_ns=mtime_ns, last_used=time.time(),
                             complete=int(self._complete), ranges=ranges)
        self._recorded = state

    def drop_content(self, size: int) -> None:
        """Forget the content (another version replaces it): a sparse file of ``size``
        with nothing present, clean. Only ``Items.reset_to`` calls it (with the row)."""
        os.ftruncate(self._fd, 0)
        if size:
            os.ftruncate(self._fd, size)
        self._complete = size == 0
        self._ranges.clear()
        self._dirty_since_snapshot = False
        self._recorded = None

    # -- the snapshot gate
    async def wait_writable(self) -> None:
        while self._gate is not None:
            await self._gate.wait()

    @asynccontextmanager
    async def _closed_gate(self) -> AsyncIterator[None]:
        """Writers wait while the block runs. Re-entrant for the task holding it (a
        conflict met by an in-place upload copies the file it is sending)."""
        if self._holder is trio.lowlevel.current_task():
            yield
            return
        await self.wait_writable()
        gate = self._gate = trio.Event()
        self._holder = trio.lowlevel.current_task()
        try:
            yield
        finally:
            self._gate = None
            self._holder = None
            gate.set()

    def _current_gen(self) -> int:
        row = self._journal.get_by_id(self.id)
        return row.dirty_gen if row is not None else 0

    async def snapshot(self, dst: str) -> Snapshot:
        """Copy the file to ``dst`` atomically with respect to writers; the dirty
        generation is read at the instant the gate closes, and the next write bumps it."""
        async with self._closed_gate():
            gen = self._current_gen()
            self._dirty_since_snapshot = False
            size = await trio.to_thread.run_sync(copy_file, self._fd, dst)
        return Snapshot(dst, size, gen)

    @asynccontextmanager
    async def in_place(self) -> AsyncIterator[Snapshot]:
        """The file itself as its own snapshot: writers wait until the block ends."""
        async with self._closed_gate():
            gen = self._current_gen()
            self._dirty_since_snapshot = False
            yield Snapshot(self.path, self.size_on_disk(), gen)

    async def copy_to(self, dst: str) -> None:
        """A private copy of the current content (the sync state is untouched)."""
        async with self._closed_gate():
            await trio.to_thread.run_sync(copy_file, self._fd, dst)


class Items:
    """The open cache items by entry id, and the writer of their journal data state."""

    def __init__(self, journal: Journal, data: DataStore, spares: SparePool | None = None) -> None:
        self.journal = journal
        self.data = data
        self.spares = spares  # empty files made ahead (None: every data file is created here)
        self._open: dict[int, CacheItem] = {}
        self._uploading: set[int] = set()

    # -- open items
    def open(self, entry_id: int) -> CacheItem:
        """The open item (opened on first use, from its journal row); pair with ``close``."""
        item = self._open.get(entry_id)
        if item is None:
            path = self.data.path_for(entry_id)
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            if self.spares is not None and not os.path.lexists(path):
                self.spares.take(path)  # a rename instead of a create (cache.spares)
            item = CacheItem(self.journal, entry_id, path, self.journal.get_by_id(entry_id))
            self._open[entry_id] = item
        item.acquire()
        return item

    def close(self, item: CacheItem) -> None:
        if item.release():
            self._open.pop(item.id, None)

    def is_open(self, entry_id: int) -> bool:
        return entry_id in self._open

    def complete_if_whole(self, entry_id: int) -> bool:
        """Does the cache hold every byte of the entry? If its fetched ranges cover it all,
        it is marked complete (as a write would need it)."""
        e = self.journal.get_by_id(entry_id)
        if e is None:
            return False
        if e.complete:
            return True
        if not RangeSet(e.ranges).contains(0, e.size):
            return False
        item = self.open(entry_id)
        item.mark_complete()
        self.close(item)
        self.journal.update(entry_id, complete=1, ranges=[])
        return True

    def drop_if_closed(self, entry_id: int) -> None:
        """The entry is gone: remove its data file unless a handle still reads it."""
        if entry_id not in self._open:
            self.data.remove(entry_id)

    # -- state
    def state(self, e: Entry) -> ItemState:
        return item_state(has_base=e.base_etag is not None, pending=e.pending, settled=e.settled,
                          uploading=e.id in self._uploading)

    def mark_changed(self, entry_id: int, *, meta_only: bool = False) -> None:
        """A change that is not a write of bytes (attributes, a move): one more generation."""
        self.journal.bump_dirty(entry_id, meta_only=meta_only)

    def move(self, entry_id: int, base_etag: str | None, **changes: Any) -> None:
        """The entry now stands for another key (renamed, moved to a conflict name): its
        whole content goes up there, conditional on ``base_etag`` (None: no object)."""
        self.journal.update(entry_id, base_etag=base_etag, base_version=None, meta_only=0, **changes)
        self.journal.bump_dirty(entry_id)

    def reset_to(self, entry_id: int, remote: RemoteVersion, **attrs: Any) -> None:
        """Forget the local version: the entry becomes a clean view of ``remote`` (an open
        item keeps its descriptor, with nothing present; a closed one loses its file).
        ``attrs``: the attributes (mode, uid, gid, mtime_ns) that come with it. The entry is
        settled: the version it now shows is not one this mount created, so removing it
        needs --allow-delete (SPEC §6)."""
        item = self._open.get(entry_id)
        if item is not None:
            item.drop_content(remote.size)
        else:
            self.data.remove(entry_id)
        row = self.journal.get_by_id(entry_id)
        if row is None:
            return
        self.journal.update(entry_id, base_etag=remote.etag, base_version=remote.version_id, size=remote.size,
                            complete=int(remote.size == 0), ranges=[], uploaded_gen=row.dirty_gen, meta_only=0,
                            error=None, attempts=0, settled=1, **attrs)

    def evict(self, entry_id: int) -> None:
        """Drop the bytes of a clean, closed item; its row stays (fetched again on demand)."""
        self.data.remove(entry_id)
        self.journal.update(entry_id, complete=0, ranges=[])

    # -- uploads
    @asynccontextmanager
    async def upload_source(self, entry_id: int, label: str) -> AsyncIterator[Snapshot]:
        """The file to upload for ``entry_id``: a snapshot (removed afterwards), or with
        no room on the cache disk for one, the data file itself with writers waiting."""
        item = self.open(entry_id)
        self._uploading.add(entry_id)
        dst = self.data.snapshot_path(entry_id)
        try:
            try:
                snap: Snapshot | None = await item.snapshot(dst)
            except OSError as exc:
                unlink_quietly(dst)
                if exc.errno != errno.ENOSPC:
                    self.close(item)
                    raise
                snap = None
            if snap is None:
                log.info("cache disk full: uploading %r in place, without a snapshot", label)
                try:
                    async with item.in_place() as whole:
                        yield whole
                finally:
                    self.close(item)
                return
            self.close(item)
            try:
                yield snap
            finally:
                unlink_quietly(dst)
        finally:
            self._uploading.discard(entry_id)

    def record_upload(self, e: Entry, gen: int, etag: str, version_id: str | None) -> Entry | None:
        """Generation ``gen`` of ``e`` is in the bucket as ``etag`` (at its own key: a
        pending copy from the object it was renamed from is done)."""
        entry_id = e.saved_id
        changes: dict[str, Any] = {"base_etag": etag, "base_version": version_id,
                                   "uploaded_gen": max(gen, e.uploaded_gen), "error": None, "attempts": 0,
                                   "next_attempt": 0, "copy_from": None, "copy_etag": None,
                                   "copy_meta": 0}
        if gen >= e.dirty_gen:
            changes["meta_only"] = 0
        self.journal.update(entry_id, **changes)
        return self.journal.get_by_id(entry_id)

    async def copy_to(self, entry_id: int, dst: str) -> None:
        """A private copy of the entry's current content (conflict recovery)."""
        item = self.open(entry_id)
        try:
            await item.copy_to(dst)
        finally:
            self.close(item)
