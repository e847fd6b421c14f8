"""``Tree``: the kernel-facing nodes and their link to journal entries.

Owns the ``InodeTable`` (core.nodes): which node stands for which path and
inode, when a node is detached and freed, and the bookkeeping that keeps a
node and its journal entry in step (a new clean entry for a remote file, an
entry dropped because the bucket no longer has it, a new remote version taken
over). It also follows what the reconciler reports through the ``EventBus``
(an entry moved to a conflict name, reset to the bucket's version, a path
changed in the bucket).

Everything runs on the trio thread and nothing here awaits: each method is one
atomic step. The tree takes no lock; callers that must decide a name and
change it across awaits hold that directory's namespace lock (``Names.locks``).
"""

from __future__ import annotations

import errno
import stat
import time

import trio

from .. import attrs as attrs_mod
from .. import keys
from ..backend.base import ObjectInfo
from ..cache.item import RemoteVersion
from ..cache.journal import Entry
from ..errors import FsError
from ..events import EntryMoved, EntryReset, InvalidateEntry, InvalidateInode, PathChanged, RemoteChanged
from .context import CoreContext, log, now_ns
from .namespace import RemoteChild
from .nodes import ROOT_INO, InodeTable, Node


class Tree:
    def __init__(self, ctx: CoreContext) -> None:
        self.ctx = ctx
        self.table = InodeTable()
        d = ctx.opt.defaults
        root = self.table.new(stat.S_IFDIR, "", mode=d.dir_mode, uid=d.uid, gid=d.gid, mtime_ns=now_ns())
        assert root.ino == ROOT_INO
        root.meta_known = True
        root.remote = True
        root.nlookup = 1
        ctx.events.subscribe(self._on_event)

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

    def at(self, path: str) -> Node | None:
        """The node in the tree at ``path``, if any."""
        return self.table.by_path.get(path)

    def entry(self, node: Node) -> Entry | None:
        return self.ctx.journal.get_by_id(node.entry_id) if node.entry_id is not None else None

    def ttl_for(self, node: Node) -> float:
        return self.ctx.opt.metadata_ttl if node.meta_known else 0.0

    def protected(self, node: Node, e: Entry | None) -> bool:
        """Would removing this entry delete cloud data not of our making (so it needs
        --allow-delete)? Objects this cache dir created and nobody changed are not (§6).

        A file this mount created and that ``sync``/``--fsync-upload`` uploaded while it was
        still open for writing is not, until its normal write-back time after the last
        close: a program may still remove its temporary files (an sqlite journal)."""
        if e is not None and not e.settled:
            return False
        return self.remote_exists(node, e) and not self.ours(node, e)

    def ours(self, node: Node, e: Entry | None) -> bool:
        """Is the version in the bucket one this cache dir created, unchanged since as far
        as the mount knows (SPEC §6: then it may be removed without --allow-delete)?
        The delete or copy that follows is conditional on that ETag, so a change we
        have not seen yet still keeps the other writer's version."""
        etag = e.base_etag if e is not None else (None if node.is_dir else node.etag)
        return self.ctx.journal.created.ours(self.ctx.store.object_key(node.path, node.kind), etag)

    @staticmethod
    def remote_exists(node: Node, e: Entry | None) -> bool:
        """Does the bucket hold this entry (so removing it would delete cloud data)?"""
        if node.is_dir:
            return node.remote or bool(e and e.base_etag is not None)
        if e is not None:
            return e.base_etag is not None
        return True  # known only from the bucket

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
        self.ctx.journal.save(e)
        node.entry_id = e.id
        return e

    def subtree_has_local_state(self, e: Entry) -> bool:
        return e.kind == stat.S_IFDIR and any(x.state.local_wins for x in self.ctx.journal.under(e.path))

    def forget_deleted_remotely(self, e: Entry) -> None:
        """Another writer deleted a clean cached entry: drop its journal entry and data."""
        log.debug("%r was deleted in the bucket; dropping its cached copy", e.path)
        for x in self.ctx.journal.under(e.path) if e.kind == stat.S_IFDIR else []:
            self.drop_entry(x)
        self.drop_entry(e)

    def drop_entry(self, e: Entry) -> None:
        assert e.id is not None  # rows read from the journal always have one
        self.ctx.journal.delete(e.id)
        node = self.table.by_path.get(e.path)
        if node is not None and node.entry_id == e.id:
            node.etag = e.base_etag  # open handles still read the version they had
        self.ctx.items.drop_if_closed(e.id)

    def tombstoned_names(self, dir_path: str) -> set[str]:
        return {keys.name_of(t.path) for t in self.ctx.journal.tombstones_under(dir_path)
                if keys.parent_of(t.path) == dir_path}

    def node_from(self, path: str, kind: int, rc: RemoteChild | None, e: Entry | None) -> Node:
        """A new node for ``path``: from its journal entry ``e`` if any, else from the listing."""
        dflt = self.ctx.opt.defaults
        if e is not None:
            node = self.table.new(e.kind, path, mode=e.mode, uid=e.uid, gid=e.gid, size=e.size, mtime_ns=e.mtime_ns)
            node.entry_id = e.id
            node.meta_known = True
            node.target = e.target
            node.rdev = e.rdev
            if e.kind == stat.S_IFDIR:
                node.remote = e.base_etag is not None
            if rc is not None and rc.info is not None:
                self.apply_remote_file(node, rc.info)
            return node
        if kind == stat.S_IFDIR:
            node = self.table.new(kind, path, mode=dflt.dir_mode, uid=dflt.uid, gid=dflt.gid, mtime_ns=now_ns())
            node.remote = True  # attributes come from its marker, if any (Listings.ensure_meta)
            return node
        assert rc is not None and rc.info is not None  # a file known only from the bucket
        info = rc.info
        node = self.table.new(kind, path, mode=dflt.file_mode, uid=dflt.uid, gid=dflt.gid,
                              size=info.size, mtime_ns=int(info.last_modified * 1e9))
        node.etag = info.etag
        return node

    def vacate(self, path: str, keeper: Node) -> None:
        """Just before ``keeper`` takes ``path`` (a rename, which replaces its target):
        whatever a lookup or open racing with the rename put there is replaced too."""
        row = self.ctx.journal.get(path)
        if row is not None and row.id != keeper.entry_id:
            self.drop_entry(row)
        other = self.table.by_path.get(path)
        if other is not None and other is not keeper:
            parent = self.table.by_path.get(keys.parent_of(path))
            if parent is not None and parent.children is not None \
                    and parent.children.get(keys.name_of(path)) is other:
                del parent.children[keys.name_of(path)]
            self.detach(other)

    # ------------------------------------------------------------ remote versions

    def apply_remote_file(self, node: Node, info: ObjectInfo) -> None:
        """A listing saw ``info`` for ``node``'s path: adopt it unless local changes are pending."""
        if node.is_dir:
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
        self.ctx.events.publish(InvalidateInode(node.ino))
        node.etag = info.etag
        node.size = info.size
        node.mtime_ns = int(info.last_modified * 1e9)
        node.meta_known = False
        if info.metadata is not None:
            self.apply_metadata(node, info.metadata, node.mtime_ns / 1e9)
        if e is not None and e.id is not None:
            self.ctx.items.reset_to(e.id, RemoteVersion(info.etag, info.version_id, info.size),
                                    mode=node.mode, uid=node.uid, gid=node.gid, mtime_ns=node.mtime_ns)

    def apply_metadata(self, node: Node, metadata: dict[str, str], last_modified: float) -> None:
        a = attrs_mod.from_metadata(metadata, node.kind, last_modified, self.ctx.opt.defaults)
        node.mode, node.uid, node.gid, node.mtime_ns = a.mode, a.uid, a.gid, a.mtime_ns
        if node.kind in (stat.S_IFCHR, stat.S_IFBLK):
            node.rdev = attrs_mod.rdev_from_metadata(metadata)
        node.meta_known = True
        node.attr_time = trio.current_time()

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
        if node.entry_id is not None and self.ctx.journal.get_by_id(node.entry_id) is None:
            self.ctx.items.drop_if_closed(node.entry_id)

    # ------------------------------------------------------------ events from below

    def _on_event(self, ev: object) -> None:
        if isinstance(ev, EntryMoved):
            self._entry_moved(ev)
        elif isinstance(ev, EntryReset):
            self._entry_reset(ev)
        elif isinstance(ev, PathChanged):
            self._relist_parent_of(ev.path)
        elif isinstance(ev, RemoteChanged):
            self._remote_changed(ev)

    def forget_remote_state(self) -> None:
        """Change notifications were lost (a gap): every attribute and listing known is to
        be asked for again; the kernel forgets its copies too."""
        for node in list(self.table.by_path.values()):
            node.attr_time = float("-inf")
            if node.is_dir:
                node.listed_at = float("-inf")
            self.ctx.events.publish(InvalidateInode(node.ino))

    def _remote_changed(self, ev: RemoteChanged) -> None:
        """A change notification: unless a local change of the path is pending (its upload's
        condition decides then) or the event reports the version already known here (our
        own upload), forget what is known of the path, so that the next access asks the
        bucket (HEAD), and list every directory on its way again (a new object may bring new
        directories). Never installs what the event says: late or repeated events only cost
        a request."""
        node = self.table.by_path.get(ev.path)
        if node is not None:
            e = self.entry(node)
            if e is not None and e.state.local_wins:
                return
            known = e.base_etag if e is not None else node.etag
            if ev.etag and not ev.removed and known == ev.etag:
                return
            node.attr_time = float("-inf")
            self.ctx.events.publish(InvalidateInode(node.ino))
        path = ev.path
        while path:
            self._relist_parent_of(path)
            path = keys.parent_of(path)

    def _relist_parent_of(self, path: str) -> None:
        parent = self.table.by_path.get(keys.parent_of(path))
        if parent is not None and parent.is_dir:
            parent.listed_at = float("-inf")
            self.ctx.events.publish(InvalidateEntry(parent.ino, keys.name_of(path)))

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
        e = self.ctx.journal.get_by_id(ev.entry_id)
        if node is None or node.entry_id != ev.entry_id or e is None:
            if node is not None and node.entry_id == ev.entry_id:  # the entry is gone: ask the bucket
                node.entry_id, node.etag, node.meta_known = None, None, False
                self.ctx.events.publish(InvalidateInode(node.ino))
            self._relist_parent_of(ev.path)
            return
        node.size = e.size
        node.mtime_ns = e.mtime_ns
        node.content_version += 1
        self.ctx.events.publish(InvalidateInode(node.ino))
