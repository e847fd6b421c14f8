"""``Files``: open files — open, read (ranged fetch with read-ahead), write, truncate, release.

Hot path: ``write`` and cached ``read`` do one pread/pwrite on the cache file
and touch no network and no journal, except the first write after an upload
snapshot, which bumps the entry's dirty generation (one small commit).

Invariants:
- An open handle holds one reference on the node's ``CacheItem`` (``node.item``
  is set while ``open_count > 0``); the item owns the bytes, the present ranges
  and their persistence (``cache.item``).
- A pending data change implies the cache file is complete: the first write
  to an incomplete file fetches the rest first; truncation fetches what it keeps.
- Ranges being fetched are registered on the node's ``Reader`` (core/readahead.py):
  a reader waits for a range in flight instead of fetching it again, so one range
  is fetched once; sequential readers get a background read-ahead.
- Every download goes through ``cache.fetch.fetch_chunks``: ranged GETs of at
  most 8 MiB, each under its own ``read_timeout``, written to the cache file and
  recorded as present as they land (bounded memory; a retry resumes).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from .. import keys
from ..backend.base import ArchivedError, NotFoundError, PreconditionFailedError, StoreError
from ..cache.eviction import evict
from ..cache.fetch import CHUNK, FetchTimeout, fetch_chunks
from ..cache.item import CacheItem
from ..errors import FsError
from .context import Background, CoreContext, log, now_ns
from .nodes import HandleTable, Node
from .readahead import Reader, plan_read, subtract
from .tree import Tree

DISK_RESERVE = 8 * 1024 * 1024  # left free on the cache disk for the journal
EVICTION_SLACK = 256 * 1024  # freed beyond a shortfall: the journal's rows for the evictions


@dataclass
class Handle:
    node: Node
    write: bool


class Files:
    """Open files: the handle table and every byte that goes through the cache."""

    def __init__(self, ctx: CoreContext, tree: Tree, background: Background) -> None:
        self.ctx = ctx
        self.tree = tree
        self.handles: HandleTable[Handle] = HandleTable()
        self.background = background  # runs the read-ahead, while serving

    # ------------------------------------------------------------ open/close

    def attach_cache(self, node: Node) -> CacheItem:
        if node.item is not None:
            return node.item  # already open: one reference, held while open_count > 0, is shared
        e = self.tree.ensure_entry(node)  # FsError(ENOENT) for a removed node not open
        assert e.id is not None  # ensure_entry returns a saved row
        node.item = self.ctx.items.open(e.id)
        return node.item

    def _detach_cache(self, node: Node) -> None:
        """Drop the node's reference on its item once nothing has it open."""
        if node.open_count == 0 and node.item is not None:
            node.stop_readahead()
            self.ctx.items.close(node.item)
            node.item = None

    @staticmethod
    def _item(node: Node) -> CacheItem:
        """The open item of a node that has a handle open (EBADF if it has none)."""
        if node.item is None:
            raise FsError(errno.EBADF, f"{node.path!r} is not open")
        return node.item

    def new_handle(self, node: Node, write: bool) -> int:
        fh = self.handles.add(Handle(node, write))
        node.open_count += 1
        if write and node.entry_id is not None:
            self.ctx.sink.opened_for_write(node.entry_id)
        return fh

    def handle(self, fh: int) -> Handle:
        h = self.handles.get(fh)
        if h is None:
            raise FsError(errno.EBADF)
        return h

    async def open(self, ino: int, flags: int) -> tuple[int, bool]:
        """Open a file; returns (fh, keep_cache)."""
        node = self.tree.node(ino)
        if node.is_dir:
            raise FsError(errno.EISDIR)
        write = (flags & os.O_ACCMODE) != os.O_RDONLY
        if write:
            self.ctx.writable()
        await self._revalidate(node)
        keep_cache = node.kernel_version == node.content_version
        node.kernel_version = node.content_version
        self.attach_cache(node)
        fh = self.new_handle(node, write)
        try:
            if flags & os.O_TRUNC and write:
                await self.truncate(node, 0)
        except BaseException:
            await self.release(fh)
            raise
        return fh, keep_cache

    async def _revalidate(self, node: Node) -> bool:
        """Close-to-open: a clean cached file older than the TTL is checked against the
        bucket (HEAD). Returns whether the kernel may keep its page cache."""
        e = self.tree.entry(node)
        if e is not None and e.state.local_wins:
            return True
        if trio.current_time() - node.attr_time < self.ctx.opt.metadata_ttl:
            return True
        try:
            info = await self.ctx.store.head(self.ctx.key(node.path))
        except NotFoundError:
            # deleted by another writer: the name goes now (an open handle keeps its data)
            parent = self.tree.at(keys.parent_of(node.path))
            if e is not None:
                self.tree.drop_entry(e)
            if parent is not None and parent.children is not None:
                parent.children.pop(keys.name_of(node.path), None)
            self.tree.detach(node)
            raise FsError(errno.ENOENT, f"{node.path!r} was deleted in the bucket") from None
        except StoreError as exc:
            log.debug("revalidate %r: %s", node.path, exc)
            return True
        known = e.base_etag if e is not None else node.etag
        node.attr_time = trio.current_time()
        if info.etag != known:
            self.tree.remote_changed(node, e, info)
            node.attr_time = trio.current_time()
            return False
        return True

    def _commit(self, node: Node) -> None:
        """Write the node's size/mtime/cache ranges to its journal entry (if it still has one)."""
        if node.entry_id is None or node.detached:
            return
        if node.item is not None:
            node.item.commit(node.size, node.mtime_ns)
        else:
            self.ctx.journal.update(node.entry_id, size=node.size, mtime_ns=node.mtime_ns, last_used=time.time())

    async def flush(self, fh: int) -> None:
        h = self.handle(fh)
        if h.write:
            self._commit(h.node)

    async def fsync(self, fh: int, datasync: bool = False) -> None:
        h = self.handle(fh)
        node = h.node
        if node.item is not None:
            await trio.to_thread.run_sync(node.item.fsync)
        self._commit(node)
        await trio.to_thread.run_sync(self.ctx.journal.make_durable)
        if self.ctx.opt.fsync_upload and node.entry_id is not None and not node.detached:
            await self.ctx.sink.upload_now(node.entry_id)

    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh)
        if h is None:
            return
        node = h.node
        node.open_count -= 1
        try:
            self._commit(node)
        except OSError as exc:
            # (disk full) the data file stays the truth for the size; a restart reads it
            log.info("could not record the close of %r: %s", node.path, exc)
        if h.write and node.entry_id is not None:
            self.ctx.sink.closed_for_write(node.entry_id)
        self._detach_cache(node)
        if node.open_count == 0 and node.deferred_delete is not None:
            path, node.deferred_delete = node.deferred_delete, None
            self.ctx.sink.tombstoned(path)
        self.tree.maybe_collect(node)

    # ------------------------------------------------------------ data

    def _mark_dirty(self, node: Node, item: CacheItem) -> None:
        """Record a data change (before its bytes land); the first since the last upload
        snapshot bumps the entry's generation and tells the reconciler."""
        if node.entry_id is None or node.detached:
            return
        if item.mark_dirty():
            self.ctx.sink.changed(node.entry_id)

    def _write_once(self, node: Node, item: CacheItem, data: bytes, offset: int) -> int:
        self._mark_dirty(node, item)
        return item.pwrite(data, offset)

    async def write(self, fh: int, offset: int, data: bytes) -> int:
        h = self.handle(fh)
        if not h.write:
            raise FsError(errno.EBADF)
        node = h.node
        item = self._item(node)
        if not item.complete:
            # the first write to a partly cached file brings in the rest, so that a
            # pending upload always has the whole content (deferred from open so
            # that open(O_TRUNC) or a truncate to 0 never downloads)
            await self._fetch(node, 0, node.size, whole=True)
        await item.wait_writable()
        # keep a reserve free on the cache disk, so the journal can always record that
        # uploads finished (which is what lets clean data be evicted again)
        if not self._room_for(DISK_RESERVE + len(data)):
            raise FsError(errno.ENOSPC, "cache disk full of data not uploaded yet")
        # record the change before the bytes land, so it is never left unrecorded;
        # on a full disk, make room once by dropping clean cached data
        n = self._with_room(lambda: self._write_once(node, item, data, offset))
        node.size = max(node.size, offset + n)
        node.mtime_ns = node.ctime_ns = now_ns()
        return n

    def _with_room(self, fn: Callable[[], int]) -> int:
        try:
            return fn()
        except OSError as exc:
            if exc.errno != errno.ENOSPC or not self._make_room(DISK_RESERVE):
                raise
        return fn()

    def _room_for(self, need: int) -> bool:
        """Evict clean cached data until ``need`` bytes are free on the cache disk; False when
        they cannot be. Repeats: the journal's writes for the evictions take some of the
        freed space back (each round frees something or ends the loop)."""
        while (short := need - self.ctx.items.data.free_bytes()) > 0:
            if not self._make_room(short + EVICTION_SLACK):
                return False
        return True

    def _make_room(self, needed: int) -> bool:
        """The cache disk is (nearly) full: drop clean cached files that are not open,
        least recently used first, until ``needed`` bytes are freed or none is left.
        Returns whether anything was freed."""
        freed = evict(self.ctx.items, usage=needed, limit=0)
        if freed:
            log.info("cache disk full: evicted %d bytes of clean cached data", freed)
        return freed > 0

    async def read(self, fh: int, offset: int, size: int) -> bytes:
        node = self.handle(fh).node
        item = self._item(node)
        end = min(offset + size, node.size)
        if end <= offset:
            return b""
        if not item.complete:
            reader = self._reader(node)
            plan = plan_read(reader.stream, offset, end, node.size)
            reader.stream = plan.stream
            if plan.ahead is not None:
                self._read_ahead(node, item, *plan.ahead)
            if not item.present(offset, end):
                need_start, need_end = plan.need
                await self._fetch(node, need_start, need_end - need_start)
        return item.pread(end - offset, offset)

    async def truncate(self, node: Node, size: int) -> None:
        """Set a file's size; the result is a complete local copy with a pending upload."""
        self.ctx.writable()
        item = self.attach_cache(node)
        node.open_count += 1  # like a handle: the cache file stays open until we are done
        try:
            if not item.complete and size > 0:
                await self._fetch(node, 0, min(size, node.size), whole=True)
            await item.wait_writable()
            item.truncate(size)
            item.mark_complete()
            node.size = size
            node.mtime_ns = node.ctime_ns = now_ns()
            self._mark_dirty(node, item)
            self._commit(node)
            if node.entry_id is not None:
                self.ctx.sink.changed(node.entry_id)
        finally:
            node.open_count -= 1
            self._detach_cache(node)

    @staticmethod
    def _reader(node: Node) -> Reader:
        assert node.reader is not None  # a regular file's
        return node.reader

    def _source(self, node: Node) -> tuple[str, str | None]:
        """The key and ETag a fetch of the node's content reads."""
        if node.detached:
            # unlinked while open: no journal entry any more; read the version it had
            return self.ctx.key(node.deferred_delete or node.path), node.etag
        e = self.tree.ensure_entry(node)
        if e.copy_from is not None:  # renamed; the bucket has not copied it yet
            return self.ctx.key(e.copy_from), e.copy_etag
        return self.ctx.key(node.path), e.base_etag

    def _read_ahead(self, node: Node, item: CacheItem, start: int, end: int) -> None:
        """Fetch ``[start, end)`` in the background (what is neither present nor already
        being fetched), in parallel chunks; it stops when the item is closed or changes.
        Without a background nursery (not serving), nothing is fetched ahead."""
        reader = self._reader(node)
        todo = subtract(item.missing(start, end), reader.inflight)
        if not todo or not self.background.running:
            return
        reader.begin(todo)  # registered now, so nobody asks for these ranges meanwhile
        # one streaming GET per window (up to CHUNK): few requests; measured on moto, two
        # per window were 1.66 s for 256 MiB against 1.3 s (loopback), 1.42 s with 20 ms
        chunk = min(CHUNK, end - start)
        self.background.start_soon(self._read_ahead_task, node, item, todo, chunk)

    async def _read_ahead_task(self, node: Node, item: CacheItem, todo: list[tuple[int, int]], chunk: int) -> None:
        reader = self._reader(node)
        scope = trio.CancelScope()
        reader.scopes.add(scope)
        try:
            with scope:
                if node.item is item:
                    await self._fetch_ranges(node, item, todo, chunk=chunk, eager=True)
        except Exception as exc:  # noqa: BLE001 - a read-ahead never takes the mount down
            log.debug("read-ahead of %r stopped: %s", node.path, exc)  # the reader fetches and reports
        finally:
            reader.scopes.discard(scope)
            reader.end(todo)

    async def _fetch(self, node: Node, offset: int, size: int, *, whole: bool = False) -> None:
        """Bring ``[offset, offset+size)`` into the cache file, or with ``whole`` everything
        up to ``offset+size``: the parts being fetched already (read-ahead, another
        reader) are waited for, the rest fetched here (``_fetch_ranges``). Returns early,
        quietly, when the file changes or is closed meanwhile."""
        item = self._item(node)
        reader = self._reader(node)
        end = min(node.size, offset + size)
        if whole:
            offset, end = 0, node.size if size >= node.size else end
        version = node.content_version
        while node.item is item and node.content_version == version:
            missing = item.missing(offset, end)
            if not missing:
                return
            free = subtract(missing, reader.inflight)
            if not free:
                await reader.wait()
                continue
            reader.begin(free)
            try:
                await self._fetch_ranges(node, item, free, whole=whole, report=True)
            finally:
                reader.end(free)

    async def _fetch_ranges(self, node: Node, item: CacheItem, ranges: list[tuple[int, int]], *,
                            whole: bool = False, report: bool = False, chunk: int = CHUNK,
                            eager: bool = False) -> None:
        """Fetch ``ranges`` in bounded chunks (``cache.fetch``): each ranged GET has its own
        ``read_timeout``, each chunk is recorded as present when it lands, so a failed
        fetch leaves what arrived and a retry resumes. ``report``: a failure is logged
        and raised as ``FsError(EIO)`` (a reader's); otherwise the store error is raised."""
        reader = self._reader(node)
        key, etag = self._source(node)
        version = node.content_version

        def wanted() -> bool:  # the same version of the same file, still incomplete
            return not item.complete and node.item is item and node.content_version == version

        landed = False

        def land(body: bytes, at: int) -> None:
            nonlocal landed
            item.pwrite(body, at)
            landed = True
            reader.notify()

        try:
            await fetch_chunks(self.ctx.store, key, etag, ranges, land, timeout=self.ctx.opt.read_timeout,
                               chunk=chunk, eager=eager, still_wanted=wanted)
        except FetchTimeout:
            if not report:
                raise
            log.warning("reading %r timed out after %gs: the endpoint does not answer",
                        node.path, self.ctx.opt.read_timeout)
            raise FsError(errno.EIO, f"reading {node.path!r} timed out") from None
        except PreconditionFailedError:
            node.attr_time = float("-inf")
            if not report:
                raise
            log.warning("%r changed in the bucket while being read; reopen it", node.path)
            raise FsError(errno.EIO, "object changed while reading") from None
        except ArchivedError as exc:
            if not report:
                raise
            if node.path not in self.ctx.archived:  # one line per file, not per read
                log.warning("cannot read %r: its object is in storage class %s; restore it first (for "
                            "example: aws s3api restore-object --bucket BUCKET --key %r --restore-request "
                            "Days=1), then read it again", node.path, exc.storage_class, key)
            self.ctx.archived[node.path] = exc.storage_class
            raise FsError(errno.EACCES, f"{node.path!r} is archived ({exc.storage_class})") from None
        except StoreError as exc:
            if not report:
                raise
            log.warning("cannot read %r from the bucket: %s", node.path, exc)
            raise FsError(errno.EIO, str(exc)) from exc
        finally:
            if landed and wanted() and (whole or node.open_count == 0):
                self._commit_quietly(node)  # what landed survives a failure and a restart
        if not wanted():
            return
        if item.present(0, node.size):
            item.mark_complete()
        if node.open_count == 0 or whole:
            self._commit(node)

    def _commit_quietly(self, node: Node) -> None:
        try:
            self._commit(node)
        except OSError as exc:
            log.info("could not record the cached ranges of %r: %s", node.path, exc)
