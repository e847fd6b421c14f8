"""``Listings``: what a directory holds and what a name is, as fresh as the TTLs require.

A directory is listed from the bucket (merged with the journal: local state
wins, tombstoned names are hidden) at most once per ``--metadata-ttl``;
concurrent listings of one directory are one request (``_listing``). A lookup
of a known name after the TTL lists the directory again (one LIST page; in the
background, spaced by what its listing took (``relist_due``), when it holds more
than ``RELIST_MAX`` names; a HEAD of that name when the TTL is 0). Attributes come
from object metadata: the persistent metadata cache (key + ETag + LastModified)
or a HEAD, queued concurrently for the objects of a ``readdir`` listing
(``core.metafetch``); a version already seen is never HEADed again. Nodes are made
and detached through the ``Tree``; ``Listings`` owns the directory handles of
``opendir`` (``dir_handles``), the listings under way and the invalid keys logged.

Everything runs on the trio thread. A listing or HEAD awaits the bucket, so
each of them re-checks after the await what it is about to change (the parent
may have been detached, its children replaced). Callers that decide about a
name across awaits hold the directory's namespace lock (``Names.locks``);
lookups and readdir take none, as in the kernel.
"""

from __future__ import annotations

import errno
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass

import trio

from .. import keys
from ..backend.base import ListPage, NotFoundError, StoreError
from ..cache.metacache import CachedMeta
from ..errors import FsError
from ..events import InvalidateEntry
from . import symlinks
from .context import Background, CoreContext, log
from .metafetch import MetaFetcher
from .namespace import LocalChild, RemoteChild, merge_children, parse_listing, relist_due
from .nodes import MAX_ABSENT_NAMES, Attr, HandleTable, Node, NoEntry
from .tree import Tree

RELIST_MAX = 1000  # names: up to one LIST page, revalidating a name relists its directory


@dataclass
class DirHandle:
    node: Node
    snapshot: list[tuple[str, Node]] | None = None


