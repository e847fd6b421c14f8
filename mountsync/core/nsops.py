"""Namespace operations: lookup, getattr, setattr, readdir, create, mkdir, symlink, unlink, rmdir.

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
from ..cache.journal import Entry, Tombstone
from ..errors import FsError
from .base import log, now_ns
from .fileops import FileOps
from .nodes import MAX_ABSENT_NAMES, ROOT_INO, Attr, Node, NoEntry


@dataclass
class DirHandle:
    node: Node
    snapshot: list[tuple[str, Node]] | None = None


@dataclass(frozen=True)
class SetAttr:
    """Fields of a setattr call; ``None`` means unchanged."""

    size: int | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    mtime_ns: int | None = None


class NamespaceOps(FileOps):
    def _init_nsops(self) -> None:
        self.dir_handles: dict[int, DirHandle] = {}
        self._next_dh = 1
        self._dir_locks: dict[int, trio.Lock] = {}

    @asynccontextmanager
    async def dir_locked(self, *inos: int) -> AsyncIterator[None]:
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
                lock = self._dir_locks.setdefault(ino, trio.Lock())
                await lock.acquire()
                held.append((ino, lock))
            yield
        finally:
            for ino, lock in reversed(held):
                lock.release()
                st = lock.statistics()
                if not st.locked and st.tasks_waiting == 0 and self._dir_locks.get(ino) is lock:
                    del self._dir_locks[ino]

    # ------------------------------------------------------------ lookups

    async def child(self, parent: Node, name: str) -> Node:
        """The child ``name`` of ``parent``, as fresh as the TTLs require.

        A directory is listed in full once; after the TTL, a lookup asks the bucket
        about that one name (HEAD, and a one-key LIST when there is no object) rather
        than listing the whole directory again, so ``ls -l`` of a big directory costs
        one listing plus one HEAD per entry. ``readdir`` relists.

        A name that is not there is trusted to stay away for ``--negative-metadata-ttl``
        (from the listing, or from the last time this name was asked about); after
        that a lookup asks the bucket about it. Raises ``NoEntry`` with the time the
        answer may still be trusted."""
        if parent.children is None:
            await self.ensure_listed(parent)
        assert parent.children is not None  # a listed directory keeps a dict
        now = trio.current_time()
        if name in parent.children:
            if now - parent.listed_at >= self.opt.metadata_ttl:
                await self.refresh_child(parent, name)
        else:
            absent = parent.absent_at or {}
            seen = max(parent.listed_at, absent.get(name, float("-inf")))
            if now - seen >= self.negative_ttl:
                await self.refresh_child(parent, name)
                if parent.children is not None and name not in parent.children:
                    self._remember_absent(parent, name, now)
                seen = now
            node = parent.children.get(name) if parent.children is not None else None
            if node is None:
                raise NoEntry(max(0.0, self.negative_ttl - (trio.current_time() - seen)))
        node = parent.children.get(name)
        if node is None:
            raise NoEntry(0.0)
        return node

    @property
    def negative_ttl(self) -> float:
        """How long "no such name" is trusted (``--negative-metadata-ttl``)."""
        n = self.opt.negative_metadata_ttl
        return self.opt.metadata_ttl if n is None else n

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

    async def lookup(self, parent_ino: int, name: str) -> Attr:
        """Resolve ``name``; counts one kernel lookup reference on success."""
        parent = self.dir_node(parent_ino)
        if name == ".":
            node = parent
        elif name == "..":
            node = self.table.by_path.get(keys.parent_of(parent.path), parent)
        else:
            if len(name.encode("utf-8", "surrogateescape")) > keys.MAX_NAME_BYTES:
                raise FsError(errno.ENAMETOOLONG)
            node = await self.child(parent, name)
            node = await self.ensure_meta(parent, node)
        node.nlookup += 1
        return node.attr(self.ttl_for(node))

    async def getattr(self, ino: int) -> Attr:
        node = self.node(ino)
        return node.attr(self.ttl_for(node))

    async def readlink(self, ino: int) -> str:
        node = self.node(ino)
        if node.target is None:
            raise FsError(errno.EINVAL)
        return node.target

    def remember(self, ino: int) -> None:
        """The kernel took a reference through readdirplus."""
        self.node(ino).nlookup += 1

    def forget(self, ino: int, n: int) -> None:
        node = self.table.get(ino)
        if node is None:
            return
        node.nlookup -= n
        self.maybe_collect(node)

    # ------------------------------------------------------------ readdir

    async def opendir(self, ino: int) -> int:
        node = self.dir_node(ino)
        dh = self._next_dh
        self._next_dh += 1
        self.dir_handles[dh] = DirHandle(node)
        return dh

    async def readdir(self, dh: int, start: int) -> list[tuple[str, Attr, int]]:
        """Entries from position ``start`` on, each with the position after it.

        Positions index a snapshot taken when reading starts (``start == 0``), so
        they stay stable for the handle however the directory changes meanwhile."""
        h = self.dir_handles.get(dh)
        if h is None:
            raise FsError(errno.EBADF)
        if h.snapshot is None or start == 0:
            children = await self.ensure_listed(h.node)
            h.snapshot = sorted(children.items())
        out = []
        for i in range(start, len(h.snapshot)):
            name, node = h.snapshot[i]
            out.append((name, node.attr(self.ttl_for(node)), i + 1))
        return out

    def releasedir(self, dh: int) -> None:
        self.dir_handles.pop(dh, None)

    # ------------------------------------------------------------ creation

    async def _new_entry_node(self, parent: Node, name: str, kind: int, mode: int,
                              uid: int, gid: int, target: str | None = None) -> Node:
        self.writable()
        self.check_name(name)
        children = await self.ensure_listed(parent)
        if name in children:
            raise FsError(errno.EEXIST)
        path = keys.join(parent.path, name)
        if self.journal.tombstone(path) is not None:
            # a delete of this path may be under way: let it finish, so the new
            # entry's base (what the bucket holds) is known for certain
            await self.sink.wait_path_idle(path)
            children = await self.ensure_listed(parent)
            if name in children:
                raise FsError(errno.EEXIST)
            # a delete that started during that listing: wait for it too (no await
            # follows unless one is in flight, so what is decided below holds)
            await self.sink.wait_path_idle(path)
        self._claim_name(parent, children, name, path)
        tomb = self.journal.tombstone(path)
        base = tomb.base_etag if tomb is not None and tomb.kind == kind else None
        t = now_ns()
        e = Entry(path=path, kind=kind, mode=stat.S_IMODE(mode), uid=uid, gid=gid, mtime_ns=t,
                  size=0, base_etag=base, target=target, dirty_gen=1, complete=True,
                  last_used=time.time(), settled=base is not None)
        self.journal.save(e)
        if tomb is not None:
            self.journal.remove_tombstone(path)
        node = self.table.new(kind, path, mode=e.mode, uid=uid, gid=gid, mtime_ns=t)
        node.entry_id = e.id
        node.meta_known = True
        node.target = target
        if kind == stat.S_IFDIR:
            node.children = {}
            node.listed_at = trio.current_time()
        children[name] = node
        parent.mtime_ns = parent.ctime_ns = t
        return node

    def _claim_name(self, parent: Node, children: dict[str, Node], name: str, path: str) -> None:
        """Make sure no journal row holds ``path`` before a new entry takes it (no await:
        decided and done in one step). ``name`` is not among ``children``.

        A row for a name that the directory does not show is either a clean copy left
        behind by a race (dropped: the bucket is the truth for it) or local data the
        listing missed (shown now, and the create fails with EEXIST: never replaced)."""
        owner = self.table.by_path.get(path)
        if owner is not None and not owner.detached:
            children[name] = owner  # in the tree, though this listing missed it
            raise FsError(errno.EEXIST)
        row = self.journal.get(path)
        if row is None:
            return
        if row.state.local_wins:
            log.info("%r has local changes that the listing did not show; showing them", path)
            node = self._node_from(path, row.kind, None, row)
            if node.is_dir:
                node.children = None
            children[name] = node
            raise FsError(errno.EEXIST)
        log.debug("dropping a stray clean cache entry for %r before creating it", path)
        self._drop_entry(row)

    def _vacate(self, path: str, keeper: Node) -> None:
        """Just before ``keeper`` takes ``path`` (a rename, which replaces its target):
        whatever a lookup or open racing with the rename put there is replaced too."""
        row = self.journal.get(path)
        if row is not None and row.id != keeper.entry_id:
            self._drop_entry(row)
        other = self.table.by_path.get(path)
        if other is not None and other is not keeper:
            parent = self.table.by_path.get(keys.parent_of(path))
            if parent is not None and parent.children is not None \
                    and parent.children.get(keys.name_of(path)) is other:
                del parent.children[keys.name_of(path)]
            self.detach(other)

    async def create(self, parent_ino: int, name: str, mode: int, flags: int,
                     uid: int, gid: int) -> tuple[int, Attr]:
        async with self.dir_locked(parent_ino):
            return await self._create(parent_ino, name, mode, flags, uid, gid)

    async def _create(self, parent_ino: int, name: str, mode: int, flags: int,
                      uid: int, gid: int) -> tuple[int, Attr]:
        parent = self.dir_node(parent_ino)
        children = await self.ensure_listed(parent)
        existing = children.get(name)
        if existing is not None:
            if flags & os.O_EXCL:
                raise FsError(errno.EEXIST)
            fh, _ = await self.open(existing.ino, flags)
            existing.nlookup += 1
            return fh, existing.attr(self.ttl_for(existing))
        node = await self._new_entry_node(parent, name, stat.S_IFREG, mode, uid, gid)
        item = self._attach_cache(node)
        assert node.entry_id is not None  # a new entry, its row just saved
        item.born_dirty()  # generation 1, complete and empty
        fh = self._new_handle(node, True)
        self.sink.changed(node.entry_id)
        node.nlookup += 1
        return fh, node.attr(self.ttl_for(node))

    async def mkdir(self, parent_ino: int, name: str, mode: int, uid: int, gid: int) -> Attr:
        parent = self.dir_node(parent_ino)
        async with self.dir_locked(parent_ino):
            node = await self._new_entry_node(parent, name, stat.S_IFDIR, mode, uid, gid)
        assert node.entry_id is not None  # _new_entry_node saved its row
        self.sink.changed(node.entry_id)
        node.nlookup += 1
        return node.attr(self.ttl_for(node))

    async def symlink(self, parent_ino: int, name: str, target: str, uid: int, gid: int) -> Attr:
        parent = self.dir_node(parent_ino)
        async with self.dir_locked(parent_ino):
            node = await self._new_entry_node(parent, name, stat.S_IFLNK, 0o777, uid, gid, target=target)
            assert node.entry_id is not None  # _new_entry_node saved its row
            self.journal.update(node.entry_id, size=len(target.encode("utf-8", "surrogateescape")))
        self.sink.changed(node.entry_id)
        node.nlookup += 1
        return node.attr(self.ttl_for(node))

    async def link(self, ino: int, new_parent_ino: int, new_name: str) -> Attr:
        node = self.node(ino)
        raise FsError(errno.EPERM, f"hard link {new_name!r} to {node.path!r}: hard links cannot be "
                                   "stored in a bucket")

    # ------------------------------------------------------------ removal

    async def _removable(self, parent: Node, name: str) -> tuple[Node, Entry | None, bool]:
        """The child, its entry, and whether removing it deletes cloud data.

        Waits for an upload of the entry in flight, so the answer reflects it."""
        self.writable()
        node = await self.child(parent, name)
        e = self.entry(node)
        if e is not None:
            assert e.id is not None  # a row read from the journal
            await self.sink.wait_idle(e.id)
            node = await self.child(parent, name)
            e = self.entry(node)
        remote = self.remote_exists(node, e)
        if self.protected(node, e) and not self.opt.allow_delete:
            raise FsError(errno.EPERM, f"{node.path!r} exists in the bucket; mount with --allow-delete to delete it")
        return node, e, remote

    def _remove(self, parent: Node, name: str, node: Node, e: Entry | None, remote: bool) -> None:
        """Hide the entry now; queue the remote delete when the bucket has it.

        A file still open keeps reading its data after unlink (POSIX): its remote
        delete waits for the last close, when it may still need to fetch bytes."""
        base = e.base_etag if e is not None else node.etag
        node.etag = base
        if remote:
            self.journal.add_tombstone(Tombstone(node.path, node.kind, base, time.time()))
        if e is not None:
            assert e.id is not None  # a row read from the journal
            self.journal.delete(e.id)
            c = self.journal.open_conflict(node.path)
            if c is not None:  # the user removed the conflicted edit: that settles it
                assert c.id is not None
                self.journal.update_conflict(c.id, resolved=1, local_to="removed by the user")
        if parent.children is not None:
            parent.children.pop(name, None)
        parent.mtime_ns = parent.ctime_ns = now_ns()
        path = node.path
        if remote and node.open_count > 0:
            node.deferred_delete = path
        self.detach(node)
        if remote:
            self.sink.tombstoned(path, held=node.deferred_delete is not None)

    async def unlink(self, parent_ino: int, name: str) -> None:
        parent = self.dir_node(parent_ino)
        async with self.dir_locked(parent_ino):
            node, e, remote = await self._removable(parent, name)
            if node.is_dir:
                raise FsError(errno.EISDIR)
            self._remove(parent, name, node, e, remote)

    async def rmdir(self, parent_ino: int, name: str) -> None:
        async with self.dir_locked(parent_ino):
            await self._rmdir(parent_ino, name)

    async def _rmdir(self, parent_ino: int, name: str) -> None:
        parent = self.dir_node(parent_ino)
        node = await self.child(parent, name)
        if not node.is_dir:
            raise FsError(errno.ENOTDIR)
        if await self.ensure_listed(node):
            raise FsError(errno.ENOTEMPTY)
        node, e, remote = await self._removable(parent, name)
        if await self.ensure_listed(node):
            raise FsError(errno.ENOTEMPTY)
        self._remove(parent, name, node, e, remote)

    # ------------------------------------------------------------ attributes

    async def setattr(self, ino: int, changes: SetAttr) -> Attr:
        node = self.node(ino)
        if changes.size is not None:
            if node.is_dir:
                raise FsError(errno.EISDIR)
            if node.detached and node.item is None:
                node.size = changes.size  # removed and closed: nothing is kept for it
            else:
                await self.truncate(node, changes.size)
        meta = {k: v for k, v in (("mode", changes.mode), ("uid", changes.uid),
                                   ("gid", changes.gid), ("mtime_ns", changes.mtime_ns)) if v is not None}
        if meta:
            self.writable()
            if "mode" in meta:
                meta["mode"] = stat.S_IMODE(meta["mode"])
            if all(getattr(node, k) == v for k, v in meta.items()):
                return node.attr(self.ttl_for(node))
            for k, v in meta.items():
                setattr(node, k, v)
            node.ctime_ns = now_ns()
            if not node.detached and node.ino != ROOT_INO:
                # the root has no key (no entry, nothing to upload): its attributes are
                # kept in memory for the mount's lifetime (docs/SEMANTICS.md)
                e = self.ensure_entry(node)
                assert e.id is not None  # ensure_entry returns a saved row
                self.journal.update(e.id, **meta)
                self.items.mark_changed(e.id, meta_only=e.base_etag is not None and node.kind != stat.S_IFDIR)
                self.sink.changed(e.id)
        return node.attr(self.ttl_for(node))

    def statfs(self) -> dict:
        bsize = 4096
        blocks = (1 << 50) // bsize
        return {"bsize": bsize, "frsize": bsize, "blocks": blocks, "bfree": blocks, "bavail": blocks,
                "files": 1 << 32, "ffree": 1 << 31, "favail": 1 << 31, "namemax": keys.MAX_NAME_BYTES}


__all__ = ["NamespaceOps", "SetAttr", "DirHandle", "log"]
