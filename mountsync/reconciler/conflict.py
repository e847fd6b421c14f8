"""Carrying out conflict decisions (SPEC §7). The decisions themselves are pure
(``mountsync.conflicts``); this module does the I/O around them.

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
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import time

import trio

from .. import keys
from ..backend.aio import AsyncStore
from ..backend.base import NotFoundError, ObjectInfo
from ..cache.datafiles import DataStore
from ..cache.fetch import fetch_chunks
from ..cache.journal import Conflict, Entry, Journal
from ..conflicts import conflict_name, decide, strip_conflict_suffix
from ..events import EntryMoved, EntryReset, EventBus, PathChanged

log = logging.getLogger("mountsync.conflict")


class ResolvedElsewhere(Exception):
    """The upload is not to be committed: the entry moved, was reset or waits for the user.

    ``requeue``: the entry still has a pending upload to do now (keep-both)."""

    def __init__(self, requeue: bool, manual: bool = False) -> None:
        super().__init__("resolved by conflict handling")
        self.requeue = requeue
        self.manual = manual


class ConflictHandler:
    def __init__(self, store: AsyncStore, journal: Journal, data: DataStore, events: EventBus, *,
                 prefix: str, strategy: str, recovery_dir: str, host: str | None = None) -> None:
        self.store = store
        self.journal = journal
        self.data = data
        self.events = events
        self.prefix = prefix
        self.strategy = strategy
        self.recovery_dir = recovery_dir
        self.host = host or socket.gethostname()
        self.overrides: dict[int, str] = {}  # entry id → strategy chosen by 'mountsync resolve'
        os.makedirs(recovery_dir, mode=0o700, exist_ok=True)

    # ------------------------------------------------------------ uploads

    async def on_upload_conflict(self, e: Entry, snapshot: str | None, strategy: str | None = None) -> str:
        """The bucket changed under the local edit of ``e``. Returns the ETag to retry the
        upload against (local wins), or raises ResolvedElsewhere."""
        strategy = strategy or self.overrides.pop(e.id, None) or self.strategy
        key = self.prefix + e.path
        try:
            remote = await self.store.head(key)
        except NotFoundError:
            remote = None
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
            self.journal.update_conflict(existing.id, resolved=1)
        if remote is None:
            self._record(e, kind, strategy, None, local_to=f"bucket:{key}", remote_to="deleted")
            self.journal.update(e.id, base_etag=None, base_version=None)
            raise ResolvedElsewhere(requeue=True)
        if res.upload_local_as == "conflict-name":
            new_path = await self._free_conflict_path(e.path)
            self._record(e, kind, strategy, remote, local_to=f"bucket:{self.prefix + new_path}",
                         remote_to=f"bucket:{key}")
            old = e.path
            self.journal.rename_subtree(old, new_path)
            self.journal.update(e.id, base_etag=None, base_version=None, meta_only=0)
            self.journal.bump_dirty(e.id)
            self.events.publish(EntryMoved(e.id, old, new_path))
            raise ResolvedElsewhere(requeue=True)
        if res.upload_local_as == "original":
            c = self._record(e, kind, strategy, remote, local_to=f"bucket:{key}", remote_to="recovery")
            dest = await self._recover_remote(c, key, remote)
            self.journal.update_conflict(c.id, remote_to=f"recovery:{dest}")
            self.journal.update(e.id, base_etag=remote.etag, base_version=remote.version_id)
            return remote.etag
        # remote wins
        c = self._record(e, kind, strategy, remote, local_to="recovery", remote_to=f"bucket:{key}")
        dest = await self._recover_local(c, e)
        self.journal.update_conflict(c.id, local_to=f"recovery:{dest}")
        self.reset_to_remote(e, remote)
        raise ResolvedElsewhere(requeue=False)

    def meta_change_lost(self, e: Entry, remote: ObjectInfo) -> None:
        """A metadata-only change met a newer remote version: the bucket's version wins
        (the local side had no content change to keep)."""
        self._record(e, "modified", self.strategy, remote, local_to="metadata change dropped",
                     remote_to=f"bucket:{self.prefix + e.path}")
        self.reset_to_remote(e, remote)

    def reset_to_remote(self, e: Entry, remote: ObjectInfo) -> None:
        """Forget the local version of ``e``: the entry becomes a clean view of ``remote``."""
        cf = self.data.peek(e.id)
        if cf is not None:
            cf.discard()
        else:
            self.data.remove(e.id)
        fresh = self.journal.get_by_id(e.id)
        self.journal.update(e.id, base_etag=remote.etag, base_version=remote.version_id,
                            uploaded_gen=fresh.dirty_gen if fresh else e.dirty_gen, meta_only=0,
                            size=remote.size, complete=int(remote.size == 0), ranges=[],
                            mtime_ns=_mtime_ns(remote) or e.mtime_ns, error=None, attempts=0)
        self.events.publish(EntryReset(e.id, e.path))

    async def _free_conflict_path(self, path: str) -> str:
        parent, name = keys.parent_of(path), keys.name_of(path)
        original = strip_conflict_suffix(name)
        stem_prefix = keys.dir_key(self.prefix, parent) + original.split(".")[0]
        taken = {keys.name_of(x.path) for x in self.journal.children(parent)}
        token = None
        while True:
            page = await self.store.list_page(stem_prefix, "/", token)
            taken.update(keys.name_of(o.key) for o in page.objects)
            token = page.next_token
            if not token:
                break
        return keys.join(parent, conflict_name(original, time.time(), self.host, taken))

    def _record(self, e: Entry, kind: str, strategy: str, remote: ObjectInfo | None, *,
                local_to: str, remote_to: str) -> Conflict:
        c = Conflict(time=time.time(), path=e.path, kind=kind, strategy=strategy,
                     local_etag=e.base_etag, remote_etag=remote.etag if remote else None,
                     local_to=local_to, remote_to=remote_to,
                     resolved=0 if local_to.startswith("pending") else 1)
        self.journal.add_conflict(c)
        log.warning("conflict on %r (%s): local edit based on %s, bucket has %s; %s: local → %s, bucket → %s",
                    e.path, kind, e.base_etag or "nothing", remote.etag if remote else "nothing",
                    strategy, local_to, remote_to)
        return c

    async def _recover_remote(self, c: Conflict, key: str, remote: ObjectInfo) -> str:
        dest = os.path.join(self.recovery_dir, f"{c.id}-remote")
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
        dest = os.path.join(self.recovery_dir, f"{c.id}-local")
        if e.kind == stat.S_IFLNK:
            await trio.to_thread.run_sync(_write_private, dest, (e.target or "").encode())
            return dest
        cf = self.data.acquire(e.id)
        try:
            await cf.snapshot(dest, lambda: 0)
        finally:
            self.data.release(cf)
        return dest

    # ------------------------------------------------------------ deletes

    def on_delete_refused(self, path: str, base_etag: str | None, remote_etag: str | None) -> None:
        """A local delete met a newer remote version: keep it, show it again, record it."""
        c = Conflict(time=time.time(), path=path, kind="delete-refused", strategy=self.strategy,
                     local_etag=base_etag, remote_etag=remote_etag, local_to="deleted locally",
                     remote_to=f"bucket:{self.prefix + path}", resolved=1)
        self.journal.add_conflict(c)
        log.warning("conflict on %r: deleted here but changed in the bucket (%s → %s); the bucket's "
                    "version is kept and shown again", path, base_etag, remote_etag)
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