class Listings:
    def __init__(self, ctx: CoreContext, tree: Tree, background: Background) -> None:
        self.ctx = ctx
        self.tree = tree
        self.dir_handles: HandleTable[DirHandle] = HandleTable()
        self._invalid_logged: set[str] = set()
        self.meta = MetaFetcher(ctx, tree)
        self._listing: dict[int, trio.Event] = {}  # directory inode → set when its listing ends
        self._took: dict[int, float] = {}  # directory inode → seconds its last listing took
        self.background = background  # runs revalidations of big directories, while serving

    def _on_invalid(self, key: str, why: str) -> None:
        if key not in self._invalid_logged:
            self._invalid_logged.add(key)
            log.info("key %r is not shown: %s", key, why)

    def _fresh(self, d: Node) -> bool:
        return d.children is not None and trio.current_time() - d.listed_at < self.ctx.opt.metadata_ttl

    async def ensure_listed(self, d: Node, *, force: bool = False, fetch_meta: bool = False) -> dict[str, Node]:
        """The directory's children, listed from the bucket at most once per TTL. With
        ``fetch_meta`` (readdir), HEADs of objects the metadata cache does not know are
        queued as each page arrives."""
        if not force:
            while (running := self._listing.get(d.ino)) is not None:
                await running.wait()  # one listing at a time per directory; share its result
            if self._fresh(d):
                assert d.children is not None
                return d.children
        done = self._listing[d.ino] = trio.Event()
        try:
            return await self._list(d, fetch_meta)
        finally:
            if self._listing.get(d.ino) is done:
                del self._listing[d.ino]
            done.set()

    async def _readdir_listing(self, d: Node) -> dict[str, Node]:
        """What ``readdir`` shows. A directory of more than ``RELIST_MAX`` names whose
        listing is older than the TTL is shown as last listed while one listing revalidates
        it in the background (the next ``readdir`` shows the result): relisting 10,000
        names takes ten LIST pages, which ``ls`` should not wait for; smaller ones first."""
        if (d.children is not None and len(d.children) > RELIST_MAX and self.ctx.opt.metadata_ttl > 0
                and not self._fresh(d) and self.background.running):
            self._revalidate_soon(d)
            return d.children
        return await self.ensure_listed(d, fetch_meta=True)

    def _revalidate_soon(self, d: Node) -> None:
        if relist_due(d.listed_at, self._took.get(d.ino, 0.0), self.ctx.opt.metadata_ttl,
                      trio.current_time()) and d.ino not in self._listing:
            self.background.start_soon(self._revalidate, d)

    async def _revalidate(self, d: Node) -> None:
        try:
            await self.ensure_listed(d, fetch_meta=True)
        except Exception as exc:  # noqa: BLE001 - a background refresh never takes the mount down
            log.debug("background listing of %r failed: %s", d.path, exc)

    async def _list(self, d: Node, fetch_meta: bool) -> dict[str, Node]:
        dir_prefix = self.ctx.store.dir_key(d.path)
        # deletes done while the listing is under way may still be in it: hide what was
        # tombstoned when it started as well as what is tombstoned when it ends
        hidden_before = self.tree.tombstoned_names(d.path)
        # likewise an upload finishing during the listing may be missing from it, or shown
        # as the version before it: what the journal held for each name when it started
        before = self._journal_state(d)
        known: dict[str, CachedMeta | None] = {}
        started = trio.current_time()

        def on_page(page: ListPage) -> None:
            self.meta.page_arrived(d.path, dir_prefix, page, fetch=fetch_meta, known=known)

        try:
            listing = await self.ctx.store.list_all(dir_prefix, on_page=on_page)
        except StoreError as exc:
            if d.children is not None:
                # the cached listing stands for another TTL: during an outage every lookup
                # and create would otherwise pay a failed LIST (with the client's retries)
                log.debug("listing %r failed (%s); using the cached listing", d.path, exc)
                d.listed_at = trio.current_time()
                return d.children
            # never listed and the endpoint is away: show what the cache knows, so that
            # creating files keeps working (their uploads are If-None-Match, so an object
            # we could not see is never overwritten); list again at the next lookup
            log.warning("cannot list %r (%s); showing only cached entries until the endpoint answers",
                        d.path or "/", exc)
            return self._offline_listing(d)
        if d.detached:
            return d.children or {}
        remote, marker = parse_listing(dir_prefix, listing.objects, listing.prefixes, self._on_invalid)
        if d.path and d.meta_known and d.entry_id is None:
            m = next((o for o in listing.objects if o.key == dir_prefix), None)
            seen = self.ctx.journal.object_meta.latest(dir_prefix)
            if (m is None) != (seen is None or seen[0] == "") or (
                    m is not None and not self.ctx.journal.object_meta.matches(dir_prefix, m.etag, m.last_modified)):
                d.meta_known = False  # its marker changed since its attributes were taken
        local_entries = self.ctx.journal.children(d.path)
        by_name = {keys.name_of(e.path): e for e in local_entries}
        # names whose local state was pending, or changed, while the listing was under way:
        # the listing may predate our own upload, so it says nothing about them
        moved_on = {name for name, e in by_name.items() if before.get(name) != (e.id, e.base_etag, False)}
        local = []
        for name, e in by_name.items():
            if name in remote or e.state.local_wins or name in moved_on:
                local.append(LocalChild(name, e.kind))
            elif self.tree.subtree_has_local_state(e):
                local.append(LocalChild(name, e.kind))  # e.g. a moved directory whose keys are still to come
            else:
                self.tree.forget_deleted_remotely(e)  # clean copy of something the bucket no longer has
        # a directory with pending entries below and none of its own (a moved directory
        # without a marker, its keys still to be copied there)
        hidden = hidden_before | self.tree.tombstoned_names(d.path)
        local += [LocalChild(name, stat.S_IFDIR) for name in self.ctx.journal.pending_child_dirs(d.path)
                  if name not in by_name and name not in remote and name not in hidden]
        merged = merge_children(remote, local, hidden)
        old = d.children or {}
        new: dict[str, Node] = {}
        for name, kind in merged.items():
            path = keys.join(d.path, name)
            node = self.tree.at(path)
            # a listing shows symlinks, FIFOs, sockets and devices as plain objects: a node
            # known to be one keeps its kind (and inode) while its object stays the same
            if node is not None and node.kind != kind and not (node.kind != stat.S_IFDIR and kind == stat.S_IFREG):
                self.tree.detach(node)
                node = None
            listed = remote.get(name) if name not in moved_on else None
            info = listed.info if listed is not None else None
            if node is None:
                node = self.tree.node_from(path, kind, listed, by_name.get(name))
            elif info is not None:
                self.tree.apply_remote_file(node, info)
            if node.is_dir and name in remote:
                node.remote = True
            elif info is not None and node.entry_id is None and name in known:
                cached = known[name]
                if cached is not None:
                    node = self.meta.adopt(node, info, cached)  # this version was seen before
                else:
                    node.meta_known = False  # a version not seen yet: HEAD it (queued, or at lookup)
            new[name] = node
        for name, node in old.items():
            if name not in new:
                self.tree.detach(node)
                self.ctx.events.publish(InvalidateEntry(d.ino, name))  # the kernel forgets the name too
        d.children = new
        d.listed_at = trio.current_time()
        self._took[d.ino] = d.listed_at - started
        d.listed = True
        if marker or remote:
            d.remote = True
        return new

    def _journal_state(self, d: Node) -> dict[str, tuple[int | None, str | None, bool]]:
        """For each journal entry in ``d``: (entry id, base ETag, local state wins)."""
        return {keys.name_of(e.path): (e.id, e.base_etag, e.state.local_wins)
                for e in self.ctx.journal.children(d.path)}

    def _entry_state(self, path: str) -> tuple[int | None, str | None, bool] | None:
        e = self.ctx.journal.get(path)
        return (e.id, e.base_etag, e.state.local_wins) if e is not None else None

    async def refresh_child(self, parent: Node, name: str) -> None:
        """Bring ``parent.children[name]`` up to date with the bucket for this one name."""
        if parent.children is None:
            return  # never listed: the listing will bring the name
        node = parent.children.get(name)
        path = keys.join(parent.path, name)
        now = trio.current_time()
        if node is not None:
            if node.is_dir:
                return  # trusted until the parent is listed again
            e = self.tree.entry(node)
            if e is not None and e.state.local_wins:
                return  # local state wins until uploaded
            if now - node.attr_time < self.ctx.opt.metadata_ttl:
                return
        else:
            if self.ctx.journal.tombstone(path) is not None:
                return
            e = self.ctx.journal.get(path)
            if e is not None:
                if e.state.local_wins:
                    return
                self.tree.forget_deleted_remotely(e)  # a stale clean copy: ask the bucket afresh
        before = self._entry_state(path)
        try:
            info = await self.ctx.store.head(self.ctx.key(path))
        except NotFoundError:
            info = None
        except StoreError as exc:
            log.debug("HEAD %r failed (%s); keeping what we know", path, exc)
            return
        children = parent.children
        if parent.detached or children is None or self._entry_state(path) != before:
            return  # changed here meanwhile (an upload of ours may have landed after the answer)
        node = children.get(name)
        if info is not None:
            if node is not None and node.is_dir:
                return  # a directory of the same name wins (SPEC §3)
            if node is None:
                node = self.tree.node_from(path, stat.S_IFREG, RemoteChild(name, stat.S_IFREG, info), None)
                children[name] = node
            else:
                self.tree.apply_remote_file(node, info)
            node.etag = node.etag or info.etag
            if not symlinks.is_symlink_object(info):
                self.ctx.journal.object_meta.put(info.key, info.etag, info.last_modified, info.metadata)
            current = self.tree.entry(node)
            node.size = info.size if current is None or not current.pending else node.size
            self.tree.apply_metadata(node, info.metadata or {}, info.last_modified)
            if symlinks.object_kind(info.metadata, info.size) != node.kind:
                node.meta_known = False  # ensure_meta turns it into a node of its kind
            return
        try:
            page = await self.ctx.store.list_page(self.ctx.store.dir_key(path), "/", None, 1)
        except StoreError as exc:
            log.debug("LIST %r failed (%s); keeping what we know", path, exc)
            return
        is_dir = bool(page.objects or page.prefixes)
        children = parent.children
        if children is None or self._entry_state(path) != before:
            return
        node = children.get(name)
        if node is not None and not node.is_dir:
            e = self.tree.entry(node)
            if e is not None and e.state.local_wins:
                return
            if e is not None:
                self.tree.forget_deleted_remotely(e)
            children.pop(name, None)
            self.tree.detach(node)  # deleted (or replaced by a directory) in the bucket
            self.ctx.events.publish(InvalidateEntry(parent.ino, name))
            node = None
        if is_dir and node is None:
            children[name] = self.tree.node_from(path, stat.S_IFDIR, None, None)

    def _offline_listing(self, d: Node) -> dict[str, Node]:
        """Children from the journal alone (no remote listing); ``listed_at`` stays old."""
        children: dict[str, Node] = {}
        hidden = self.tree.tombstoned_names(d.path)
        for e in self.ctx.journal.children(d.path):
            name = keys.name_of(e.path)
            if name in hidden:
                continue
            node = self.tree.at(e.path)
            if node is None or node.kind != e.kind:
                node = self.tree.node_from(e.path, e.kind, None, e)
            children[name] = node
        for name in self.ctx.journal.pending_child_dirs(d.path) - set(children) - hidden:
            path = keys.join(d.path, name)
            node = self.tree.at(path)
            children[name] = node if node is not None and node.is_dir else \
                self.tree.node_from(path, stat.S_IFDIR, None, None)
        d.children = children
        d.listed_at = float("-inf")
        return children

    # ------------------------------------------------------------ lookups

    async def child(self, parent: Node, name: str) -> Node:
        """The child ``name`` of ``parent``, as fresh as the TTLs require.

        A directory is listed in full once; after the TTL, a lookup lists it again
        when it fits in one LIST page (so `ls -l` revalidates with one request). In a
        bigger directory a name whose own attributes are older than the TTL is shown as
        last known while one background listing revalidates the whole directory (a HEAD
        per name, waited for, made `ls -l` of 100,000 names minutes slower); opening a
        file still revalidates it. With a TTL of 0 the lookup asks the bucket about that
        one name (HEAD, and a one-key LIST when there is no object).

        A name that is not there is trusted to stay away for ``--negative-metadata-ttl``
        (from the listing, or from the last time this name was asked about); after
        that a lookup asks the bucket about it. Raises ``NoEntry`` with the time the
        answer may still be trusted."""
        if parent.children is None:
            await self.ensure_listed(parent)
        assert parent.children is not None  # a listed directory keeps a dict
        now = trio.current_time()
        if name in parent.children:
            ttl = self.ctx.opt.metadata_ttl
            if now - parent.listed_at >= ttl:
                known = parent.children[name]
                if ttl > 0 and len(parent.children) <= RELIST_MAX:
                    await self.ensure_listed(parent)  # one LIST revalidates every name in it
                elif (ttl > 0 and not known.is_dir and now - known.attr_time >= ttl
                      and self.background.running):
                    self._revalidate_soon(parent)  # big: one listing for all names, not a HEAD each
                else:
                    await self.refresh_child(parent, name)
        else:
            absent = parent.absent_at or {}
            seen = max(parent.listed_at, absent.get(name, float("-inf")))
            if now - seen >= self.ctx.negative_ttl:
                await self.refresh_child(parent, name)
                if parent.children is not None and name not in parent.children:
                    self._remember_absent(parent, name, now)
                seen = now
            node = parent.children.get(name) if parent.children is not None else None
            if node is None:
                raise NoEntry(max(0.0, self.ctx.negative_ttl - (trio.current_time() - seen)))
        node = parent.children.get(name)
        if node is None:
            raise NoEntry(0.0)
        return node

    @staticmethod
    def _remember_absent(parent: Node, name: str, when: float) -> None:
        if parent.absent_at is None:
            parent.absent_at = {}
        elif len(parent.absent_at) >= MAX_ABSENT_NAMES:
            # answers older than the last listing are superseded by it; else the oldest goes
            parent.absent_at = {k: t for k, t in parent.absent_at.items() if t > parent.listed_at}
            if len(parent.absent_at) >= MAX_ABSENT_NAMES:
                parent.absent_at.pop(next(iter(parent.absent_at)))
        parent.absent_at.pop(name, None)
        parent.absent_at[name] = when

    async def ensure_meta(self, parent: Node, node: Node) -> Node:
        """Attributes from object metadata (HEAD once per TTL). May return a *new* node when
        the object turns out to be a symlink (a node never changes kind)."""
        if node.meta_known or node.entry_id is not None:
            return node
        if node.is_dir:
            await self._dir_meta(node)
            return node
        await self.meta.wait(node.path)  # a HEAD queued by readdir: take its answer
        name = keys.name_of(node.path)
        current = parent.children.get(name) if parent.children is not None else None
        if current is not None and current is not node and current.path == node.path:
            node = current  # the fetch found a symlink: a new node
        if node.meta_known or node.entry_id is not None:
            return node
        try:
            info = await self.ctx.store.head(self.ctx.key(node.path))
        except NotFoundError:
            self.tree.detach(node)
            if parent.children is not None:
                parent.children.pop(keys.name_of(node.path), None)
            raise FsError(errno.ENOENT) from None
        except StoreError as exc:
            log.debug("HEAD %r failed: %s", node.path, exc)
            return node  # show listing attributes while the endpoint is away
        kind = symlinks.object_kind(info.metadata, info.size)
        if kind != node.kind:
            target = None
            if kind == stat.S_IFLNK:
                target = await symlinks.read_target(self.ctx.store, self.ctx.key(node.path), info,
                                                    self.ctx.opt.read_timeout)
            self.ctx.journal.object_meta.put(info.key, info.etag, info.last_modified, info.metadata, target)
            new = self.meta.retype(node, kind, info, CachedMeta(info.metadata or {}, target))
            if parent.children is not None:
                parent.children[keys.name_of(node.path)] = new
            return new
        node.etag = info.etag
        node.size = info.size
        if node.kind != stat.S_IFLNK:
            self.ctx.journal.object_meta.put(info.key, info.etag, info.last_modified, info.metadata)
        self.tree.apply_metadata(node, info.metadata or {}, info.last_modified)
        return node

    async def _dir_meta(self, node: Node) -> None:
        """A directory's attributes come from its marker's metadata (s3fs style), if it has one;
        as last seen (the metadata cache) until its own listing shows the marker changed."""
        marker = self.ctx.store.dir_key(node.path)
        seen = self.ctx.journal.object_meta.latest(marker) if node.listed_at == float("-inf") else None
        if seen is not None:
            self.tree.apply_metadata(node, seen[2].metadata, seen[1] if seen[0] else time.time())
            return
        try:
            info = await self.ctx.store.head(marker)
        except NotFoundError:
            node.meta_known = True  # implicit directory: the defaults
            node.attr_time = trio.current_time()
            self.ctx.journal.object_meta.put(marker, "", 0, {})
            return
        except StoreError as exc:
            log.debug("HEAD of marker %r failed: %s", node.path, exc)
            return
        self.ctx.journal.object_meta.put(marker, info.etag, info.last_modified, info.metadata)
        self.tree.apply_metadata(node, info.metadata or {}, info.last_modified)

    async def lookup(self, parent_ino: int, name: str) -> Attr:
        """Resolve ``name``; counts one kernel lookup reference on success."""
        parent = self.tree.dir_node(parent_ino)
        if name == ".":
            node = parent
        elif name == "..":
            node = self.tree.at(keys.parent_of(parent.path)) or parent
        else:
            if len(name.encode("utf-8", "surrogateescape")) > keys.MAX_NAME_BYTES:
                raise FsError(errno.ENAMETOOLONG)
            node = await self.child(parent, name)
            node = await self.ensure_meta(parent, node)
        node.nlookup += 1
        return node.attr(self.tree.ttl_for(node))

    async def getattr(self, ino: int) -> Attr:
        node = self.tree.node(ino)
        return node.attr(self.tree.ttl_for(node))

    async def readlink(self, ino: int) -> str:
        node = self.tree.node(ino)
        if node.target is None:
            raise FsError(errno.EINVAL)
        return node.target

    def remember(self, ino: int) -> None:
        """The kernel took a reference through readdirplus."""
        self.tree.node(ino).nlookup += 1

    def forget(self, ino: int, n: int) -> None:
        node = self.tree.table.get(ino)
        if node is None:
            return
        node.nlookup -= n
        self.tree.maybe_collect(node)

    # ------------------------------------------------------------ readdir

    async def opendir(self, ino: int) -> int:
        node = self.tree.dir_node(ino)
        return self.dir_handles.add(DirHandle(node))

    async def readdir(self, dh: int, start: int) -> Iterator[tuple[str, Attr, int]]:
        """Entries from position ``start`` on, each with the position after it.

        Positions index a snapshot taken when reading starts (``start == 0``), so
        they stay stable for the handle however the directory changes meanwhile.
        The entries are produced as the caller takes them: the kernel takes a buffer's
        worth (a few dozen) per request, and building every remaining entry's
        attributes each time made reading a directory quadratic in its size. Consume
        the iterator before the next await (the attributes are those of that moment)."""
        h = self.dir_handles.get(dh)
        if h is None:
            raise FsError(errno.EBADF)
        if h.snapshot is None or start == 0:
            children = await self._readdir_listing(h.node)
            h.snapshot = sorted(children.items())
        return self._entries(h.snapshot, start)

    def _entries(self, snapshot: list[tuple[str, Node]], start: int) -> Iterator[tuple[str, Attr, int]]:
        for i in range(start, len(snapshot)):
            name, node = snapshot[i]
            yield name, node.attr(self.tree.ttl_for(node)), i + 1

    def releasedir(self, dh: int) -> None:
        self.dir_handles.pop(dh)
