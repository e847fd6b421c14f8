"""Moving a directory's keys in the bucket (rename(2) of a directory: --allow-delete, or
only our own creations, SPEC §6).

The caller (``Renames.rename``) holds the source path in the reconciler
(``ChangeSink.hold``): no upload or delete of anything below it is in flight or
starts until the move is done, so the journal and the listing cannot change
under it by our own doing. Then:

1. List every key below the old prefix (and below the new one, to find objects
   a copy would replace). ``plan_moves`` (pure) decides per key:
   - keys that cannot be shown (``a//b``, ``..``, a file hidden by a directory of
     the same name) are **left in place** and logged (SPEC §3: never modified);
   - keys with a tombstone keep it (its own conditional delete runs later);
   - a file with a pending *data* change is not copied: its entry moves and is
     uploaded afterwards as a new key; the old key is deleted conditionally on
     the entry's base (another writer's version there is kept);
   - every other key is copied, conditional on the ETag it was listed with.
2. Copy (``CopySourceIfMatch``; a source changed since the listing is HEADed and
   copied in its new version; a vanished one is skipped). An object at the
   destination the mount never showed is first kept as a conflict copy.
3. In one journal transaction (no ``await``): entries move, each clean entry gets
   the ETag of the copy *only if it holds those bytes* (else its cached data is
   dropped), pending ones stay pending under the new path, and one tombstone per
   old key records the ETag that was copied.
4. Delete each old key conditionally on that ETag (``If-Match``, or HEAD then
   DELETE on servers that ignore it). A 412 means another writer changed it after
   the copy: their version stays under its name and a conflict is recorded. A
   transient failure leaves the tombstone for the reconciler to retry.

A failure in step 2 fails the rename with EIO before anything is deleted: some
keys may then exist twice, none is lost.
"""

from __future__ import annotations

import errno
import stat
import time
from dataclasses import dataclass

from .. import keys
from ..backend.base import NotFoundError, ObjectInfo, PreconditionFailedError, PutResult, StoreError
from ..cache.item import RemoteVersion
from ..cache.journal import Conflict, Entry, Tombstone
from ..errors import FsError
from ..events import InvalidateInode, PathChanged
from .context import CoreContext, log
from .nodes import Node
from .tree import Tree


@dataclass
class KeyMove:
    """One listed key below the old directory and what happens to it."""

    key: str
    path: str  # the mount path it stands for (a directory for a marker)
    kind: int  # S_IFDIR for a marker, else S_IFREG
    etag: str  # as listed (updated if the source changed before the copy)
    copy: bool  # copy to the new path (else only the entry moves)
    delete_if: str | None  # delete the old key if it still holds this ETag; None: leave it
    size: int = 0  # of the version ``etag``
    result: PutResult | None = None  # the copy's result


def split_listing(old_prefix: str, old_path: str, objects: list[ObjectInfo]) -> tuple[
        list[tuple[ObjectInfo, str, int]], list[str]]:
    """``(shown, hidden)``: shown keys as ``(info, path, kind)``, and the keys that cannot
    be shown (SPEC §3) and so must be left in place."""
    all_keys = {o.key for o in objects}
    shown, hidden = [], []
    for o in objects:
        rel = o.key[len(old_prefix):]
        is_marker = rel == "" or rel.endswith("/")
        rel_path = rel.removesuffix("/")
        if not keys.path_is_representable(rel_path):
            hidden.append(o.key)
            continue
        if not is_marker and any(k.startswith(o.key + "/") for k in all_keys):
            hidden.append(o.key)  # a file named like a directory: the directory wins
            continue
        path = old_path if rel_path == "" else keys.join(old_path, rel_path)
        shown.append((o, path, stat.S_IFDIR if is_marker else stat.S_IFREG))
    return shown, hidden


