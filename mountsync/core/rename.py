"""rename(2) with the delete rule of SPEC §6.

- Source only in the cache (never uploaded): a journal move, always allowed,
  also over an existing target (the atomic-save pattern); the target's remote
  object is then overwritten by the upload (its ETag becomes the base).
- Source in the bucket: needs ``allow_delete``, or an object this cache dir
  created (§6). A file with pending local data moves in the journal and leaves a
  tombstone for the old key. A file whose bytes are in the bucket moves in the
  journal too, remembering the object its bytes are (``copy_from``): the
  reconciler copies it to the new key (conditional on its ETag), and only then
  deletes the old key, conditionally (its tombstone waits for the copy). So a
  file rename needs no request and survives outages and crashes like any other
  change. A directory moves the same way, every key below it (``core.dirmove``): one
  LIST in the call (none when the endpoint is away and the cache knows the subtree).

The whole rename runs under ``ChangeSink.hold`` of the source and target
paths: no upload or delete of either (or of anything below a directory) is in
flight or starts meanwhile, so nothing lands under the old name behind the
rename's back, and a delete of the target in flight is finished first.
An object the copy would replace that the mount never showed (another
writer's) is first kept under a conflict name (``ConflictCopies``, by the
reconciler).
"""
from __future__ import annotations

import errno
import stat
import time

from .. import keys
from ..backend.base import StoreError
from ..cache.journal import Entry, Tombstone
from ..errors import FsError
from .context import CoreContext, log, now_ns
from .dirmove import DirMoves, back_home
from .listings import Listings
from .nodes import Node
from .tree import Tree

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


