"""Shared state of the filesystem core and the helpers every operation uses.

The core is split by responsibility into mixins that share this state:
``CoreBase`` (nodes, listings, journal entries), ``FileOps`` (open/read/write/
release), ``NamespaceOps`` (create/mkdir/unlink/rmdir/symlink/setattr) and
``RenameOps``; ``FileSystem`` (core.filesystem) combines them.

Concurrency contract: everything runs on the trio thread. Code between two
``await``\\ s is atomic, so a journal call plus the matching node update is
never observed half-done. Operations that await (listing, HEAD, GET) re-check
their preconditions after the await where it matters. Network calls go only
through ``self.store`` (the ``Bucket`` facade: worker threads under a limiter;
it also builds every object key).
"""

from __future__ import annotations

import errno
import logging
import stat
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

import trio

from .. import attrs as attrs_mod
from .. import keys
from ..backend.base import NotFoundError, ObjectInfo, StoreError
from ..backend.bucket import Bucket
from ..cache.item import Items, RemoteVersion
from ..cache.journal import Entry, Journal
from ..errors import FsError
from ..events import EntryMoved, EntryReset, EventBus, InvalidateEntry, InvalidateInode, PathChanged
from . import symlinks
from .namespace import LocalChild, RemoteChild, merge_children, parse_listing
from .nodes import ROOT_INO, InodeTable, Node

log = logging.getLogger("mountsync.core")


class ChangeSink(Protocol):
    """What the core tells the reconciler (implemented by reconciler.Reconciler)."""

    def changed(self, entry_id: int) -> None: ...
    def opened_for_write(self, entry_id: int) -> None: ...
    def closed_for_write(self, entry_id: int) -> None: ...
    def tombstoned(self, path: str, *, held: bool = False) -> None: ...
    async def wait_idle(self, entry_id: int) -> None: ...
    async def wait_path_idle(self, path: str) -> None: ...
    async def upload_now(self, entry_id: int) -> None: ...
    def hold(self, path: str) -> AbstractAsyncContextManager[None]: ...


@dataclass(frozen=True)
class CoreOptions:
    read_only: bool = False
    allow_delete: bool = False
    metadata_ttl: float = 5.0
    negative_metadata_ttl: float | None = None  # None: same as metadata_ttl
    read_timeout: float = 30.0
    fsync_upload: bool = False
    defaults: attrs_mod.Defaults = field(default_factory=lambda: attrs_mod.Defaults(0, 0, 0o644, 0o755))


def now_ns() -> int:
    return time.time_ns()


