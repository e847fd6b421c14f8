"""Carrying out conflict decisions (SPEC §7). The decisions themselves are pure
(``mountsync.conflict_rules``); this module does the I/O around them.

A conflict is detected by the server (412 on a conditional PUT, complete or
delete, or 404 on ``If-Match`` when the object was deleted) or, on servers
that ignore conditional headers, by a HEAD just before the upload.

What each outcome does to the journal (the core learns it from events):

- keep-both: the local entry *moves* to the conflict name (``EntryMoved``);
  its pending upload then goes there with ``If-None-Match``. The original
  name becomes a clean view of the bucket's version.
- local wins: the bucket's version is first copied into the recovery folder,
  then the entry's base becomes the bucket's ETag and the upload is retried.
- remote wins: the local bytes are first copied into the recovery folder,
  then the entry is reset to the bucket's version (``EntryReset``).
- manual: the edit stays pending and is not uploaded until resolved.

Recovery files are named by conflict id (``recovery/<id>-local``), never by
key; the conflicts table maps them to the original path. Every conflict is
recorded in the journal and logged at WARNING.

``ConflictCopies`` is the one place that names, records and writes conflict
copies, for the uploader (through ``ConflictHandler``) and for renames (the
core): a name is free when neither the journal, the bucket nor an earlier
choice of this process has it, and a copy written by the bucket is conditional
on the name being free (``If-None-Match``, plus a HEAD first for servers that
ignore it), so two conflicts in the same second never overwrite each other.
A local edit moved to a conflict name is uploaded with ``If-None-Match`` like
any new key.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import time

import trio

from .. import keys
from ..backend.base import ObjectInfo, PreconditionFailedError, TransientError
from ..backend.bucket import Bucket
from ..cache.fetch import fetch_chunks
from ..cache.item import Items, RemoteVersion
from ..cache.journal import Conflict, Entry, Journal
from ..conflict_rules import conflict_name, decide, strip_conflict_suffix
from ..events import EntryMoved, EntryReset, EventBus, PathChanged

log = logging.getLogger("mountsync.conflict")


class ResolvedElsewhere(Exception):
    """The upload is not to be committed: the entry moved, was reset or waits for the user.

    ``requeue``: the entry still has a pending upload to do now (keep-both)."""

    def __init__(self, requeue: bool, manual: bool = False) -> None:
        super().__init__("resolved by conflict handling")
        self.requeue = requeue
        self.manual = manual


class ConflictCopies:
    """Names, records and writes conflict copies (see the module docstring).

    ``reserved`` holds every conflict path this process chose (never reused, even if
    the copy failed); all state is touched on the trio thread only."""

    def __init__(self, store: Bucket, journal: Journal, *, host: str | None = None) -> None:
        self.store = store
        self.journal = journal
        self.host = host or socket.gethostname()
        self.reserved: set[str] = set()

    async def free_path(self, path: str) -> str:
        """A conflict name for ``path`` (named after the original, for a conflict copy)
        that is in neither the journal nor the bucket nor reserved; it is reserved."""
        parent, name = keys.parent_of(path), keys.name_of(path)
        original = strip_conflict_suffix(name)
        stem_prefix = self.store.dir_key(parent) + original.split(".")[0]
        taken = {keys.name_of(x.path) for x in self.journal.children(parent)}
        taken.update(keys.name_of(p) for p in self.reserved if keys.parent_of(p) == parent)
        taken.update(keys.name_of(o.key) for o in (await self.store.list_all(stem_prefix)).objects)
        chosen = keys.join(parent, conflict_name(original, time.time(), self.host, taken))
        self.reserved.add(chosen)
        return chosen

    def record(self, c: Conflict, message: str, *args: object) -> Conflict:
        """Add ``c`` to the conflicts table and log ``message`` at WARNING."""
        self.journal.add_conflict(c)
        log.warning(message, *args)
        return c

    async def keep_remote_version(self, path: str, etag: str, *, seen_etag: str | None, local_to: str) -> str:
        """The bucket holds a version ``etag`` at ``path`` that is about to be replaced
        although the mount never showed it (another writer's): copy it server-side to a
        free conflict name, conditional on the source still being ``etag`` and on the
        name being free, and record the conflict. Returns the conflict path.
        PreconditionFailedError / NotFoundError: the source changed meanwhile."""
        key = self.store.key(path)
        for _attempt in range(5):
            cpath = await self.free_path(path)
            ckey = self.store.key(cpath)
            if await self._exists(ckey):
                continue
            try:
                await self.store.copy(key, ckey, None, if_match=etag, if_none_match=True)
            except PreconditionFailedError:
                if await self._exists(ckey):
                    continue  # the name was taken after all: the next one
                raise
            self.record(Conflict(time=time.time(), path=path, kind="modified", strategy="keep-both",
                                 local_etag=seen_etag, remote_etag=etag, local_to=local_to,
                                 remote_to=f"bucket:{ckey}", resolved=1),
                        "conflict on %r: %s would replace a version changed in the bucket (%s); that "
                        "version is kept as %r", path, local_to, etag, cpath)
            return cpath
        raise TransientError(f"no free conflict name for {path!r}; will try again")

    async def _exists(self, key: str) -> bool:
        return await self.store.head_or_none(key) is not None


class ConflictHandler:
    def __init__(self, store: Bucket, journal: Journal, items: Items, events: EventBus, *,
                 strategy: str, recovery_dir: str, host: str | None = None,
                 copies: ConflictCopies | None = None) -> None:
        self.store = store
        self.journal = journal
        self.items = items
        self.events = events
        self.strategy = strategy
        self.recovery_dir = recovery_dir
        self.copies = copies or ConflictCopies(store, journal, host=host)
        self.overrides: dict[int, str] = {}  # entry id → strategy chosen by 'mountsync resolve'
        os.makedirs(recovery_dir, mode=0o700, exist_ok=True)

    # ------------------------------------------------------------ uploads

    async def on_upload_conflict(self, e: Entry, snapshot: str | None, strategy: str | None = None) -> str:
        """The bucket changed under the local edit of ``e``. Returns the ETag to retry the
        upload against (local wins), or raises ResolvedElsewhere."""
        entry_id = e.saved_id
        strategy = strategy or self.overrides.pop(entry_id, None) or self.strategy
        key = self.store.key(e.path)
        remote = await self.store.head_or_none(key)
        if remote is not None and remote.etag == e.base_etag:
            return remote.etag  # the condition failed for another reason: just retry
        remote_mtime = _mtime_ns(remote) if remote is not None else None
        res = decide(strategy, e.mtime_ns, remote_mtime, remote is not None)
        kind = "modified" if remote is not None else "deleted-remotely"
        existing = self.journal.open_conflict(e.path)
        if res.keep_pending:
            if existing is None or existing.kind != kind:
                self._record(e, kind, strategy, remote, local_to="pending (manual)",
                             remote_to=f"bucket:{key}" if remote else "deleted")
            raise ResolvedElsewhere(requeue=False, manual=True)
        if existing is not None and existing.strategy == "manual":
            self.journal.update_conflict(existing.saved_id, resolved=1)
        if remote is None:
            self._record(e, kind, strategy, None, local_to=f"bucket:{key}", remote_to="deleted")
            self.journal.update(entry_id, base_etag=None, base_version=None)
            raise ResolvedElsewhere(requeue=True)
        if res.upload_local_as == "conflict-name":
            new_path = await self.copies.free_path(e.path)
            self._record(e, kind, strategy, remote, local_to=f"bucket:{self.store.key(new_path)}",
                         remote_to=f"bucket:{key}")
            old = e.path
            self.journal.rename_subtree(old, new_path)
            self.items.move(entry_id, None)
            self.events.publish(EntryMoved(entry_id, old, new_path))
            raise ResolvedElsewhere(requeue=True)
        if res.upload_local_as == "original":
            c = self._record(e, kind, strategy, remote, local_to=f"bucket:{key}", remote_to="recovery")
            dest = await self._recover_remote(c, key, remote)
            self.journal.update_conflict(c.saved_id, remote_to=f"recovery:{dest}")
            self.journal.update(entry_id, base_etag=remote.etag, base_version=remote.version_id)
            return remote.etag
        # remote wins
        c = self._record(e, kind, strategy, remote, local_to="recovery", remote_to=f"bucket:{key}")
        dest = await self._recover_local(c, e)
        self.journal.update_conflict(c.saved_id, local_to=f"recovery:{dest}")
        self.reset_to_remote(e, remote)
        raise ResolvedElsewhere(requeue=False)

    def meta_change_lost(self, e: Entry, remote: ObjectInfo) -> None:
        """A metadata-only change met a newer remote version: the bucket's version wins
        (the local side had no content change to keep)."""
        self._record(e, "modified", self.strategy, remote, local_to="metadata change dropped",
                     remote_to=f"bucket:{self.store.key(e.path)}")
        self.reset_to_remote(e, remote)

    def reset_to_remote(self, e: Entry, remote: ObjectInfo) -> None:
        """Forget the local version of ``e``: the entry becomes a clean view of ``remote``."""
        entry_id = e.saved_id
        self.items.reset_to(entry_id, RemoteVersion(remote.etag, remote.version_id, remote.size),
                            mtime_ns=_mtime_ns(remote) or e.mtime_ns)
        self.events.publish(EntryReset(entry_id, e.path))

    def _record(self, e: Entry, kind: str, strategy: str, remote: ObjectInfo | None, *,
                local_to: str, remote_to: str) -> Conflict:
        c = Conflict(time=time.time(), path=e.path, kind=kind, strategy=strategy,
                     local_etag=e.base_etag, remote_etag=remote.etag if remote else None,
                     local_to=local_to, remote_to=remote_to,
                     resolved=0 if local_to.startswith("pending") else 1)
        return self.copies.record(
            c, "conflict on %r (%s): local edit based on %s, bucket has %s; %s: local → %s, bucket → %s",
            e.path, kind, e.base_etag or "nothing", remote.etag if remote else "nothing", strategy, local_to,
            remote_to)

    async def _recover_remote(self, c: Conflict, key: str, remote: ObjectInfo) -> str:
        dest = os.path.join(self.recovery_dir, f"{c.saved_id}-remote")
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:  # in bounded chunks, like every download (cache.fetch): never whole in memory
            await fetch_chunks(self.store, key, remote.etag, [(0, remote.size)], lambda b, at: os.pwrite(fd, b, at))
        except BaseException:
            os.unlink(dest)  # no partial copy is left behind; the retry starts afresh
            raise
        finally:
            os.close(fd)
        return dest

    async def _recover_local(self, c: Conflict, e: Entry) -> str:
        dest = os.path.join(self.recovery_dir, f"{c.saved_id}-local")
        if e.kind == stat.S_IFLNK:
            await trio.to_thread.run_sync(_write_private, dest, (e.target or "").encode())
            return dest
        await self.items.copy_to(e.saved_id, dest)
        return dest

    # ------------------------------------------------------------ deletes

    def on_delete_refused(self, path: str, base_etag: str | None, remote_etag: str | None) -> None:
        """A local delete met a newer remote version: keep it, show it again, record it."""
        c = Conflict(time=time.time(), path=path, kind="delete-refused", strategy=self.strategy,
                     local_etag=base_etag, remote_etag=remote_etag, local_to="deleted locally",
                     remote_to=f"bucket:{self.store.key(path)}", resolved=1)
        self.copies.record(c, "conflict on %r: deleted here but changed in the bucket (%s → %s); the "
                              "bucket's version is kept and shown again", path, base_etag, remote_etag)
        self.journal.remove_tombstone(path)
        self.events.publish(PathChanged(path))


def _mtime_ns(info: ObjectInfo | None) -> int | None:
    if info is None:
        return None
    from ..attrs import Defaults, from_metadata

    return from_metadata(info.metadata, stat.S_IFREG, info.last_modified, Defaults(0, 0, 0o644, 0o755)).mtime_ns


def _write_private(path: str, body: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(body)
