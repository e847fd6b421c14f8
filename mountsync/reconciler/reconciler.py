"""The reconciler: a write-back queue that carries journal items to the bucket.

Items (``reconciler.items``) are ``Upload(entry_id)`` (upload the entry's
current generation), ``Delete(path)`` (carry out a tombstone) and
``Abort(upload_id)`` (abort a multipart upload recorded in the journal that no
upload of this process is using: left by an earlier run, or whose abort failed;
retried with backoff until it succeeds, whatever the error). The queue only knows *when* an item
is due; what to send is read from the journal when the item runs, so a file
changed while queued is sent once, in its latest state.

Scheduling rules:
- An upload is due ``write_back_delay`` seconds after the last close (or the
  last change of a file that is not open for writing); while a file is open
  for writing it waits, unless forced by ``sync``/``fsync --fsync-upload``.
- At most one operation per item runs at a time; at most ``workers`` run at once.
  Only running items are ``inflight``; the rest wait in ``due`` (a heap): starting
  an item, ``hold`` and ``sync`` cost the same however long the queue.
- ``recover`` queues only what was pending before this run started (``carried_over``,
  read before the mount serves anything): a file created since waits for its
  write-back delay like any other.
- Transient errors retry with exponential backoff and jitter (``retry``);
  permanent ones stop the item (reported by ``status``) until the next ``sync``
  or restart. Data always stays in the cache.

Everything runs on the trio thread; ``run()`` is started in the daemon's nursery.
"""

from __future__ import annotations

import errno
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from .. import keys
from ..backend.base import StoreError, TransientError
from ..cache.journal import Entry, Journal, Tombstone
from ..errors import FsError
from ..retry import backoff_delay
from . import report
from .conflict import ResolvedElsewhere
from .deleter import CopyPending
from .due import DueQueue
from .items import Abort, Carried, Delete, Item, SyncResult, Upload
from .pace import Pace
from .uploader import RenamedDuringUpload, Uploader
from .waiting import Remaining, satisfied

log = logging.getLogger("mountsync.reconciler")

COPY_POLL = 0.5  # seconds between checks of a delete that waits for a rename's copy

