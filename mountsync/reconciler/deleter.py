"""Carrying out tombstones: the deletes of the reconciler (SPEC §6).

A tombstone's delete is conditional on the version the mount last knew at that key
(``base_etag``): a key that holds another version was changed by another writer, and the
delete is refused as a conflict (``ConflictHandler.on_delete_refused``) — unless that
version is our own upload whose answer was lost (``Creations.was_unanswered``). A
tombstone whose key is still the source of a pending rename copy waits for it
(``CopyPending``), and a moved directory's marker waits for every key below it.

Trio thread only; requests go through ``Bucket``.
"""

from __future__ import annotations

import logging
import stat
import time

from ..backend.base import NotFoundError, PreconditionFailedError
from ..backend.bucket import Bucket
from ..cache.journal import Journal
from ..events import PathChanged
from ..logs import Transfer, transfer_fields, transfer_message
from .conflict import ConflictHandler

log = logging.getLogger("mountsync.reconciler")


class CopyPending(Exception):
    """The object a tombstone deletes (or an upload replaces) is still the source of a
    renamed file's copy (entry ``entry_id``): that copy goes first. ``None``: a directory
    marker's delete that waits for the deletes and copies of the keys below it."""

    def __init__(self, entry_id: int | None) -> None:
        super().__init__(entry_id)
        self.entry_id = entry_id




def log_transfer(t: Transfer, seconds: float, attempt: int) -> None:
    """The one INFO line for a transfer that reached the bucket (``logs``)."""
    log.info(transfer_message(t, seconds, attempt), extra=transfer_fields(t, seconds, attempt))


class Deleter:
    def __init__(self, store: Bucket, journal: Journal, conflicts: ConflictHandler) -> None:
        self.store = store
        self.journal = journal
        self.conflicts = conflicts

    async def _sweep_markers_below(self, path: str) -> None:
        """A directory gone here (removed or moved away; nothing of it in the journal) may
        leave directory markers below it in the bucket whose own deletes could not be
        recorded (one tombstone per path: a file that took a marker's name took its row):
        they hold no content, and left behind they would bring the directory back."""
        if self.journal.get(path) is not None or self.journal.under(path):
            return
        listing = await self.store.list_all(self.store.dir_key(path), recursive=True)
        own = self.store.dir_key(path)
        for o in listing.objects:
            if o.key.endswith("/") and o.key != own and o.size == 0:
                try:
                    await self.store.delete_if_match(o.key, o.etag)
                except (PreconditionFailedError, NotFoundError):
                    continue  # changed or gone meanwhile: not ours to decide
                log_transfer(Transfer("delete", o.key), 0.0, 1)

    async def _delete_own_landed(self, key: str, etag: str) -> bool:
        """A delete refused because ``key`` holds version ``etag``: if that is our own upload
        whose answer was lost (``_send`` recorded it), it is the version the tombstone is
        about, so delete it (conditionally) and return True; else False (a conflict)."""
        if not self.journal.created.was_unanswered(key, etag):
            return False
        log.info("%r holds an upload of ours whose answer was lost: deleting it", key)
        try:
            await self.store.delete_if_match(key, etag)
        except PreconditionFailedError:
            return False
        except NotFoundError:
            pass
        return True

    async def delete(self, path: str) -> None:
        """Carry out the tombstone at ``path`` (conditional on its base ETag when known)."""
        t = self.journal.tombstone(path)
        if t is None:
            return
        waiting_for = self.journal.copy_pending_from(t.path, t.base_etag)
        if waiting_for is not None:
            raise CopyPending(waiting_for)
        if t.kind == stat.S_IFDIR and (self.journal.tombstones_under(t.path) or self.journal.copies_from_under(t.path)):
            raise CopyPending(None)  # a moved directory: its old name stays hidden until its keys are gone
        key = self.store.object_key(t.path, t.kind)
        started = time.monotonic()
        if t.kind == stat.S_IFDIR:
            await self._sweep_markers_below(t.path)
        try:
            await self.store.delete_if_match(key, t.base_etag)
        except PreconditionFailedError:
            remote = await self.store.head_or_none(key)
            if remote is None or not await self._delete_own_landed(key, remote.etag):
                self.conflicts.on_delete_refused(t.path, t.base_etag, remote.etag if remote else None)
                return
        except NotFoundError:
            pass
        self.journal.created.forget(key)
        log_transfer(Transfer("delete", key), time.monotonic() - started, t.attempts + 1)
        if (now := self.journal.tombstone(path)) is not None and now.created == t.created:
            self.journal.remove_tombstone(path)
            if t.kind == stat.S_IFDIR:  # keys may remain below it (deletes refused): list again
                self.conflicts.events.publish(PathChanged(path))