class Renames:
    """rename(2) of files and directories (directories through ``DirMoves``)."""

    def __init__(self, ctx: CoreContext, tree: Tree, listings: Listings) -> None:
        self.ctx = ctx
        self.tree = tree
        self.listings = listings
        self.dirs = DirMoves(ctx, tree)

    async def rename(self, old_parent_ino: int, old_name: str, new_parent_ino: int,
                     new_name: str, flags: int = 0) -> None:
        self.ctx.writable()
        if flags & RENAME_EXCHANGE:
            raise FsError(errno.EINVAL, "RENAME_EXCHANGE is not supported")
        src_parent = self.tree.dir_node(old_parent_ino)
        dst_parent = self.tree.dir_node(new_parent_ino)
        self.ctx.check_name(new_name)
        # the target is held too: a delete of it in flight (unlink b; mv c b) finishes first,
        # and one queued does not start under the rename, which takes over its tombstone
        async with self.ctx.sink.hold(keys.join(src_parent.path, old_name)), \
                self.ctx.sink.hold(keys.join(dst_parent.path, new_name)):
            await self._rename(src_parent, old_name, dst_parent, new_name, flags)

    async def _rename(self, src_parent: Node, old_name: str, dst_parent: Node, new_name: str, flags: int) -> None:
        src = await self.listings.child(src_parent, old_name)
        dst_children = await self.listings.ensure_listed(dst_parent)
        dst = dst_children.get(new_name)
        if dst is not None and dst.entry_id is not None and dst is not src:
            # let an upload of the target in flight finish first, so its result is our
            # own version (its base), not mistaken for another writer's
            await self.ctx.sink.wait_idle(dst.entry_id)
            dst_children = await self.listings.ensure_listed(dst_parent)
            dst = dst_children.get(new_name)
        if dst is src:
            return
        new_path = keys.join(dst_parent.path, new_name)
        if src.is_dir and (new_path == src.path or keys.is_below(new_path, src.path)):
            raise FsError(errno.EINVAL, "cannot move a directory into itself")
        if dst is not None:
            if flags & RENAME_NOREPLACE:
                raise FsError(errno.EEXIST)
            if dst.is_dir and not src.is_dir:
                raise FsError(errno.EISDIR)
            if src.is_dir and not dst.is_dir:
                raise FsError(errno.ENOTDIR)
            if dst.is_dir and await self.listings.ensure_listed(dst):
                raise FsError(errno.ENOTEMPTY)
        e = self.tree.entry(src)
        if e is not None:
            assert e.id is not None  # a row read from the journal
            await self.ctx.sink.wait_idle(e.id)
            e = self.tree.entry(src)
        src_remote = self.tree.remote_exists(src, e) if not src.is_dir else await self._dir_in_bucket(src)
        # without --allow-delete only our own creations move (§6); for a directory, every
        # key below it must be ours, which the move checks against its listing
        src_protected = not src.is_dir and src_remote and (e is None or e.settled) and not self.tree.ours(src, e)
        if src_protected and not self.ctx.opt.allow_delete:
            raise FsError(errno.EPERM, f"{src.path!r} exists in the bucket; renaming it deletes the old "
                                       "key: mount with --allow-delete")
        dst_entry = self.tree.entry(dst) if dst is not None else None
        if dst is not None and dst.is_dir and self.tree.protected(dst, dst_entry) and not self.ctx.opt.allow_delete:
            raise FsError(errno.EPERM, f"replacing {dst.path!r} would delete it from the bucket")
        # the remote version the target key holds now, which an upload there must replace
        dst_base = self._target_base(new_path, src.kind, dst, dst_entry)
        if dst is not None:
            self._drop_target(dst_parent, new_name, dst, dst_entry)
        if src.is_dir:
            await self.dirs.move(src, new_path, src_remote, only_ours=not self.ctx.opt.allow_delete)
        elif (src_remote or (e is not None and e.copy_from is not None)) and (
                e is None or not e.pending or e.meta_only):
            # unchanged bytes (a pending chmod/touch at most, which may have none cached):
            # moved at once; the reconciler copies the object in the bucket later
            self._move_clean_file(src, e, new_path, dst_base)
        else:
            self._move_entry_file(src, e, new_path, dst_base, src_remote)
        assert src_parent.children is not None  # listed by ``child`` above; a listing is never unset
        src_parent.children.pop(old_name, None)
        (dst_parent.children if dst_parent.children is not None else dst_children)[new_name] = src
        t = now_ns()
        src_parent.mtime_ns = src_parent.ctime_ns = dst_parent.mtime_ns = dst_parent.ctime_ns = t
        src.ctime_ns = t

    # ------------------------------------------------------------ helpers

    async def _dir_in_bucket(self, d: Node) -> bool:
        """Does the bucket hold anything at or below directory ``d``? What the cache knows
        first; when it knows of nothing, one one-key LIST, because another writer may have
        put keys below a directory this mount created and has not uploaded (or listed) since.
        If the endpoint cannot answer, the cache's knowledge stands (a key put meanwhile then
        stays under its old name: nothing is lost)."""
        if d.remote:
            return True
        e = self.tree.entry(d)
        if e is not None and e.base_etag is not None:
            return True
        if any(x.base_etag is not None for x in self.ctx.journal.under(d.path)):
            return True
        try:
            page = await self.ctx.store.list_page(self.ctx.store.dir_key(d.path), None, None, max_keys=1)
        except StoreError as exc:
            log.info("cannot ask the bucket about %r before renaming it (%s); renaming locally", d.path, exc)
            return False
        return bool(page.objects or page.prefixes)

    def _target_base(self, path: str, kind: int, dst: Node | None, dst_entry: Entry | None) -> str | None:
        if dst_entry is not None:
            return dst_entry.base_etag
        if dst is not None:
            return dst.etag
        tomb = self.ctx.journal.tombstone(path)  # of the same key (not a marker under a file's name)
        return tomb.base_etag if tomb is not None and (tomb.kind == stat.S_IFDIR) == (kind == stat.S_IFDIR) \
            else None

    def _drop_target(self, parent: Node, name: str, dst: Node, dst_entry: Entry | None) -> None:
        """The target is replaced: forget its local state (its remote object is overwritten
        by the source's upload, or deleted for a directory marker)."""
        if dst.is_dir and self.tree.remote_exists(dst, dst_entry):
            # the marker's ETag when known: whatever takes the name over replaces that marker
            marker = dst_entry.base_etag if dst_entry is not None else None
            self.ctx.journal.add_tombstone(Tombstone(dst.path, stat.S_IFDIR, marker, time.time()))
            self.ctx.sink.tombstoned(dst.path)
        if dst_entry is not None:
            assert dst_entry.id is not None  # a row read from the journal
            self.ctx.journal.delete(dst_entry.id)
        assert parent.children is not None  # the target's directory was listed to find it
        parent.children.pop(name, None)
        self.tree.detach(dst)

    def _move_entry_file(self, src: Node, e: Entry | None, new_path: str, dst_base: str | None,
                         src_remote: bool) -> None:
        """A file whose content is local (pending or never uploaded) moves in the journal."""
        assert e is not None and e.id is not None  # only a file with a journal entry gets here
        self.tree.vacate(new_path, src)
        old_path = src.path
        c = self.ctx.journal.open_conflict(old_path)
        if c is not None:  # the user moved the conflicted edit away: that settles it
            assert c.id is not None  # a row read from the journal
            self.ctx.journal.update_conflict(c.id, resolved=1, local_to=f"renamed to {new_path}")
        self.ctx.journal.take_tombstone(new_path, src.kind)
        if src_remote:
            self.ctx.journal.add_tombstone(Tombstone(old_path, src.kind, e.base_etag, time.time()))
        self.ctx.journal.rename_subtree(old_path, new_path)
        # over an existing object, the file now stands for cloud data (§6)
        self.ctx.items.move(e.id, dst_base, settled=int(e.settled or dst_base is not None))
        self.tree.table.repath(src, new_path)
        src.etag = dst_base
        if src_remote:
            self.ctx.sink.tombstoned(old_path)
        self.ctx.sink.changed(e.id)

    def _move_clean_file(self, src: Node, e: Entry | None, new_path: str, dst_base: str | None) -> None:
        """A file whose bytes are in the bucket (unchanged, or with a pending metadata change
        only) moves in the journal at once, without a request: its entry records the object
        its bytes are (``copy_from``/``copy_etag``: the original one along a chain of
        renames), reads fetch from there, and the reconciler copies it to the new key later
        (conditional on that ETag). The old key gets a tombstone whose delete waits for
        that copy (``Journal.copy_pending_from``), so an outage or a crash in between loses
        nothing: the bytes stay under the old key until the new one has them."""
        if e is None:
            e = self.tree.ensure_entry(src)
        assert e.id is not None  # a row read from the journal
        old_path = src.path
        self.tree.vacate(new_path, src)
        c = self.ctx.journal.open_conflict(old_path)
        if c is not None:  # the user moved the conflicted file away: that settles it
            assert c.id is not None  # a row read from the journal
            self.ctx.journal.update_conflict(c.id, resolved=1, local_to=f"renamed to {new_path}")
        self.ctx.journal.take_tombstone(new_path, src.kind)
        if e.base_etag is not None:
            self.ctx.journal.add_tombstone(Tombstone(old_path, src.kind, e.base_etag, time.time()))
        self.ctx.journal.rename_subtree(old_path, new_path)
        if e.copy_from is not None:  # renamed before: along a chain its bytes stay where they are
            back_home(self.ctx.journal, e, new_path, dst_base)
        else:
            self.ctx.journal.update(e.id, base_etag=dst_base, base_version=None,
                                    copy_from=old_path, copy_etag=e.base_etag)
            self.ctx.items.mark_changed(e.id, meta_only=True)  # one generation for the copy
        self.tree.table.repath(src, new_path)
        src.etag = dst_base
        if e.base_etag is not None:
            self.ctx.sink.tombstoned(old_path)
        self.ctx.sink.changed(e.id)