class Reconciler:
    def __init__(self, journal: Journal, uploader: Uploader, *, write_back_delay: float = 5.0,
                 workers: int = 8, allow_delete: bool = False, retry_ceiling: float = 60.0) -> None:
        self.journal = journal
        self.uploader = uploader
        self.delay = write_back_delay
        self.allow_delete = allow_delete
        self.retry_ceiling = retry_ceiling
        self.due = DueQueue()
        self.writers: Counter[int] = Counter()
        self.inflight: dict[Item, trio.Event] = {}
        self.forced: set[Item] = set()
        self.stopped: dict[Item, str] = {}  # permanent failures, item → reason
        self.held_deletes: set[str] = set()  # tombstones of files still open here
        self.held_paths: Counter[str] = Counter()  # paths under a rename (see hold)
        self.started_at: dict[Item, str] = {}  # in-flight item → the path it started at
        self.workers = workers
        self.pace = Pace()  # fewer transfers while programs use the mount
        self._wake = trio.Event()
        self._progress = trio.Event()
        self._waiting: list[Remaining] = []  # one per sync in progress
        self.completed = 0
        self.restarts = 0  # times run() died and was restarted (status: worker health)

    # ------------------------------------------------------------ ChangeSink

    def changed(self, entry_id: int) -> None:
        if self.writers[entry_id] <= 0:
            self._schedule(Upload(entry_id), trio.current_time() + self.delay)

    def opened_for_write(self, entry_id: int) -> None:
        self.writers[entry_id] += 1

    def closed_for_write(self, entry_id: int) -> None:
        self.writers[entry_id] -= 1
        if self.writers[entry_id] <= 0:
            del self.writers[entry_id]
            e = self.journal.get_by_id(entry_id)
            if e is not None and (e.pending or not e.settled):
                self._schedule(Upload(entry_id), trio.current_time() + self.delay)

    def tombstoned(self, path: str, *, held: bool = False) -> None:
        """A remote delete was recorded. ``held``: not yet (the file is still open);
        a later call without ``held`` releases it."""
        if held:
            self.held_deletes.add(path)
            self.due.pop(Delete(path), None)
            return
        self.held_deletes.discard(path)
        self._schedule(Delete(path), trio.current_time())

    async def wait_idle(self, entry_id: int) -> None:
        ev = self.inflight.get(Upload(entry_id))
        if ev is not None:
            await ev.wait()

    async def wait_path_idle(self, path: str) -> None:
        """Wait until no remote delete of ``path`` is in flight."""
        ev = self.inflight.get(Delete(path))
        if ev is not None:
            await ev.wait()

    @asynccontextmanager
    async def hold(self, path: str) -> AsyncIterator[None]:
        """While the block runs, no upload or delete of anything at or below ``path``
        starts, and none is in flight: entering waits for those in flight (by the path they
        started at and the path their entry has now). A rename holds its source, so that
        what it reads from the journal and the bucket cannot change under it; items that
        fall due meanwhile run when the hold ends. Holds nest and may overlap."""
        self.held_paths[path] += 1
        try:
            while True:
                busy = [ev for item, ev in self.inflight.items() if self._item_below(item, path)]
                if not busy:
                    break
                for ev in busy:
                    await ev.wait()
            yield
        finally:
            self.held_paths[path] -= 1
            if self.held_paths[path] <= 0:
                del self.held_paths[path]
            self._wake.set()

    def _current_path(self, item: Item) -> str | None:
        if not isinstance(item, Upload):
            return item.path if isinstance(item, Delete) else None
        e = self.journal.get_by_id(item.entry_id)
        return e.path if e is not None else None

    def _item_paths(self, item: Item) -> list[str]:
        out = [self.started_at[item]] if item in self.started_at else []
        current = self._current_path(item)
        return out + [current] if current is not None else out

    def _item_below(self, item: Item, path: str) -> bool:
        return any(p == path or keys.is_below(p, path) for p in self._item_paths(item))

    def _held(self, item: Item) -> bool:
        return any(self._item_below(item, p) for p in self.held_paths)

    async def upload_now(self, entry_id: int, timeout: float = 120.0) -> None:
        e = self.journal.get_by_id(entry_id)
        if e is None or not e.pending:
            return
        result = await self.sync(timeout, only=[Upload(entry_id)])
        if not result.ok:
            raise FsError(errno.EIO, f"upload of {e.path!r} did not complete: {result.failed or result.remaining}")

    # ------------------------------------------------------------ queue

    def _schedule(self, item: Item, when: float) -> None:
        self.stopped.pop(item, None)
        cur = self.due.get(item)
        if cur is None or when != cur:
            self.due[item] = when
            self._wake.set()

    def recover(self, carried: Carried) -> int:
        """Queue what an earlier run left pending (``carried``, read before this run served
        anything), due at once; this run's own changes come by their events. Returns the count."""
        now = trio.current_time()
        still_pending = set(self.journal.pending_ids())  # one query, not one per item
        for entry_id in carried.uploads:
            if entry_id in still_pending:
                self.due[Upload(entry_id)] = min(self.due.get(Upload(entry_id), now), now)
        for path in carried.deletes:
            if self.journal.tombstone(path) is not None:
                self.due[Delete(path)] = now
        for entry_id in carried.unsettled:
            self.due.setdefault(Upload(entry_id), now + self.delay)
        for upload_id in carried.aborts:
            self.due[Abort(upload_id)] = now
        self._wake.set()
        return carried.count

    def _queue_aborts(self) -> None:
        """Queue an abort for every recorded multipart upload no upload of ours is using
        (one whose abort failed just now)."""
        now = trio.current_time()
        for rec in self.journal.multipart_uploads():
            item = Abort(rec.upload_id)
            if rec.upload_id not in self.uploader.active_uploads and item not in self.due \
                    and item not in self.inflight:
                self.due[item] = now
                self._wake.set()

    def _eligible(self, item: Item) -> bool:
        if item in self.inflight:
            return False
        if isinstance(item, Delete) and item.path in self.held_deletes:
            return False
        if isinstance(item, Upload) and self.writers[item.entry_id] > 0 and item not in self.forced:
            return False
        return not (self.held_paths and self._held(item))

    def busy_within(self, seconds: float) -> bool:
        """Whether something is in flight, or an item that may start is due within ``seconds``
        (items due later, such as edits waiting out the write-back delay, do not count)."""
        horizon = trio.current_time() + seconds
        return bool(self.inflight) or any(when < horizon and self._eligible(item)
                                          for item, when in self.due.items())

    def requeue_after_crash(self) -> None:
        """``run`` died: items it had in flight are queued again, their waiters woken."""
        self.restarts += 1
        now = trio.current_time()
        for item, ev in list(self.inflight.items()):
            self.due[item] = now
            ev.set()
        self.inflight.clear()
        self.started_at.clear()
        for w in self._waiting:
            w.recheck_all()
        self._progress.set()
        self._progress = trio.Event()

    def _start_due(self, nursery: trio.Nursery) -> float:
        """Start due items, earliest first, while a worker is free; returns when the next
        falls due (inf: none, or no free worker). Items not eligible now keep their time
        and are looked at again at the next wake-up: cost per item started or skipped."""
        now = trio.current_time()
        skipped: list[tuple[Item, float]] = []
        next_at = math.inf
        try:
            slots = self.pace.slots(self.workers)
            while len(self.inflight) < slots and (head := self.due.first()) is not None:
                item, when = head
                if when > now:
                    next_at = when
                    break
                eligible = self._eligible(item)  # (if it raises, the item stays queued)
                del self.due[item]
                if not eligible:
                    skipped.append(head)
                    continue
                self.inflight[item] = trio.Event()
                start_path = self._current_path(item)
                if start_path is not None:
                    self.started_at[item] = start_path
                nursery.start_soon(self._work, item)
        finally:
            for item, when in skipped:
                self.due.setdefault(item, when)
        if slots < self.workers and len(self.inflight) >= slots and self.due:
            next_at = min(next_at, self.pace.quiet_at())  # more may start once programs pause
        return next_at

    def foreground(self) -> None:
        """A program made a request to the mount (see ``reconciler.pace``)."""
        self.pace.request()

    def idle(self) -> bool:
        """Nothing running and nothing that could start now (tests wait for this)."""
        now = trio.current_time()
        return not self.inflight and not any(w <= now and self._eligible(i) for i, w in self.due.items())

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                next_at = self._start_due(nursery)
                with trio.move_on_at(next_at):
                    await self._wake.wait()
                self._wake = trio.Event()

    async def _work(self, item: Item) -> None:
        try:
            await self._do(item)
        finally:
            self.started_at.pop(item, None)
            self.inflight.pop(item).set()
            if isinstance(item, Upload):
                self._queue_aborts()
            for w in self._waiting:
                w.finished(item)
            self._progress.set()
            self._progress = trio.Event()
            self._wake.set()

    async def _do(self, item: Item) -> None:
        forced = item in self.forced
        try:
            if isinstance(item, Upload):
                e = await self.uploader.upload(item.entry_id)
                if e is not None and e.pending:
                    self._after_partial(item)
                else:
                    self.forced.discard(item)
                    if e is not None and not e.settled:
                        self._settle(item, e, forced)
            elif isinstance(item, Abort):
                await self.uploader.abort_recorded(item.upload_id)
                return
            else:
                await self.uploader.delete(item.path)
                self.forced.discard(item)
            self.completed += 1
        except CopyPending as p:
            # a rename's copy from this object is still to be done: ask again once it is due
            # (no request is made meanwhile; the copy's own retries carry any outage)
            now = trio.current_time()
            if p.entry_id is None:
                # a moved directory's marker: its keys below go first (at their own pace,
                # unless a sync forces them all)
                self.due[item] = now + (COPY_POLL if item in self.forced else max(COPY_POLL, self.delay))
            else:
                copy = Upload(p.entry_id)
                if item in self.forced and copy not in self.inflight:
                    self.forced.add(copy)  # a sync waits for the delete, so for the copy first
                    self.due[copy] = min(self.due.get(copy, now), now)
                self.due[item] = max(now + COPY_POLL, self.due.get(copy, now))
        except RenamedDuringUpload as r:
            self._renamed_during_upload(r)
            self.due[item] = trio.current_time() + (0 if item in self.forced else self.delay)
        except ResolvedElsewhere as r:
            if r.manual:
                self._stop(item, "conflict: the bucket changed under this edit; waiting for "
                                 "'mountsync resolve' (strategy manual)", quiet=True)
            elif r.requeue:
                self.due[item] = trio.current_time()
            else:
                self.forced.discard(item)
                self.completed += 1
        except StoreError as exc:
            if exc.transient or isinstance(item, Abort):
                self._retry(item, exc)
            else:
                self._stop(item, f"{type(exc).__name__}: {exc}")
        except OSError as exc:
            if exc.errno == errno.ENOSPC:  # room comes back as clean data is evicted
                self._retry(item, TransientError(f"cache disk full: {exc}"))
            else:
                self._stop(item, f"local error: {exc}")
        except Exception as exc:  # a bug: keep the loop alive and the data, retry later
            log.exception("unexpected error while handling %s", self.describe(item))
            self._retry(item, TransientError(f"internal error: {type(exc).__name__}: {exc}"))

    def _settle(self, item: Upload, e: Entry, forced: bool) -> None:
        """Uploaded: the file is cloud data now (SPEC §6), except when the upload was forced
        (sync, --fsync-upload) while a program still had it open for writing: then it
        stays removable until its normal write-back time after the last close, as a
        temporary file (an sqlite journal) would have been."""
        if forced and self.writers[item.entry_id] > 0:
            return  # closed_for_write schedules the settling upload check
        self.journal.update(item.entry_id, settled=1)

    def _after_partial(self, item: Upload) -> None:
        """The file changed during its upload: send the newer generation too."""
        if item in self.forced:
            self.due[item] = trio.current_time()
        elif self.writers[item.entry_id] <= 0:
            self.due[item] = trio.current_time() + self.delay

    def _renamed_during_upload(self, r: RenamedDuringUpload) -> None:
        if self.allow_delete or r.ours:
            self.journal.add_tombstone(Tombstone(r.old_path, 0o100000, r.etag, time.time()))
            self._schedule(Delete(r.old_path), trio.current_time())
        else:
            log.warning("%r was uploaded just before it was renamed; without --allow-delete "
                        "the copy under the old name stays in the bucket", r.old_path)

    def _retry(self, item: Item, exc: StoreError) -> None:
        attempts, where = self._bump_attempts(item, str(exc))
        wait = backoff_delay(attempts, ceiling=self.retry_ceiling)
        self.due[item] = trio.current_time() + wait
        log.info("retrying %s in %.1fs (attempt %d): %s", where, wait, attempts, exc)
        if where is not None:
            try:
                self._set_next_attempt(item, time.time() + wait)
            except OSError as exc2:
                log.info("could not record the next attempt of %s: %s", where, exc2)

    def _bump_attempts(self, item: Item, reason: str) -> tuple[int, str | None]:
        """Record the failure in the journal; a journal that cannot be written (disk full)
        must not turn an upload error into a dead worker, so that is only logged."""
        try:
            return self._record_attempt(item, reason)
        except OSError as exc:
            log.info("could not record the state of %s: %s", item, exc)
            return 1, None

    def _record_attempt(self, item: Item, reason: str) -> tuple[int, str | None]:
        if isinstance(item, Upload):
            e = self.journal.get_by_id(item.entry_id)
            if e is None:
                return 1, None
            self.journal.update(item.entry_id, attempts=e.attempts + 1, error=reason)
            return e.attempts + 1, e.path
        if isinstance(item, Abort):
            rec = self.journal.multipart_upload(item.upload_id)
            if rec is None:
                return 1, None
            self.journal.update_multipart(rec.upload_id, attempts=rec.attempts + 1, error=reason)
            return rec.attempts + 1, f"abort of a multipart upload of {rec.key!r}"
        t = self.journal.tombstone(item.path)
        if t is None:
            return 1, None
        self.journal.update_tombstone(item.path, attempts=t.attempts + 1, error=reason)
        return t.attempts + 1, f"delete of {item.path}"

    def _set_next_attempt(self, item: Item, when: float) -> None:
        if isinstance(item, Upload):
            self.journal.update(item.entry_id, next_attempt=when)
        elif isinstance(item, Delete):
            self.journal.update_tombstone(item.path, next_attempt=when)

    def _stop(self, item: Item, reason: str, quiet: bool = False) -> None:
        self.stopped[item] = reason
        self.forced.discard(item)
        _attempts, where = self._bump_attempts(item, reason)
        if not quiet:
            log.warning("stopped %s: %s (data kept in the cache)", where or item, reason)

    # ------------------------------------------------------------ sync

    def _targets(self) -> dict[Item, int]:
        out: dict[Item, int] = {Upload(e.id): e.dirty_gen for e in self.journal.pending() if e.id is not None}
        out.update({Delete(t.path): 0 for t in self.journal.tombstones() if t.path not in self.held_deletes})
        return out

    def _satisfied(self, item: Item, gen: int) -> bool:
        return satisfied(self.journal, item, gen)

    def describe(self, item: Item) -> str:
        """The item in words (a path, or what it does), for messages and status."""
        if isinstance(item, Upload):
            e = self.journal.get_by_id(item.entry_id)
            return e.path if e is not None else f"entry {item.entry_id}"
        if isinstance(item, Abort):
            return f"abort of multipart upload {item.upload_id}"
        return f"delete {item.path}"

    async def sync(self, timeout: float | None = None, only: list[Item] | None = None) -> SyncResult:
        """Send everything pending now, ignoring the write-back delay; wait for it."""
        targets = self._targets()
        if only is not None:
            targets = {i: g for i, g in targets.items() if i in only}
        now = trio.current_time()
        for item in targets:
            self.stopped.pop(item, None)
            self.forced.add(item)
            if item not in self.inflight:
                self.due[item] = now
        self._wake.set()
        remaining = Remaining(targets)
        self._waiting.append(remaining)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                while True:
                    remaining.refresh(self._satisfied)
                    done = len(targets) - len(remaining.left)
                    if not remaining.left:
                        return SyncResult(True, done)
                    if remaining.all_stopped(self.stopped, len(self.stopped)):
                        remaining.recheck_all()  # a failure is reported from a fresh look only
                        remaining.refresh(self._satisfied)
                        if remaining.all_stopped(self.stopped, len(self.stopped)):
                            return SyncResult(False, len(targets) - len(remaining.left),
                                              [f"{self.describe(i)}: {self.stopped[i]}" for i in remaining.left])
                        continue
                    await self._progress.wait()
        finally:
            self._waiting.remove(remaining)
        left = [i for i, g in targets.items() if not self._satisfied(i, g)]
        for i in left:
            self.forced.discard(i)
        return SyncResult(False, len(targets) - len(left),
                          [f"{self.describe(i)}: {self.stopped[i]}" for i in left if i in self.stopped],
                          [self.describe(i) for i in left if i not in self.stopped])

    async def resolve(self, path: str, keep: str, timeout: float = 120.0) -> SyncResult:
        """Resolve a conflict left for the user (strategy manual): keep ``local``,
        ``remote`` or ``both`` versions, then carry it out."""
        strategy = {"local": "local-wins", "remote": "remote-wins", "both": "keep-both"}[keep]
        e = self.journal.get(path)
        if e is None or e.id is None or not e.pending:
            return SyncResult(False, failed=[f"{path}: no pending local edit to resolve"])
        self.uploader.conflicts.overrides[e.id] = strategy
        return await self.sync(timeout, only=[Upload(e.id)])

    def status(self) -> dict:
        """What ``mountsync status`` shows of the write-back queue (``reconciler.report``)."""
        return report.status(self)
