"""``MetaFetcher``: object attributes for a listed directory without one serial HEAD per name.

A listing carries size, ETag and LastModified but not the ``x-amz-meta-*`` that
hold mode/uid/gid/mtime (and say "symlink"). For each object of a listing page:

- the persistent metadata cache (``cache.metacache``, keyed by key + ETag +
  LastModified) answers for a version seen before, in this run or an earlier
  one: no request;
- otherwise, for a ``readdir`` listing, a HEAD (and for a symlink object the
  read of its target) is queued as soon as the page arrives and done by
  ``WORKERS`` tasks, so `ls -l` waits for HEADs issued concurrently rather than
  one after another. A lookup that needs the attributes of a name being
  fetched waits for that fetch (``wait``) instead of asking again.

Everything runs on the trio thread. The workers run in the nursery of ``run``
(started by ``Stack.run_background``); without it nothing is queued and
lookups HEAD by themselves. ``_pending`` holds the paths queued or being fetched,
each with the event set when its fetch ends (done, skipped or failed), made only
when a lookup waits for it (100,000 listed names would hold 100,000 events). The
fetch only writes the metadata cache and adopts the result on the node still
waiting for that version.
"""

from __future__ import annotations

import math
import stat

import trio

from .. import keys
from ..backend.base import ListPage, NotFoundError, ObjectInfo, StoreError
from ..cache.metacache import CachedMeta
from ..errors import FsError
from . import symlinks
from .context import CoreContext, log
from .nodes import Node
from .tree import Tree

WORKERS = 16  # HEADs in flight for listings at most (the bucket's limiter bounds all requests)


class MetaFetcher:
    def __init__(self, ctx: CoreContext, tree: Tree) -> None:
        self.ctx = ctx
        self.tree = tree
        self._pending: dict[str, trio.Event | None] = {}
        self._send: trio.MemorySendChannel[tuple[str, ObjectInfo]] | None = None

    async def run(self) -> None:
        """Do queued fetches until cancelled."""
        send, receive = trio.open_memory_channel[tuple[str, ObjectInfo]](math.inf)
        self._send = send
        try:
            async with trio.open_nursery() as nursery:
                for _ in range(WORKERS):
                    nursery.start_soon(self._worker, receive)
        finally:
            self._send = None
            for ev in self._pending.values():
                if ev is not None:
                    ev.set()
            self._pending.clear()

    def page_arrived(self, dir_path: str, dir_prefix: str, page: ListPage, *, fetch: bool,
                     known: dict[str, CachedMeta | None]) -> None:
        """Note in ``known`` what the cache says of each object of ``page`` (None: not this
        version); with ``fetch``, queue a HEAD for each object the cache does not know."""
        for obj in page.objects:
            name = keys.listing_name(dir_prefix, obj.key)
            if name is None or obj.key.endswith("/"):
                continue
            path = keys.join(dir_path, name)
            cached = self.ctx.journal.object_meta.get(obj.key, obj.etag, obj.last_modified)
            if cached is None and obj.metadata is not None and symlinks.object_kind(obj.metadata, obj.size) \
                    != stat.S_IFLNK:  # the listing carried the metadata (Azure, GCS): no HEAD needed
                self.ctx.journal.object_meta.put(obj.key, obj.etag, obj.last_modified, obj.metadata)
                cached = self.ctx.journal.object_meta.get(obj.key, obj.etag, obj.last_modified)
            known[name] = cached
            if cached is None and fetch:
                self._queue(path, obj)

    def _queue(self, path: str, info: ObjectInfo) -> None:
        if self._send is None or path in self._pending:
            return
        node = self.tree.at(path)
        if node is not None and (node.entry_id is not None or node.is_dir):
            return
        self._pending[path] = None
        self._send.send_nowait((path, info))

    async def wait(self, path: str) -> None:
        """Return when no fetch of ``path`` is under way."""
        if path not in self._pending:
            return
        ev = self._pending[path]
        if ev is None:
            ev = self._pending[path] = trio.Event()
        await ev.wait()

    async def _worker(self, receive: trio.MemoryReceiveChannel[tuple[str, ObjectInfo]]) -> None:
        async for path, listed in receive:
            try:
                await self._fetch(path, listed)
            finally:
                ev = self._pending.pop(path, None)
                if ev is not None:
                    ev.set()

    async def _fetch(self, path: str, listed: ObjectInfo) -> None:
        node = self.tree.at(path)
        if node is not None and (node.entry_id is not None or (node.meta_known and node.etag == listed.etag)):
            return  # known meanwhile
        try:
            info = await self.ctx.store.head(listed.key)
            target = None
            if symlinks.is_symlink_object(info):
                target = await symlinks.read_target(self.ctx.store, listed.key, info, self.ctx.opt.read_timeout)
        except (NotFoundError, StoreError) as exc:
            log.debug("HEAD %r for its listing failed (%s); a lookup asks again", path, exc)
            return
        except FsError as exc:  # read_target: EIO; the lookup reports it
            log.debug("reading symlink %r for its listing failed (%s)", path, exc)
            return
        self.ctx.journal.object_meta.put(listed.key, info.etag, info.last_modified, info.metadata, target)
        parent = self.tree.at(keys.parent_of(path))
        node = self.tree.at(path)
        children = parent.children if parent is not None else None
        if children is None or node is None or children.get(keys.name_of(path)) is not node:
            return

        if node.entry_id is None and not node.meta_known and node.etag == info.etag:
            children[keys.name_of(path)] = self.adopt(node, info, CachedMeta(info.metadata or {}, target))

    def adopt(self, node: Node, info: ObjectInfo, cached: CachedMeta) -> Node:
        """Give a node known only from the bucket the attributes of version ``info``; returns the
        node to keep in its parent (a new node if the object is a symlink, FIFO, socket or
        device: a node never changes kind)."""
        kind = symlinks.object_kind(cached.metadata, info.size)
        if kind == stat.S_IFLNK and cached.target is None:
            kind = stat.S_IFREG  # a symlink row without its target: shown as it was listed
        if kind != node.kind:
            return self.retype(node, kind, info, cached)
        node.etag = info.etag
        node.size = info.size
        if node.kind == stat.S_IFLNK and cached.target is not None:
            node.target = cached.target
        self.tree.apply_metadata(node, cached.metadata, info.last_modified)
        return node

    def retype(self, node: Node, kind: int, info: ObjectInfo, cached: CachedMeta) -> Node:
        """The object at ``node``'s path (version ``info``) is of file type ``kind``: a new
        node of that kind takes its place (the caller puts it in the parent's children)."""
        self.tree.detach(node)
        new = self.tree.table.new(kind, node.path, mode=0o777 if kind == stat.S_IFLNK else node.mode,
                                  uid=node.uid, gid=node.gid)
        new.target = cached.target if kind == stat.S_IFLNK else None
        new.etag = info.etag
        new.size = info.size if kind == stat.S_IFREG else 0
        self.tree.apply_metadata(new, cached.metadata, info.last_modified)
        return new
