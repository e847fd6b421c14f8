"""Wiring: builds the layers below the FUSE adapter, in one place.

``Stack`` owns the journal, the data files, the async store, the reconciler
and the filesystem core, constructed in dependency order (backend → cache →
reconciler → core). The daemon and the core tests both use it, so tests run
the same wiring as a mount, minus the kernel.

Lifecycle: ``Stack.open`` (lock the cache dir, open the journal, recover) →
``stack.run_background(nursery)`` → ... → ``await stack.drain(timeout)`` →
``stack.close()``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass, field

import trio

from .attrs import Defaults
from .backend.base import ObjectStore, StoreError
from .backend.bucket import Bucket
from .cache.datafiles import DataStore
from .cache.eviction import evict
from .cache.item import Items
from .cache.journal import Journal
from .cache.spares import SparePool
from .config import MountConfig
from .core.context import CoreOptions
from .core.filesystem import FileSystem
from .errors import UserError
from .events import EventBus
from .reconciler.conflict import ConflictCopies, ConflictHandler
from .reconciler.items import Carried, SyncResult, carried_over
from .reconciler.probe import probe_server
from .reconciler.reconciler import Reconciler
from .reconciler.uploader import Uploader, UploadSettings
from .trust import lock_cache_dir, prepare_cache_dir

log = logging.getLogger("mountsync")


@dataclass
class Stack:
    config: MountConfig
    store: Bucket
    journal: Journal
    items: Items
    uploader: Uploader
    reconciler: Reconciler
    fs: FileSystem
    cache_dir: str
    lock_fd: int | None
    events: EventBus
    conflicts: ConflictHandler
    recovered: trio.Event = field(default_factory=trio.Event)  # set once pending items are queued
    carried: Carried = field(default_factory=Carried)  # pending before this run (read in open)

    @property
    def data(self) -> DataStore:
        """Where the data files live (layout only)."""
        return self.items.data

    @classmethod
    def open(cls, config: MountConfig, store: ObjectStore, *, lock: bool = True) -> Stack:
        cache_dir = prepare_cache_dir(config.resolved_cache_dir())  # refuses a dir others could change
        lock_fd = lock_cache_dir(cache_dir) if lock else None
        try:
            journal = Journal(os.path.join(cache_dir, "journal.db"))
        except sqlite3.DatabaseError as exc:
            if lock_fd is not None:
                os.close(lock_fd)
            raise UserError(f"the journal in cache dir {cache_dir} is damaged ({exc}): move the cache dir "
                            "aside (it may hold data not yet uploaded) or use another --cache-dir") from None
        items = Items(journal, DataStore(cache_dir), SparePool(cache_dir))
        bucket = Bucket(store, prefix=config.prefix, max_concurrency=max(16, config.upload_workers * 2))
        events = EventBus()
        copies = ConflictCopies(bucket, journal)
        conflicts = ConflictHandler(bucket, journal, items, events,
                                    strategy=config.conflict_strategy,
                                    recovery_dir=os.path.join(cache_dir, "recovery"), copies=copies)
        uploader = Uploader(bucket, journal, items, UploadSettings(
            multipart_threshold=config.multipart_threshold, part_size=config.part_size),
            conflicts)
        reconciler = Reconciler(journal, uploader, write_back_delay=config.write_back_delay,
                                workers=config.upload_workers, allow_delete=config.allow_delete)
        options = CoreOptions(
            read_only=config.read_only, allow_delete=config.allow_delete,
            metadata_ttl=config.metadata_ttl, read_timeout=config.read_timeout,
            negative_metadata_ttl=config.negative_metadata_ttl,
            fsync_upload=config.fsync_upload,
            defaults=Defaults(uid=config.uid, gid=config.gid, file_mode=config.file_mode, dir_mode=config.dir_mode),
        )
        fs = FileSystem(bucket, journal, items, reconciler, options, events, conflict_copies=copies)
        _recover_local(journal, items, bucket)
        stack = cls(config, bucket, journal, items, uploader, reconciler, fs, cache_dir, lock_fd, events, conflicts)
        # what the earlier run left, read before the mount serves anything: files created
        # by this run must not be swept into the recovery (they wait for their delay)
        stack.carried = carried_over(journal)
        return stack

    async def check_conditional_writes(self) -> None:
        """Find out once per cache dir whether the server honours conditional writes and
        deletes (``--conditional-writes yes|no`` sets both)."""
        names = ("conditional_writes", "conditional_deletes", "conditional_copies")
        known = {n: self.journal.get_meta(n) for n in names}
        if self.config.conditional_writes in ("yes", "no"):
            known = dict.fromkeys(names, self.config.conditional_writes)
        elif None in known.values() and not self.config.read_only:
            caps = await probe_server(self.store)
            for n in names:
                answer = "yes" if getattr(caps, n) else "no"
                known[n] = answer
                self.journal.set_meta(n, answer)
        for n in names:
            setattr(self.store.caps, n, known[n] != "no")
        self.uploader.conditional_writes = self.store.caps.conditional_writes

    async def recover_remote(self) -> None:
        """Queue what an earlier run left: pending items, and aborts of the multipart
        uploads it recorded."""
        await self.check_conditional_writes()
        n = self.reconciler.recover(self.carried)
        if n:
            log.info("resuming %d pending item(s) from an earlier run", n)

    async def run_background(self) -> None:
        """Run the reconciler until cancelled (start it in the daemon's nursery)."""
        try:
            await self.recover_remote()
        except StoreError as exc:
            log.info("could not check the server's conditional writes yet: %s", exc)
            self.reconciler.recover(self.carried)
        self.recovered.set()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._evict_periodically)
            nursery.start_soon(self.fs.listings.meta.run)  # HEADs queued by readdir listings
            nursery.start_soon(self.fs.background.serve)  # read-ahead, revalidation of big directories
            if self.items.spares is not None:
                nursery.start_soon(self.items.spares.serve)  # empty data files made ahead
            await self._supervise_reconciler()

    async def _supervise_reconciler(self) -> None:
        """Run the reconciler; if it ever dies (a bug), say so and restart it with backoff."""
        delay = 1.0
        while True:
            try:
                await self.reconciler.run()
            except Exception:
                log.exception("the upload worker died; restarting it in %.0fs (pending data is safe in the cache)",
                              delay)
                self.reconciler.requeue_after_crash()
                await trio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _evict_periodically(self, interval: float = 10.0) -> None:
        while True:
            await trio.sleep(interval)
            usage = await trio.to_thread.run_sync(self.items.data.disk_usage)
            freed = evict(self.items, usage, self.config.max_cache_size)
            if freed:
                log.info("evicted %d bytes of clean cached data (limit %d)", freed, self.config.max_cache_size)

    async def drain(self, timeout: float | None) -> SyncResult:
        return await self.reconciler.sync(timeout)

    def close(self) -> None:
        self.journal.close()
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


def _recover_local(journal: Journal, items: Items, bucket: Bucket) -> None:
    """Restart after a crash: the data file is the truth for a dirty file's size;
    snapshot leftovers and data files no entry owns are removed; multipart upload ids
    kept in the older ``entries.mpu_id`` column move to ``multipart_uploads``."""
    items.data.clear_snapshots()
    for e in journal.with_multipart():
        if e.mpu_id is not None and e.id is not None:
            journal.add_multipart(e.mpu_id, bucket.key(e.path), e.id)
            journal.update(e.id, mpu_id=None)
    for entry_id, recorded in journal.pending_file_sizes():
        size = items.data.file_size(entry_id)
        if size != recorded:
            journal.update(entry_id, size=size)
    on_disk = set()
    for _dirpath, _dirs, files in os.walk(items.data.data_dir):
        for name in files:
            if name.isdigit():
                on_disk.add(int(name))
    for entry_id in on_disk - journal.entry_ids():
        items.data.remove(entry_id)
