"""Moving a directory (rename(2) of a directory whose keys are in the bucket: with
--allow-delete, or only our own creations, SPEC §6): recorded in the journal at once,
carried out in the bucket later, like a file rename (``core.rename``, ``reconciler.moved``).

The caller (``Renames.rename``) holds the source path in the reconciler
(``ChangeSink.hold``): no upload or delete below it is in flight or starts until the
move is recorded. Then:

1. Which keys are below the old prefix: one recursive LIST; when the endpoint does not
   answer, what the cache knows (``known_below``), provided every directory below was
   listed from the bucket at some time (else EIO: keys the mount never saw would be
   left behind). ``split_listing`` and ``plan_moves`` (pure) decide per key:
   - keys that cannot be shown (``a//b``, ``..``, a file hidden by a directory of the
     same name) are left in place and logged (SPEC §3: never modified);
   - keys with a tombstone keep it (its own conditional delete runs later);
   - a file with pending local data, a symlink or special file known as such, or a file
     already renamed (its bytes are elsewhere): its entry moves, and is uploaded (or
     copied from where its bytes are) at the new path; the old key is deleted,
     conditionally on the version the entry was based on;
   - every other file becomes an entry at the new path whose bytes are the old key
     (``copy_from``, ``copy_etag`` = the listed ETag): the reconciler copies it later,
     then deletes the old key (that tombstone waits for the copy);
   - a directory marker is uploaded at the new path (entry pending) and deleted at the old.
2. Attributes of files never looked at: from the metadata cache, else fetched now
   (HEADs, ``META_FETCHES`` in flight); if that fails, the copy keeps the object's own
   metadata (``copy_meta``) and the file shows default attributes until it is copied.
3. One journal transaction (``Journal.atomic``, no ``await``): entries move, tombstones
   for the old keys, one for the old directory itself (it hides the old name, and its
   delete waits for everything below). A directory without a marker shows at the new
   path while anything below it is pending (``Journal.pending_child_dirs``).

No request is made after step 2, so a crash leaves either nothing or everything
recorded. Another writer's version that appears at an old key before its delete is
kept (the delete is conditional; a conflict is recorded); one at a new key is kept
under a conflict name before the copy replaces it (``MovedFiles``).
"""

from __future__ import annotations

import errno
import stat
import time
from dataclasses import dataclass

import trio

from .. import attrs as attrs_mod
from .. import keys
from ..backend.base import NotFoundError, ObjectInfo, StoreError
from ..cache.item import RemoteVersion
from ..cache.journal import Entry, Journal, Tombstone
from ..errors import FsError
from ..events import InvalidateInode
from .context import CoreContext, log
from .nodes import Node
from .tree import Tree

META_FETCHES = 16  # HEADs in flight for the attributes of files never looked at


@dataclass
class KeyMove:
    """One key below the old directory and what happens to it."""

    key: str
    path: str  # the mount path it stands for (a directory for a marker)
    kind: int  # S_IFDIR for a marker, else S_IFREG
    etag: str  # as listed
    copy: bool  # a new entry's bytes are this key, copied in the background
    delete_if: str | None  # delete the old key if it still holds this ETag; None: leave it
    size: int = 0


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
    """What to do with each shown key (step 1 of the module docstring)."""
    moves = []
    for o, path, kind in shown:
        is_dir_marker = kind == stat.S_IFDIR
        if (path, stat.S_IFDIR if is_dir_marker else stat.S_IFREG) in dead or \
                (not is_dir_marker and (path, stat.S_IFLNK) in dead):
            continue
        e = entries.get(path)
        if e is not None and (e.kind == stat.S_IFDIR) != is_dir_marker:
            e = None
        if is_dir_marker:
            moves.append(KeyMove(o.key, path, kind, o.etag, copy=False, delete_if=o.etag))
        elif e is not None and (e.copy_from is not None or e.kind != stat.S_IFREG
                                or (e.pending and not e.meta_only)):
            moves.append(KeyMove(o.key, path, kind, o.etag, copy=False, delete_if=e.base_etag, size=o.size))
        else:
            moves.append(KeyMove(o.key, path, kind, o.etag, copy=True, delete_if=o.etag, size=o.size))
    return moves