def plan_moves(shown: list[tuple[ObjectInfo, str, int]], entries: dict[str, Entry],
               dead: set[tuple[str, int]]) -> list[KeyMove]:
    """What to do with each shown key (see the module docstring)."""
    moves = []
    for o, path, kind in shown:
        is_dir_marker = kind == stat.S_IFDIR
        if (path, stat.S_IFDIR if is_dir_marker else stat.S_IFREG) in dead or \
                (not is_dir_marker and (path, stat.S_IFLNK) in dead):
            continue
        e = entries.get(path)
        if e is not None and (e.kind == stat.S_IFDIR) != is_dir_marker:
            e = None
        if e is not None and e.pending and not e.meta_only and not is_dir_marker:
            moves.append(KeyMove(o.key, path, kind, o.etag, copy=False, delete_if=e.base_etag, size=o.size))
        else:
            moves.append(KeyMove(o.key, path, kind, o.etag, copy=True, delete_if=o.etag, size=o.size))
    return moves


class DirMoves:
    """Moves a directory's keys, journal entries and nodes (steps 1-4 above)."""

    def __init__(self, ctx: CoreContext, tree: Tree) -> None:
        self.ctx = ctx
        self.tree = tree

    async def move(self, src: Node, new_path: str, in_bucket: bool, *, only_ours: bool = False) -> None:
        """Move directory ``src`` and everything below it to ``new_path``. ``only_ours``
        (no --allow-delete): every key to move must be one this cache dir created and
        nobody changed (SPEC §6), else EPERM before anything is copied; a source another
        writer changes during the move is left in place under its old name."""
        old_path = src.path
        moves: list[KeyMove] = []
        replaced: set[str] = set()
        if in_bucket:
            moves, replaced = await self._copy_tree(old_path, new_path, only_ours)
        self._move_journal(old_path, new_path, moves, replaced)
        for path, node in sorted(self.tree.table.by_path.items()):
            if path == old_path or keys.is_below(path, old_path):
                self.tree.table.repath(node, keys.rebase(path, old_path, new_path))
                if node.is_dir:
                    node.listed_at = float("-inf")  # its keys moved: list the new prefix afresh
        await self._delete_old_keys(old_path, new_path, [m for m in moves if m.delete_if is not None])

    async def _copy_tree(self, old_path: str, new_path: str, only_ours: bool) -> tuple[list[KeyMove], set[str]]:
        old_prefix = self.ctx.store.dir_key(old_path)
        new_prefix = self.ctx.store.dir_key(new_path)
        try:
            below_old = await self.ctx.store.list_all(old_prefix, recursive=True)
            shown, hidden = split_listing(old_prefix, old_path, below_old.objects)
            existing = {o.key: o.etag for o in (await self.ctx.store.list_all(new_prefix, recursive=True)).objects}
        except StoreError as exc:
            log.warning("rename of directory %r failed in the bucket: %s", old_path, exc)
            raise FsError(errno.EIO, str(exc)) from exc
        if hidden:
            log.warning("rename of directory %r: %d key(s) below it cannot be shown (e.g. %r) and are left "
                        "in place, so %r stays in the bucket", old_path, len(hidden), hidden[0], old_path)
        entries = {e.path: e for e in self.ctx.journal.under(old_path)}
        top = self.ctx.journal.get(old_path)
        if top is not None:
            entries[old_path] = top
        dead = {(t.path, t.kind) for t in self.ctx.journal.tombstones_under(old_path)}
        t = self.ctx.journal.tombstone(old_path)
        if t is not None:
            dead.add((t.path, t.kind))
        moves = plan_moves(shown, entries, dead)
        if only_ours:
            foreign = [m.key for m in moves if m.delete_if is not None
                       and not self.ctx.journal.created.ours(m.key, m.delete_if)]
            if foreign:
                raise FsError(errno.EPERM, f"{old_path!r} holds {len(foreign)} object(s) this mount did not "
                                           f"create (e.g. {foreign[0]!r}); renaming it deletes them: "
                                           "mount with --allow-delete")
        replaced: set[str] = set()  # new paths whose tombstone the copy carries out
        try:
            for m in moves:
                if not m.copy:
                    continue
                dst_path = keys.rebase(m.path, old_path, new_path)
                dst_key = new_prefix + m.key[len(old_prefix):]
                tomb = self.ctx.journal.tombstone(dst_path)
                seen = tomb.base_etag if tomb is not None else None
                await self._copy_key(m, dst_key, dst_path, existing.get(dst_key), seen, only_ours)
                if tomb is not None:
                    replaced.add(dst_path)
        except StoreError as exc:
            log.warning("rename of directory %r failed in the bucket: %s", old_path, exc)
            raise FsError(errno.EIO, f"rename of {old_path!r} failed in the bucket: {exc}") from exc
        return moves, replaced

    async def _copy_key(self, m: KeyMove, dst_key: str, dst_path: str, dst_etag: str | None,
                        seen: str | None, only_ours: bool) -> None:
        """Copy ``m.key`` (conditional on ``m.etag``) to ``dst_key``. An object at the
        destination the mount never showed (not ``seen``) is kept as a conflict copy first.
        A source that vanished meanwhile is not copied (``m.copy`` becomes False), nor one
        another writer changed when ``only_ours`` (it stays under its old name). The copy
        is ours (cache.creations) when its source was and it replaced nothing or ours."""
        created = self.ctx.journal.created
        if m.kind == stat.S_IFDIR:
            seen = dst_etag  # a directory marker holds no content: replacing one loses nothing
        for _attempt in range(4):
            if dst_etag is not None and dst_etag != seen:
                await self.ctx.conflict_copies.keep_remote_version(
                    dst_path, dst_etag, seen_etag=seen,
                    local_to=f"bucket:{dst_key} (directory renamed over it)")
                seen = dst_etag
            try:
                src_ours = created.ours(m.key, m.etag)
                m.result = await self.ctx.store.copy_if_match(m.key, dst_key, m.etag, if_none_match=dst_etag is None)
                if src_ours:
                    created.after_write(dst_key, dst_etag, m.result.etag)
                else:
                    created.forget(dst_key)
                return
            except (PreconditionFailedError, NotFoundError):
                try:
                    info = await self.ctx.store.head(m.key)
                    m.etag, m.size = info.etag, info.size
                except NotFoundError:
                    m.copy, m.delete_if = False, None  # gone: nothing to move
                    return
                if only_ours:
                    m.copy, m.delete_if = False, None  # another writer's version now: not ours to move
                    return
                try:
                    dst_etag = (await self.ctx.store.head(dst_key)).etag
                except NotFoundError:
                    dst_etag = None
                if m.kind == stat.S_IFDIR:
                    seen = dst_etag
                m.delete_if = m.etag
        raise StoreError(f"{m.key!r} keeps changing in the bucket")

    def _move_journal(self, old_path: str, new_path: str, moves: list[KeyMove], replaced: set[str]) -> None:
        """Step 3 of the module docstring; no ``await`` (one atomic step on the trio thread)."""
        by_path = {(m.path, m.kind == stat.S_IFDIR): m for m in moves}
        changed: list[int] = []
        top = self.ctx.journal.get(old_path)
        for e in self.ctx.journal.under(old_path) + ([top] if top is not None else []):
            assert e.id is not None  # rows read from the journal always have one
            m = by_path.get((e.path, e.kind == stat.S_IFDIR))
            dst_path = keys.rebase(e.path, old_path, new_path)
            tomb = self.ctx.journal.tombstone(dst_path)
            dst_base = tomb.base_etag if tomb is not None and dst_path not in replaced else None
            if m is not None and m.copy and m.result is not None:
                if e.kind == stat.S_IFDIR or e.base_etag == m.etag:
                    self.ctx.journal.update(e.id, base_etag=m.result.etag, base_version=m.result.version_id)
                else:
                    self._adopt_copied_version(e, m)  # the cache held another version
            elif e.copy_from is not None:
                # a renamed file whose copy is still to do: it moves on, its bytes stay where they are
                self.ctx.journal.update(e.id, base_etag=dst_base)
                changed.append(e.id)
            elif (e.state.local_wins and (e.complete or not e.meta_only)) or e.kind == stat.S_IFDIR:
                # local content (or a directory whose marker must exist): uploaded as a new key
                self.ctx.items.move(e.id, dst_base)
                changed.append(e.id)
                if tomb is not None:
                    self.ctx.journal.remove_tombstone(dst_path)
            else:  # clean (or only a metadata change, bytes not cached), and gone from the bucket
                self.tree.drop_entry(e)
        # renamed files whose bytes were below the directory: they are under the new prefix now
        for c in self.ctx.journal.copies_from_under(old_path):
            assert c.id is not None and c.copy_from is not None  # rows read from the journal
            m = by_path.get((c.copy_from, False))
            if m is not None and m.copy and m.result is not None and m.etag == c.copy_etag:
                self.ctx.journal.update(c.id, copy_from=keys.rebase(c.copy_from, old_path, new_path),
                                        copy_etag=m.result.etag)
        for p in replaced:
            self.ctx.journal.remove_tombstone(p)
        for m in moves:
            if m.delete_if is not None:
                self.ctx.journal.add_tombstone(Tombstone(m.path, stat.S_IFDIR if m.kind == stat.S_IFDIR
                                                     else stat.S_IFREG, m.delete_if, time.time()))
        self.ctx.journal.rename_subtree(old_path, new_path)
        for entry_id in changed:
            self.ctx.sink.changed(entry_id)

    def _adopt_copied_version(self, e: Entry, m: KeyMove) -> None:
        """The bucket held another version than the cached one (another writer's, not yet
        seen): the moved entry shows that version; the stale cached bytes are dropped."""
        assert m.result is not None
        assert e.id is not None  # rows read from the journal always have one
        self.ctx.items.reset_to(e.id, RemoteVersion(m.result.etag, m.result.version_id, m.size))
        node = self.tree.at(e.path)
        if node is not None and node.entry_id == e.id:
            node.etag = m.result.etag
            node.size = m.size
            node.meta_known = False
            node.attr_time = float("-inf")
            node.content_version += 1
            self.ctx.events.publish(InvalidateInode(node.ino))
        log.info("%r changed in the bucket before it was moved; the moved copy is that version", e.path)

    async def _delete_old_keys(self, old_path: str, new_path: str, moves: list[KeyMove]) -> None:
        """Step 4 of the module docstring."""
        for m in moves:
            try:
                await self.ctx.store.delete_if_match(m.key, m.delete_if)
            except NotFoundError:
                pass
            except PreconditionFailedError:
                try:
                    current = (await self.ctx.store.head(m.key)).etag
                except (NotFoundError, StoreError):
                    current = None
                self.ctx.conflict_copies.record(
                    Conflict(time=time.time(), path=m.path, kind="delete-refused", strategy="keep-both",
                             local_etag=m.delete_if, remote_etag=current,
                             local_to=f"renamed to {keys.rebase(m.path, old_path, new_path)}",
                             remote_to=f"bucket:{m.key}", resolved=1),
                    "conflict on %r: moved by a directory rename, but changed in the bucket meanwhile "
                    "(%s → %s); that version is kept under its name", m.path, m.delete_if, current)
                self.ctx.events.publish(PathChanged(m.path))
            except StoreError as exc:
                log.info("could not delete %r after moving it (%s); will retry", m.key, exc)
                self.ctx.sink.tombstoned(m.path)
                continue
            self.ctx.journal.created.forget(m.key)
            self.ctx.journal.remove_tombstone(m.path)
