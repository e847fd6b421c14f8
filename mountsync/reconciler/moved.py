"""Carrying a renamed file's bytes to its new key (the background half of a rename).

A rename of a file whose bytes are in the bucket (``core.rename``) only moves its
journal entry and records where the bytes are: ``copy_from`` (a mount path) and
``copy_etag``. ``MovedFiles.copy`` makes that true in the bucket:

1. HEAD the new key. A version there the mount never showed (another writer's,
   not the entry's base) is first kept under a conflict name (SPEC §7), unless it
   holds the very bytes being copied (same ETag): replacing it loses nothing.
2. Server-side copy ``copy_from`` → new key, conditional on ``copy_etag`` (and on
   the new key still being free when it was), with the entry's attributes.
3. The uploader commits it like any upload (``Items.record_upload`` clears
   ``copy_from``); the old key's tombstone, which ``Journal.copy_pending_from``
   held back, may then be carried out.

If the source no longer holds ``copy_etag`` (another writer changed or deleted it
before the copy), the bytes the user renamed are gone from the bucket: when the
cache holds all of them they are uploaded instead (a data upload); otherwise the
rename cannot be completed, the entry is dropped (the new name shows what the
bucket has there) and a conflict is recorded; the other writer's version stays
under the old name (the tombstone's conditional delete fails). Nothing anyone
wrote after the rename is lost.

Trio thread only, like the uploader that calls it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from ..backend.base import NotFoundError, ObjectInfo, PreconditionFailedError, PutResult
from ..backend.bucket import Bucket
from ..cache.item import Items
from ..cache.journal import Conflict, Entry, Journal
from ..events import EntryReset, PathChanged
from .conflict import ConflictHandler, ResolvedElsewhere

log = logging.getLogger("mountsync.reconciler")

# (entry, source key, new key, metadata or None to keep the source's, if-none-match) → result
PartCopier = Callable[[Entry, str, str, "dict[str, str] | None", bool], Awaitable[PutResult]]


class MovedFiles:
    def __init__(self, store: Bucket, journal: Journal, items: Items, conflicts: ConflictHandler) -> None:
        self.store = store
        self.journal = journal
        self.items = items
        self.conflicts = conflicts

    async def copy(self, e: Entry, key: str, metadata: dict[str, str] | None,
                   in_parts: PartCopier | None = None) -> PutResult:
        """Steps 1-2 of the module docstring for entry ``e`` (``copy_from`` set) at ``key``
        (``in_parts``: how a file too large for one CopyObject is copied). Raises
        ResolvedElsewhere when the source changed (see the module docstring)."""
        assert e.copy_from is not None
        src_key = self.store.key(e.copy_from)
        current = await self.store.head_or_none(key)
        if current is not None and current.etag not in (e.base_etag, e.copy_etag):
            # (a version with the very bytes being copied there loses nothing when replaced)
            await self.conflicts.copies.keep_remote_version(
                e.path, current.etag, seen_etag=e.base_etag, local_to=f"bucket:{key} (renamed over it)")
        try:
            if in_parts is not None:
                return await in_parts(e, src_key, key, metadata, current is None)
            return await self.store.copy_if_match(src_key, key, e.copy_etag, metadata,
                                                  if_none_match=current is None)
        except (PreconditionFailedError, NotFoundError):
            source = await self.store.head_or_none(src_key)
            if source is not None and source.etag == e.copy_etag:
                raise  # the new key changed meanwhile: the uploader retries later
            self._source_lost(e, source)
            raise ResolvedElsewhere(requeue=self.journal.get_by_id(e.saved_id) is not None) from None

    def _source_lost(self, e: Entry, source: ObjectInfo | None) -> None:
        entry_id = e.saved_id
        now = self.journal.get_by_id(entry_id)
        if now is None:
            return
        if self.items.complete_if_whole(entry_id):
            # the cache holds the bytes the user renamed: upload them instead of copying
            self.journal.update(entry_id, copy_from=None, copy_etag=None)
            self.items.mark_changed(entry_id)
            log.info("%r changed in the bucket before its rename to %r was copied; uploading the cached "
                     "bytes instead", e.copy_from, e.path)
            return
        self.conflicts.copies.record(
            Conflict(time=time.time(), path=e.path, kind="rename-source-changed", strategy="keep-both",
                     local_etag=e.copy_etag, remote_etag=source.etag if source else None,
                     local_to="lost: not cached, replaced in the bucket before the rename reached it",
                     remote_to=f"bucket:{self.store.key(e.copy_from or '')}", resolved=1),
            "conflict on %r: renamed from %r, but another writer changed or deleted %r before the rename "
            "reached the bucket; its version stays there and the rename is undone", e.path, e.copy_from,
            e.copy_from)
        self.journal.delete(entry_id)
        self.items.drop_if_closed(entry_id)
        self.conflicts.events.publish(PathChanged(e.path))
        if e.copy_from is not None:
            self.conflicts.events.publish(PathChanged(e.copy_from))

    def attributes_from_object(self, entry_id: int) -> None:
        """A copy that kept the object's own metadata (``copy_meta``: the entry's attributes
        were defaults, not known when it was moved) is done: the entry, clean now, goes
        (the bucket holds its bytes; cached ranges go too), so that the next lookup takes
        the attributes from the object."""
        now = self.journal.get_by_id(entry_id)
        if now is None or now.pending:
            return
        self.journal.delete(entry_id)
        self.items.drop_if_closed(entry_id)
        self.conflicts.events.publish(EntryReset(entry_id, now.path))
