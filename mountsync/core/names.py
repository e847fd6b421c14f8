"""``Names``: entries made and removed (create, mkdir, symlink, unlink, rmdir) and setattr,
under the per-directory namespace locks (``DirLocks``, owned here).

The delete rule of SPEC §6 lives here (and in ``rename``): removing an entry
that exists in the bucket needs ``allow_delete``; entries that exist only in
the cache can always be removed. A removed remote entry becomes a tombstone
in the journal (hidden at once, deleted remotely by the reconciler); its
local data stays until the kernel forgets the inode.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio

from .. import keys
from ..attrs import SPECIAL_KINDS
from ..cache.journal import Entry, Tombstone
from ..errors import FsError
from .context import CoreContext, log, now_ns
from .files import Files
from .listings import Listings
from .nodes import ROOT_INO, Attr, Node
from .tree import Tree


@dataclass(frozen=True)
class SetAttr:
    """Fields of a setattr call; ``None`` means unchanged."""

    size: int | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    mtime_ns: int | None = None


class DirLocks:
    """The namespace lock of each directory (by inode), made when first wanted and
    dropped when free."""

    def __init__(self) -> None:
        self._locks: dict[int, trio.Lock] = {}

    @asynccontextmanager
    async def hold(self, *inos: int) -> AsyncIterator[None]:
        """Hold the namespace lock of the directories ``inos`` (taken in inode order).

        create, mkdir, symlink, unlink, rmdir and rename of names in one directory
        run one at a time, as the kernel runs them (it holds the directory's lock
        for the whole request): a name's state is decided and changed in one step
        even though the operation awaits the bucket or the reconciler meanwhile.
        Nothing holding a directory lock waits for another directory's lock except
        through this method, so the fixed order rules out deadlocks."""
        held: list[tuple[int, trio.Lock]] = []
        try:
            for ino in sorted(set(inos)):
                lock = self._locks.setdefault(ino, trio.Lock())
                await lock.acquire()
                held.append((ino, lock))
            yield
        finally:
            for ino, lock in reversed(held):
                lock.release()
                st = lock.statistics()
                if not st.locked and st.tasks_waiting == 0 and self._locks.get(ino) is lock:
                    del self._locks[ino]


class Names:
    """Entries made and removed: create, mkdir, symlink, unlink, rmdir, and attributes."""

    def __init__(self, ctx: CoreContext, tree: Tree, listings: Listings, files: Files) -> None:
        self.ctx = ctx
        self.tree = tree
        self.listings = listings
        self.files = files
        self.locks = DirLocks()

    # ------------------------------------------------------------ creation

    async def _new_entry_node(self, parent: Node, name: str, kind: int, mode: int,
                              uid: int, gid: int, target: str | None = None) -> Node:
        self.ctx.writable()
        self.ctx.check_name(name)
        children = await self.listings.ensure_listed(parent)
        if name in children:
            raise FsError(errno.EEXIST)
        path = keys.join(parent.path, name)
        if self.ctx.journal.tombstone(path) is not None:
            # a delete of this path may be under way: let it finish, so the new
            # entry's base (what the bucket holds) is known for certain
            await self.ctx.sink.wait_path_idle(path)
            children = await self.listings.ensure_listed(parent)
            if name in children:
                raise FsError(errno.EEXIST)
            # a delete that started during that listing: wait for it too (no await
            # follows unless one is in flight, so what is decided below holds)
            await self.ctx.sink.wait_path_idle(path)
        self._claim_name(parent, children, name, path)
        # over a pending delete of the same key (a symlink replacing a file too), the new
        # entry replaces that object: it is its base
        base = self.ctx.journal.take_tombstone(path, kind)
        t = now_ns()
        e = Entry(path=path, kind=kind, mode=stat.S_IMODE(mode), uid=uid, gid=gid, mtime_ns=t,
                  size=0, base_etag=base, target=target, dirty_gen=1, complete=True,
                  last_used=time.time(), settled=base is not None)
        self.ctx.journal.save(e)
        node = self.tree.table.new(kind, path, mode=e.mode, uid=uid, gid=gid, mtime_ns=t)
        node.entry_id = e.id
        node.meta_known = True
        node.target = target
        if kind == stat.S_IFDIR:
            node.children = {}
            node.listed_at = trio.current_time()
            node.listed = True  # nothing below it when made (else the name would have existed)
        children[name] = node
        parent.mtime_ns = parent.ctime_ns = t
        return node

    def _claim_name(self, parent: Node, children: dict[str, Node], name: str, path: str) -> None:
        """Make sure no journal row holds ``path`` before a new entry takes it (no await:
        decided and done in one step). ``name`` is not among ``children``.

        A row for a name that the directory does not show is either a clean copy left
        behind by a race (dropped: the bucket is the truth for it) or local data the
        listing missed (shown now, and the create fails with EEXIST: never replaced)."""
        owner = self.tree.at(path)
        if owner is not None and not owner.detached:
            children[name] = owner  # in the tree, though this listing missed it
            raise FsError(errno.EEXIST)
        row = self.ctx.journal.get(path)
        if row is None:
            return
        if row.state.local_wins:
            log.info("%r has local changes that the listing did not show; showing them", path)
            node = self.tree.node_from(path, row.kind, None, row)
            if node.is_dir:
                node.children = None
            children[name] = node
            raise FsError(errno.EEXIST)
        log.debug("dropping a stray clean cache entry for %r before creating it", path)
        self.tree.drop_entry(row)

    async def create(self, parent_ino: int, name: str, mode: int, flags: int,
                     uid: int, gid: int) -> tuple[int, Attr]:
        async with self.locks.hold(parent_ino):
            return await self._create(parent_ino, name, mode, flags, uid, gid)

    async def _create(self, parent_ino: int, name: str, mode: int, flags: int,
                      uid: int, gid: int) -> tuple[int, Attr]:
        parent = self.tree.dir_node(parent_ino)
        children = await self.listings.ensure_listed(parent)
        existing = children.get(name)
        if existing is not None:
            if flags & os.O_EXCL:
                raise FsError(errno.EEXIST)
            fh, _ = await self.files.open(existing.ino, flags)
            existing.nlookup += 1
            return fh, existing.attr(self.tree.ttl_for(existing))
        node = await self._new_entry_node(parent, name, stat.S_IFREG, mode, uid, gid)
        item = self.files.attach_cache(node)
        assert node.entry_id is not None  # a new entry, its row just saved
        item.born_dirty()  # generation 1, complete and empty
        fh = self.files.new_handle(node, True)
        self.ctx.sink.changed(node.entry_id)
        node.nlookup += 1
        return fh, node.attr(self.tree.ttl_for(node))

    async def mkdir(self, parent_ino: int, name: str, mode: int, uid: int, gid: int) -> Attr:
        parent = self.tree.dir_node(parent_ino)
        async with self.locks.hold(parent_ino):
            node = await self._new_entry_node(parent, name, stat.S_IFDIR, mode, uid, gid)
        assert node.entry_id is not None  # _new_entry_node saved its row
        self.ctx.sink.changed(node.entry_id)
        node.nlookup += 1
        return node.attr(self.tree.ttl_for(node))

    async def symlink(self, parent_ino: int, name: str, target: str, uid: int, gid: int) -> Attr:
        parent = self.tree.dir_node(parent_ino)
        async with self.locks.hold(parent_ino):
            node = await self._new_entry_node(parent, name, stat.S_IFLNK, 0o777, uid, gid, target=target)
            assert node.entry_id is not None  # _new_entry_node saved its row
            self.ctx.journal.update(node.entry_id, size=len(target.encode("utf-8", "surrogateescape")))
        self.ctx.sink.changed(node.entry_id)
        node.nlookup += 1
        return node.attr(self.tree.ttl_for(node))

    async def mknod(self, parent_ino: int, name: str, mode: int, rdev: int, uid: int, gid: int) -> Attr:
        """A FIFO, socket or device node: an entry without data, uploaded as an empty object
        whose metadata carries the type (and ``rdev``). Opening it never reaches the mount:
        the kernel serves FIFOs and sockets itself (between processes on this machine)."""
        kind = stat.S_IFMT(mode)
        if kind not in SPECIAL_KINDS:
            raise FsError(errno.EINVAL, f"mknod of file type {kind:o}")
        parent = self.tree.dir_node(parent_ino)
        async with self.locks.hold(parent_ino):
            node = await self._new_entry_node(parent, name, kind, mode, uid, gid)
            assert node.entry_id is not None  # _new_entry_node saved its row
            if kind in (stat.S_IFCHR, stat.S_IFBLK):
                self.ctx.journal.update(node.entry_id, rdev=rdev)
                node.rdev = rdev
        self.ctx.sink.changed(node.entry_id)
        node.nlookup += 1
        return node.attr(self.tree.ttl_for(node))

    async def link(self, ino: int, new_parent_ino: int, new_name: str) -> Attr:
        node = self.tree.node(ino)
        raise FsError(errno.EPERM, f"hard link {new_name!r} to {node.path!r}: hard links cannot be "
                                   "stored in a bucket")

    # ------------------------------------------------------------ removal

    async def _removable(self, parent: Node, name: str) -> tuple[Node, Entry | None, bool]:
        """The child, its entry, and whether removing it deletes cloud data.

        Waits for an upload of the entry in flight, so the answer reflects it."""
        self.ctx.writable()
        node = await self.listings.child(parent, name)
        e = self.tree.entry(node)
        if e is not None:
            assert e.id is not None  # a row read from the journal
            await self.ctx.sink.wait_idle(e.id)
            node = await self.listings.child(parent, name)
            e = self.tree.entry(node)
        remote = self.tree.remote_exists(node, e)
        if self.tree.protected(node, e) and not self.ctx.opt.allow_delete:
            raise FsError(errno.EPERM, f"{node.path!r} exists in the bucket; mount with --allow-delete to delete it")
        return node, e, remote

    def _remove(self, parent: Node, name: str, node: Node, e: Entry | None, remote: bool) -> None:
        """Hide the entry now; queue the remote delete when the bucket has it.

        A file still open keeps reading its data after unlink (POSIX): its remote
        delete waits for the last close, when it may still need to fetch bytes."""
        base = e.base_etag if e is not None else node.etag
        node.etag = base
        if remote:
            self.ctx.journal.add_tombstone(Tombstone(node.path, node.kind, base, time.time()))
        if e is not None:
            assert e.id is not None  # a row read from the journal
            self.ctx.journal.delete(e.id)
            c = self.ctx.journal.open_conflict(node.path)
            if c is not None:  # the user removed the conflicted edit: that settles it
                assert c.id is not None
                self.ctx.journal.update_conflict(c.id, resolved=1, local_to="removed by the user")
        if parent.children is not None:
            parent.children.pop(name, None)
        parent.mtime_ns = parent.ctime_ns = now_ns()
        path = node.path
        if remote and node.open_count > 0:
            node.deferred_delete = path
        self.tree.detach(node)
        if remote:
            self.ctx.sink.tombstoned(path, held=node.deferred_delete is not None)

    async def unlink(self, parent_ino: int, name: str) -> None:
        parent = self.tree.dir_node(parent_ino)
        async with self.locks.hold(parent_ino):
            node, e, remote = await self._removable(parent, name)
            if node.is_dir:
                raise FsError(errno.EISDIR)
            self._remove(parent, name, node, e, remote)

    async def rmdir(self, parent_ino: int, name: str) -> None:
        async with self.locks.hold(parent_ino):
            await self._rmdir(parent_ino, name)

    async def _rmdir(self, parent_ino: int, name: str) -> None:
        parent = self.tree.dir_node(parent_ino)
        node = await self.listings.child(parent, name)
        if not node.is_dir:
            raise FsError(errno.ENOTDIR)
        if await self.listings.ensure_listed(node):
            raise FsError(errno.ENOTEMPTY)
        node, e, remote = await self._removable(parent, name)
        if await self.listings.ensure_listed(node):
            raise FsError(errno.ENOTEMPTY)
        self._remove(parent, name, node, e, remote)

    # ------------------------------------------------------------ attributes

    async def setattr(self, ino: int, changes: SetAttr) -> Attr:
        node = self.tree.node(ino)
        if changes.size is not None:
            if node.is_dir:
                raise FsError(errno.EISDIR)
            if node.detached and node.item is None:
                node.size = changes.size  # removed and closed: nothing is kept for it
            else:
                await self.files.truncate(node, changes.size)
        meta = {k: v for k, v in (("mode", changes.mode), ("uid", changes.uid),
                                   ("gid", changes.gid), ("mtime_ns", changes.mtime_ns)) if v is not None}
        if meta:
            self.ctx.writable()
            if "mode" in meta:
                meta["mode"] = stat.S_IMODE(meta["mode"])
            if all(getattr(node, k) == v for k, v in meta.items()):
                return node.attr(self.tree.ttl_for(node))
            for k, v in meta.items():
                setattr(node, k, v)
            node.ctime_ns = now_ns()
            if not node.detached and node.ino != ROOT_INO:
                # the root has no key (no entry, nothing to upload): its attributes are
                # kept in memory for the mount's lifetime (docs/SEMANTICS.md)
                e = self.tree.ensure_entry(node)
                assert e.id is not None  # ensure_entry returns a saved row
                self.ctx.journal.update(e.id, **meta)
                self.ctx.items.mark_changed(e.id, meta_only=e.base_etag is not None and node.kind != stat.S_IFDIR)
                self.ctx.sink.changed(e.id)
        return node.attr(self.tree.ttl_for(node))