class CoreBase:
    def __init__(self, store: Bucket, journal: Journal, items: Items,
                 sink: ChangeSink, options: CoreOptions, events: EventBus | None = None) -> None:
        self.store = store
        self.journal = journal
        self.items = items
        self.sink = sink
        self.opt = options
        self.events = events if events is not None else EventBus()
        self.events.subscribe(self._on_event)
        self.table = InodeTable()
        self._invalid_logged: set[str] = set()
        d = options.defaults
        root = self.table.new(stat.S_IFDIR, "", mode=d.dir_mode, uid=d.uid, gid=d.gid, mtime_ns=now_ns())
        assert root.ino == ROOT_INO
        root.meta_known = True
        root.remote = True
        root.nlookup = 1

    # ------------------------------------------------------------ lookups

    def node(self, ino: int) -> Node:
        n = self.table.get(ino)
        if n is None:
            raise FsError(errno.ENOENT, f"no inode {ino}")
        return n

    def dir_node(self, ino: int) -> Node:
        n = self.node(ino)
        if not n.is_dir:
            raise FsError(errno.ENOTDIR)
        return n

    def entry(self, node: Node) -> Entry | None:
        return self.journal.get_by_id(node.entry_id) if node.entry_id is not None else None

    def key(self, path: str) -> str:
        return self.store.key(path)

    def writable(self) -> None:
        if self.opt.read_only:
            raise FsError(errno.EROFS, "mounted read-only")

    @staticmethod
    def check_name(name: str) -> None:
        if len(name.encode("utf-8", "surrogateescape")) > keys.MAX_NAME_BYTES:
            raise FsError(errno.ENAMETOOLONG)
        if not keys.is_valid_name(name):
            raise FsError(errno.EINVAL, f"invalid name {name!r}")

    def ttl_for(self, node: Node) -> float:
        return self.opt.metadata_ttl if node.meta_known else 0.0

    def protected(self, node: Node, e: Entry | None) -> bool:
        """Would removing this entry delete cloud data (so it needs --allow-delete)?

        A file this mount created and that ``sync``/``--fsync-upload`` uploaded while it was
        still open for writing is not, until its normal write-back time after the last
        close: a program may still remove its temporary files (an sqlite journal)."""
        if e is not None and not e.settled:
            return False
        return self.remote_exists(node, e)

    def remote_exists(self, node: Node, e: Entry | None) -> bool:
        """Does the bucket hold this entry (so removing it would delete cloud data)?"""
        if node.is_dir:
            return node.remote or bool(e and e.base_etag is not None)
        if e is not None:
            return e.base_etag is not None
        return True  # known only from the bucket

    # ------------------------------------------------------------ listings

    def _on_invalid(self, key: str, why: str) -> None:
        if key not in self._invalid_logged:
            self._invalid_logged.add(key)
            log.info("key %r is not shown: %s", key, why)

    async def ensure_listed(self, d: Node, *, force: bool = False) -> dict[str, Node]:
        """The directory's children, listed from the bucket at most once per TTL."""
        if d.children is not None and not force and trio.current_time() - d.listed_at < self.opt.metadata_ttl:
            return d.children
        dir_prefix = self.store.dir_key(d.path)
        # deletes done while the listing is under way may still be in it: hide what was
        # tombstoned when it started as well as what is tombstoned when it ends
        hidden_before = self._tombstoned_names(d.path)
        # likewise an upload finishing during the listing may be missing from it
        local_before = {keys.name_of(e.path) for e in self.journal.children(d.path) if e.state.local_wins}
        try:
            listing = await self.store.list_all(dir_prefix)
        except StoreError as exc:
            if d.children is not None:
                log.debug("listing %r failed (%s); using the cached listing", d.path, exc)
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
        local_entries = self.journal.children(d.path)
        by_name = {keys.name_of(e.path): e for e in local_entries}
        local = []
        for name, e in by_name.items():
            if name in remote or e.state.local_wins or name in local_before:
                local.append(LocalChild(name, e.kind))
            elif not self._subtree_has_local_state(e):
                self._forget_deleted_remotely(e)  # clean copy of something the bucket no longer has
        hidden = hidden_before | self._tombstoned_names(d.path)
        merged = merge_children(remote, local, hidden)
        old = d.children or {}
        new: dict[str, Node] = {}
        for name, kind in merged.items():
            path = keys.join(d.path, name)
            node = self.table.by_path.get(path)
            if node is not None and node.kind != kind and not (node.kind == stat.S_IFLNK and kind == stat.S_IFREG):
                self.detach(node)
                node = None
            info = remote[name].info if name in remote else None
            if node is None:
                node = self._node_from(path, kind, remote.get(name), by_name.get(name))
            elif info is not None:
                self._apply_remote_file(node, info)
            if node.is_dir and name in remote:
                node.remote = True
            new[name] = node
        for name, node in old.items():
            if name not in new:
                self.detach(node)
                self.events.publish(InvalidateEntry(d.ino, name))  # the kernel forgets the name too
        d.children = new
        d.listed_at = trio.current_time()
        if marker or remote:
            d.remote = True
        return new

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
            e = self.entry(node)
            if e is not None and e.state.local_wins:
                return  # local state wins until uploaded
            if now - node.attr_time < self.opt.metadata_ttl:
                return
        else:
            if self.journal.tombstone(path) is not None:
                return
            e = self.journal.get(path)
            if e is not None:
                if e.state.local_wins:
                    return
                self._forget_deleted_remotely(e)  # a stale clean copy: ask the bucket afresh
        try:
            info = await self.store.head(self.key(path))
        except NotFoundError:
            info = None
        except StoreError as exc:
            log.debug("HEAD %r failed (%s); keeping what we know", path, exc)
            return
        children = parent.children
        if parent.detached or children is None:
            return
        node = children.get(name)
        if info is not None:
            if node is not None and node.is_dir:
                return  # a directory of the same name wins (SPEC §3)
            if node is None:
                node = self._node_from(path, stat.S_IFREG, RemoteChild(name, stat.S_IFREG, info), None)
                children[name] = node
            else:
                self._apply_remote_file(node, info)
            node.etag = node.etag or info.etag
            current = self.entry(node)
            node.size = info.size if current is None or not current.pending else node.size
            self.apply_metadata(node, info.metadata or {}, info.last_modified)
            if symlinks.is_symlink_object(info) and node.kind != stat.S_IFLNK:
                node.meta_known = False  # ensure_meta turns it into a symlink node
            return
        try:
            page = await self.store.list_page(self.store.dir_key(path), "/", None, 1)
        except StoreError as exc:
            log.debug("LIST %r failed (%s); keeping what we know", path, exc)
            return
        is_dir = bool(page.objects or page.prefixes)
        children = parent.children
        if children is None:
            return
        node = children.get(name)
        if node is not None and not node.is_dir:
            e = self.entry(node)
            if e is not None and e.state.local_wins:
                return
            if e is not None:
                self._forget_deleted_remotely(e)
            children.pop(name, None)
            self.detach(node)  # deleted (or replaced by a directory) in the bucket
            self.events.publish(InvalidateEntry(parent.ino, name))
            node = None
        if is_dir and node is None:
            children[name] = self._node_from(path, stat.S_IFDIR, None, None)

    def _offline_listing(self, d: Node) -> dict[str, Node]:
        """Children from the journal alone (no remote listing); ``listed_at`` stays old."""
        children: dict[str, Node] = {}
        hidden = self._tombstoned_names(d.path)
        for e in self.journal.children(d.path):
            name = keys.name_of(e.path)
            if name in hidden:
                continue
            node = self.table.by_path.get(e.path)
            if node is None or node.kind != e.kind:
                node = self._node_from(e.path, e.kind, None, e)
            children[name] = node
        d.children = children
        d.listed_at = float("-inf")
        return children

    def _subtree_has_local_state(self, e: Entry) -> bool:
        return e.kind == stat.S_IFDIR and any(x.state.local_wins for x in self.journal.under(e.path))

    def _forget_deleted_remotely(self, e: Entry) -> None:
        """Another writer deleted a clean cached entry: drop its journal entry and data."""
        log.debug("%r was deleted in the bucket; dropping its cached copy", e.path)
        for x in self.journal.under(e.path) if e.kind == stat.S_IFDIR else []:
            self._drop_entry(x)
        self._drop_entry(e)

    def _drop_entry(self, e: Entry) -> None:
        assert e.id is not None  # rows read from the journal always have one
        self.journal.delete(e.id)
        node = self.table.by_path.get(e.path)
        if node is not None and node.entry_id == e.id:
            node.etag = e.base_etag  # open handles still read the version they had
        self.items.drop_if_closed(e.id)

    def _tombstoned_names(self, dir_path: str) -> set[str]:
        return {keys.name_of(t.path) for t in self.journal.tombstones_under(dir_path)
                if keys.parent_of(t.path) == dir_path}

    def _node_from(self, path: str, kind: int, rc, e: Entry | None) -> Node:
        dflt = self.opt.defaults
        if e is not None:
            node = self.table.new(e.kind, path, mode=e.mode, uid=e.uid, gid=e.gid, size=e.size, mtime_ns=e.mtime_ns)
            node.entry_id = e.id
            node.meta_known = True
            node.target = e.target
            if e.kind == stat.S_IFDIR:
                node.remote = e.base_etag is not None
            if rc is not None and rc.info is not None:
                self._apply_remote_file(node, rc.info)
            return node
        if kind == stat.S_IFDIR:
            node = self.table.new(kind, path, mode=dflt.dir_mode, uid=dflt.uid, gid=dflt.gid, mtime_ns=now_ns())
            node.remote = True  # attributes come from its marker, if any (ensure_meta)
            return node
        info = rc.info
        node = self.table.new(kind, path, mode=dflt.file_mode, uid=dflt.uid, gid=dflt.gid,
                              size=info.size, mtime_ns=int(info.last_modified * 1e9))
        node.etag = info.etag
        return node

    def _apply_remote_file(self, node: Node, info: ObjectInfo) -> None:
        """A listing saw ``info`` for ``node``'s path: adopt it unless local changes are pending."""
        if not node.is_file and node.kind != stat.S_IFLNK:
            return
        e = self.entry(node)
        if e is not None and e.state.local_wins:
            return  # local state wins until it is uploaded
        known = e.base_etag if e is not None else node.etag
        if info.etag == known:
            return
        self.remote_changed(node, e, info)

    def remote_changed(self, node: Node, e: Entry | None, info: ObjectInfo) -> None:
        """The bucket holds a new version of a clean node: drop cached bytes, take its attributes."""
        log.debug("remote change of %r: %s", node.path, info.etag)
        node.content_version += 1
        self.events.publish(InvalidateInode(node.ino))
        node.etag = info.etag
        node.size = info.size
        node.mtime_ns = int(info.last_modified * 1e9)
        node.meta_known = False
        if info.metadata is not None:
            self.apply_metadata(node, info.metadata, node.mtime_ns / 1e9)
        if e is not None and e.id is not None:
            self.items.reset_to(e.id, RemoteVersion(info.etag, info.version_id, info.size),
                                mode=node.mode, uid=node.uid, gid=node.gid, mtime_ns=node.mtime_ns)

    def apply_metadata(self, node: Node, metadata: dict, last_modified: float) -> None:
        a = attrs_mod.from_metadata(metadata, node.kind, last_modified, self.opt.defaults)
        node.mode, node.uid, node.gid, node.mtime_ns = a.mode, a.uid, a.gid, a.mtime_ns
        node.meta_known = True
        node.attr_time = trio.current_time()

    async def ensure_meta(self, parent: Node, node: Node) -> Node:
        """Attributes from object metadata (HEAD once per TTL). May return a *new* node when
        the object turns out to be a symlink (a node never changes kind)."""
        if node.meta_known or node.entry_id is not None:
            return node
        if node.is_dir:
            await self._dir_meta(node)
            return node
        try:
            info = await self.store.head(self.key(node.path))
        except NotFoundError:
            self.detach(node)
            if parent.children is not None:
                parent.children.pop(keys.name_of(node.path), None)
            raise FsError(errno.ENOENT) from None
        except StoreError as exc:
            log.debug("HEAD %r failed: %s", node.path, exc)
            return node  # show listing attributes while the endpoint is away
        if node.kind != stat.S_IFLNK and symlinks.is_symlink_object(info):
            target = await symlinks.read_target(self.store, self.key(node.path), info, self.opt.read_timeout)
            self.detach(node)
            new = self.table.new(stat.S_IFLNK, node.path, mode=0o777, uid=node.uid, gid=node.gid)
            new.target = target
            new.etag = info.etag
            self.apply_metadata(new, info.metadata or {}, info.last_modified)
            if parent.children is not None:
                parent.children[keys.name_of(node.path)] = new
            return new
        node.etag = info.etag
        node.size = info.size
        self.apply_metadata(node, info.metadata or {}, info.last_modified)
        return node

    async def _dir_meta(self, node: Node) -> None:
        """A directory's attributes come from its marker's metadata (s3fs style), if it has one."""
        try:
            info = await self.store.head(self.store.dir_key(node.path))
        except NotFoundError:
            node.meta_known = True  # implicit directory: the defaults
            node.attr_time = trio.current_time()
            return
        except StoreError as exc:
            log.debug("HEAD of marker %r failed: %s", node.path, exc)
            return
        self.apply_metadata(node, info.metadata or {}, info.last_modified)

    # ------------------------------------------------------------ entries

    def ensure_entry(self, node: Node) -> Entry:
        """Journal entry of ``node``, made clean for a remote file; never for a removed node."""
        e = self.entry(node)
        if e is not None:
            return e
        if node.detached:
            raise FsError(errno.ENOENT, f"{node.path!r} was removed")
        e = Entry(path=node.path, kind=node.kind, mode=node.mode, uid=node.uid, gid=node.gid,
                  mtime_ns=node.mtime_ns, size=node.size, base_etag=node.etag, target=node.target,
                  complete=node.size == 0, last_used=time.time())
        self.journal.save(e)
        node.entry_id = e.id
        return e

    # ------------------------------------------------------------ lifetime

    def detach(self, node: Node) -> None:
        self.table.detach(node)
        if node.is_dir and node.children:
            for child in list(node.children.values()):
                self.detach(child)
            node.children = {}
        self.maybe_collect(node)

    def maybe_collect(self, node: Node) -> None:
        if not self.table.collectable(node):
            return
        self.table.drop(node)
        if node.entry_id is not None and self.journal.get_by_id(node.entry_id) is None:
            self.items.drop_if_closed(node.entry_id)

    # ------------------------------------------------------------ events from below

    def _on_event(self, ev: object) -> None:
        if isinstance(ev, EntryMoved):
            self._entry_moved(ev)
        elif isinstance(ev, EntryReset):
            self._entry_reset(ev)
        elif isinstance(ev, PathChanged):
            self._relist_parent_of(ev.path)

    def _relist_parent_of(self, path: str) -> None:
        parent = self.table.by_path.get(keys.parent_of(path))
        if parent is not None and parent.is_dir:
            parent.listed_at = float("-inf")
            self.events.publish(InvalidateEntry(parent.ino, keys.name_of(path)))

    def _entry_moved(self, ev: EntryMoved) -> None:
        """The reconciler moved a local edit to a conflict name: follow it, and let the
        original name show the bucket's version at the next lookup."""
        node = self.table.by_path.get(ev.old_path)
        old_parent = self.table.by_path.get(keys.parent_of(ev.old_path))
        new_parent = self.table.by_path.get(keys.parent_of(ev.new_path))
        if node is not None and node.entry_id == ev.entry_id:
            if old_parent is not None and old_parent.children is not None:
                old_parent.children.pop(keys.name_of(ev.old_path), None)
            self.table.repath(node, ev.new_path)
            node.etag = None
            if new_parent is not None and new_parent.children is not None:
                new_parent.children[keys.name_of(ev.new_path)] = node
        self._relist_parent_of(ev.old_path)
        self._relist_parent_of(ev.new_path)

    def _entry_reset(self, ev: EntryReset) -> None:
        """The local version was replaced by the bucket's: take the entry's new attributes."""
        node = self.table.by_path.get(ev.path)
        e = self.journal.get_by_id(ev.entry_id)
        if node is None or node.entry_id != ev.entry_id or e is None:
            self._relist_parent_of(ev.path)
            return
        node.size = e.size
        node.mtime_ns = e.mtime_ns
        node.content_version += 1
        self.events.publish(InvalidateInode(node.ino))