class DirMoves:
    """Moves a directory's journal entries and nodes; the bucket follows (see above)."""

    def __init__(self, ctx: CoreContext, tree: Tree) -> None:
        self.ctx = ctx
        self.tree = tree

    async def move(self, src: Node, new_path: str, in_bucket: bool, *, only_ours: bool = False) -> None:
        """Move directory ``src`` and everything below it to ``new_path``. ``only_ours``
        (no --allow-delete): every key to move must be one this cache dir created and
        nobody changed (SPEC §6), else EPERM before anything is recorded."""
        old_path = src.path
        moves: list[KeyMove] = []
        if in_bucket:
            objects, online = await self._objects_below(src)
            moves = self._plan(old_path, objects)
            in_bucket = bool(objects)  # else nothing there to move, nor to hide
            if only_ours:
                foreign = [m.key for m in moves if m.delete_if is not None
                           and not self.ctx.journal.created.ours(m.key, m.delete_if)]
                if foreign:
                    raise FsError(errno.EPERM, f"{old_path!r} holds {len(foreign)} object(s) this mount did "
                                               f"not create (e.g. {foreign[0]!r}); renaming it deletes them: "
                                               "mount with --allow-delete")
            if online:
                await self._fetch_attributes([m for m in moves if m.copy])
        changed, tombstoned = self._move_journal(old_path, new_path, moves, in_bucket)
        for path, node in sorted(self.tree.table.by_path.items()):
            if path == old_path or keys.is_below(path, old_path):
                self.tree.table.repath(node, keys.rebase(path, old_path, new_path))
                if node.is_dir:
                    node.listed_at = float("-inf")  # list the new prefix afresh
        for entry_id in changed:
            self.ctx.sink.changed(entry_id)
        for path in tombstoned:
            self.ctx.sink.tombstoned(path)

    # ------------------------------------------------------------ steps 1 and 2

    async def _objects_below(self, src: Node) -> tuple[list[ObjectInfo], bool]:
        """The keys below ``src`` (and whether the bucket said so, or the cache)."""
        try:
            listing = await self.ctx.store.list_all(self.ctx.store.dir_key(src.path), recursive=True)
            return listing.objects, True
        except StoreError as exc:
            known = self.known_below(src)
            if known is None:
                raise FsError(errno.EIO, f"cannot rename {src.path!r} now: the bucket does not answer ({exc}) "
                                         "and the cache has not seen everything below it; try again "
                                         "when the endpoint is back") from exc
            log.info("renaming directory %r with what the cache knows (the bucket does not answer: %s)",
                     src.path, exc)
            return known, False

    def known_below(self, src: Node) -> list[ObjectInfo] | None:
        """The keys below ``src`` the cache knows of, or None if a directory below was never
        listed from the bucket (nor created here): there may be keys it has not seen."""
        store = self.ctx.store
        found: dict[str, ObjectInfo] = {}

        def walk(d: Node) -> bool:
            e = self.tree.entry(d)
            marker = self.ctx.journal.object_meta.latest(store.dir_key(d.path))
            if e is not None and e.base_etag is not None:
                found[store.dir_key(d.path)] = ObjectInfo(store.dir_key(d.path), 0, e.base_etag, 0.0)
            elif e is None and marker is not None and marker[0] != "":  # the marker its listing saw
                found[store.dir_key(d.path)] = ObjectInfo(store.dir_key(d.path), 0, marker[0], 0.0)
            local_only = not d.remote and (e is None or e.base_etag is None)
            if d.children is None or not (d.listed or local_only):
                return False
            for child in d.children.values():
                if child.is_dir:
                    if not walk(child):
                        return False
                    continue
                ce = self.tree.entry(child)
                etag = ce.base_etag if ce is not None else child.etag
                if etag is not None:
                    size = ce.size if ce is not None and not ce.pending else child.size
                    found[store.key(child.path)] = ObjectInfo(store.key(child.path), size, etag,
                                                              child.mtime_ns / 1e9)
            return True

        if not walk(src):
            return None
        return list(found.values())

    def _plan(self, old_path: str, objects: list[ObjectInfo]) -> list[KeyMove]:
        old_prefix = self.ctx.store.dir_key(old_path)
        tombs = self.ctx.journal.tombstones_under(old_path)
        t = self.ctx.journal.tombstone(old_path)
        if t is not None:
            tombs.append(t)
        dead = {(t.path, t.kind) for t in tombs}
        # a key whose delete is pending is gone here: it neither moves nor hides a name (a
        # directory marker still to be deleted must not hide the file that now has its name)
        dead_keys = {self.ctx.store.object_key(t.path, t.kind) for t in tombs}
        shown, hidden = split_listing(old_prefix, old_path, [o for o in objects if o.key not in dead_keys])
        if hidden:
            log.warning("rename of directory %r: %d key(s) below it cannot be shown (e.g. %r) and are left "
                        "in place, so %r stays in the bucket", old_path, len(hidden), hidden[0], old_path)
        entries = {e.path: e for e in self.ctx.journal.under(old_path)}
        top = self.ctx.journal.get(old_path)
        if top is not None:
            entries[old_path] = top
        return plan_moves(shown, entries, dead)

    def _attributes_known(self, m: KeyMove) -> bool:
        node = self.tree.at(m.path)
        if self.ctx.journal.get(m.path) is not None or (node is not None and node.meta_known
                                                         and node.etag == m.etag):
            return True
        latest = self.ctx.journal.object_meta.latest(m.key)
        return latest is not None and latest[0] == m.etag

    async def _fetch_attributes(self, moves: list[KeyMove]) -> None:
        """Step 2: HEAD the files whose attributes are not known (into the metadata cache)."""
        unknown = [m for m in moves if not self._attributes_known(m)]
        if not unknown:
            return
        limiter = trio.CapacityLimiter(META_FETCHES)

        async def fetch(m: KeyMove) -> None:
            async with limiter:
                try:
                    info = await self.ctx.store.head(m.key)
                except (NotFoundError, StoreError) as exc:
                    log.debug("HEAD %r before moving it failed (%s); the copy keeps its metadata", m.key, exc)
                    return
                self.ctx.journal.object_meta.put(info.key, info.etag, info.last_modified, info.metadata)

        async with trio.open_nursery() as nursery:
            for m in unknown:
                nursery.start_soon(fetch, m)

    # ------------------------------------------------------------ step 3

    def _move_journal(self, old_path: str, new_path: str, moves: list[KeyMove],
                      in_bucket: bool) -> tuple[list[int], list[str]]:
        """Step 3; returns the entries to upload and the tombstones to carry out."""
        journal = self.ctx.journal
        changed: list[int] = []
        tombstoned: list[str] = []
        files = {m.path: m for m in moves if m.kind != stat.S_IFDIR}
        markers = {m.path: m for m in moves if m.kind == stat.S_IFDIR}
        with journal.atomic():
            top = journal.get(old_path)
            entries = journal.under(old_path) + ([top] if top is not None else [])
            have = {e.path for e in entries}
            for e in entries:
                assert e.id is not None  # rows read from the journal always have one
                dst_base = self._take_over_target(keys.rebase(e.path, old_path, new_path), e.kind)
                if e.kind == stat.S_IFDIR:
                    if e.path in markers or e.pending:
                        self.ctx.items.move(e.id, dst_base)  # its marker goes up at the new path
                        changed.append(e.id)
                    elif in_bucket:
                        self.tree.drop_entry(e)  # its marker is gone from the bucket
                    continue
                m = files.get(e.path)
                if m is not None and m.copy:
                    self._copy_later(e, m, dst_base)
                    changed.append(e.id)
                elif e.copy_from is not None:  # renamed before: its bytes stay where they are
                    back_home(self.ctx.journal, e, keys.rebase(e.path, old_path, new_path), dst_base)
                    changed.append(e.id)
                elif e.state.local_wins and (e.complete or not e.meta_only):
                    self.ctx.items.move(e.id, dst_base)  # local content: uploaded as a new key
                    changed.append(e.id)
                elif m is not None:  # a symlink or special file: put again at the new path
                    self.ctx.items.move(e.id, dst_base)
                    changed.append(e.id)
                else:  # clean (or only a metadata change, bytes not cached), and gone from the bucket
                    self.tree.drop_entry(e)
            for m in files.values():
                if m.copy and m.path not in have:
                    e = self._new_copy_entry(
                        m, self._take_over_target(keys.rebase(m.path, old_path, new_path), stat.S_IFREG))
                    assert e.id is not None  # saved
                    changed.append(e.id)
            changed += self._marker_entries(markers, have, old_path, new_path)
            for m in moves:
                if m.delete_if is not None:
                    journal.add_tombstone(Tombstone(m.path, m.kind, m.delete_if, time.time()))
                    tombstoned.append(m.path)
            if tombstoned and journal.tombstone(old_path) is None:
                # hides the old name until every key below is gone; deletes a marker if any
                journal.add_tombstone(Tombstone(old_path, stat.S_IFDIR, None, time.time()))
                tombstoned.append(old_path)
            journal.rename_subtree(old_path, new_path)
        return changed, tombstoned

    def _take_over_target(self, dst_path: str, kind: int) -> str | None:
        """A tombstone at the new path (an object deleted there, not yet in the bucket):
        the moved entry replaces that object instead. Returns its ETag (the new base)."""
        return self.ctx.journal.take_tombstone(dst_path, kind)

    def _copy_later(self, e: Entry, m: KeyMove, dst_base: str | None) -> None:
        """A file whose bytes are key ``m.key``: they are copied to the new key later."""
        assert e.id is not None  # a row read from the journal
        if e.base_etag != m.etag:  # the bucket has another version than the cached one: that one moves
            self.ctx.items.reset_to(e.id, RemoteVersion(m.etag, None, m.size))
            node = self.tree.at(e.path)
            if node is not None and node.entry_id == e.id:
                node.etag, node.size, node.meta_known = m.etag, m.size, False
                node.content_version += 1
                self.ctx.events.publish(InvalidateInode(node.ino))
            log.info("%r changed in the bucket before it was moved; the moved file is that version", e.path)
        self.ctx.journal.update(e.id, base_etag=dst_base, base_version=None, copy_from=e.path, copy_etag=m.etag)
        now = self.ctx.journal.get_by_id(e.id)
        if now is not None and not now.pending:
            self.ctx.items.mark_changed(e.id, meta_only=True)

    def _new_copy_entry(self, m: KeyMove, dst_base: str | None) -> Entry:
        """An entry (still at the old path) for a file the cache holds nothing of."""
        node = self.tree.at(m.path)
        dflt = self.ctx.opt.defaults
        e = Entry(path=m.path, kind=stat.S_IFREG, mode=dflt.file_mode, uid=dflt.uid, gid=dflt.gid,
                  mtime_ns=node.mtime_ns if node is not None else time.time_ns(), size=m.size,
                  base_etag=dst_base, complete=m.size == 0, last_used=time.time(),
                  copy_from=m.path, copy_etag=m.etag)
        latest = self.ctx.journal.object_meta.latest(m.key)
        if node is not None and node.meta_known and node.etag == m.etag and node.kind != stat.S_IFREG:
            # a symlink, FIFO, socket or device known as such: put again at the new key
            e.kind, e.target, e.rdev, e.copy_from, e.copy_etag = node.kind, node.target, node.rdev, None, None
            e.mode, e.uid, e.gid, e.mtime_ns, e.complete = node.mode, node.uid, node.gid, node.mtime_ns, True
        elif node is not None and node.meta_known and node.etag == m.etag:
            e.mode, e.uid, e.gid, e.mtime_ns = node.mode, node.uid, node.gid, node.mtime_ns
        elif latest is not None and latest[0] == m.etag and \
                attrs_mod.kind_from_metadata(latest[2].metadata) == stat.S_IFREG:
            a = attrs_mod.from_metadata(latest[2].metadata, stat.S_IFREG, float(latest[1]), dflt)
            e.mode, e.uid, e.gid, e.mtime_ns = a.mode, a.uid, a.gid, a.mtime_ns
        else:
            e.copy_meta = True  # not known (or not a regular file): the copy keeps the object's metadata
        self.ctx.journal.save(e)
        self.ctx.items.mark_changed(e.saved_id, meta_only=e.copy_from is not None)
        if node is not None and node.kind == e.kind:
            node.entry_id = e.id
            node.etag = dst_base
            if not e.copy_meta:
                node.mode, node.uid, node.gid, node.mtime_ns = e.mode, e.uid, e.gid, e.mtime_ns
                node.meta_known = True
        return e

    def _marker_entries(self, markers: dict[str, KeyMove], have: set[str], old_path: str,
                        new_path: str) -> list[int]:
        """A pending entry for each directory marker without an entry: the marker goes up
        at the new path. (A directory without a marker shows at the new path while
        anything below it is pending: ``Journal.pending_child_dirs``.)"""
        dflt = self.ctx.opt.defaults
        pending = []
        for d in sorted(set(markers) - have):
            node = self.tree.at(d)
            e = Entry(path=d, kind=stat.S_IFDIR, mode=node.mode if node is not None else dflt.dir_mode,
                      uid=node.uid if node is not None else dflt.uid,
                      gid=node.gid if node is not None else dflt.gid,
                      mtime_ns=node.mtime_ns if node is not None else time.time_ns(), complete=True,
                      last_used=time.time(),
                      base_etag=self._take_over_target(keys.rebase(d, old_path, new_path), stat.S_IFDIR))
            self.ctx.journal.save(e)
            self.ctx.items.mark_changed(e.saved_id)
            pending.append(e.saved_id)
            if node is not None and node.is_dir:
                node.entry_id = e.id
        return pending


def back_home(journal: Journal, e: Entry, new_path: str, dst_base: str | None) -> None:
    """Renamed file ``e`` (its bytes are object ``copy_from``) moves to ``new_path`` with
    base ``dst_base``. Back where its bytes are, it has nothing to copy: when the move
    away was its one pending change, it is clean again."""
    assert e.id is not None  # a row read from the journal
    if (e.copy_from, e.copy_etag) != (new_path, dst_base):
        journal.update(e.id, base_etag=dst_base, base_version=None)
        return
    only_renamed = e.dirty_gen == e.uploaded_gen + 1
    journal.update(e.id, base_etag=dst_base, copy_from=None, copy_etag=None, copy_meta=0)
    if only_renamed:  # its one pending change was the move away: clean again
        journal.update(e.id, uploaded_gen=e.dirty_gen, meta_only=0)
