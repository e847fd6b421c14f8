"""Carrying one journal item to the bucket: an entry's upload or a tombstone's delete.

An upload sends a *snapshot*: the cache file is copied under its snapshot gate
(see ``cache.datafiles``) and the copy is uploaded, so the object is always a
state the file really had. Uploads are conditional on the entry's base:
``If-Match: base`` when the key existed, ``If-None-Match: *`` when it did
not. Large files go up as multipart uploads with parts in parallel; every
upload id is recorded in the journal (``multipart_uploads``) before its first
part and forgotten only after Complete or a successful Abort, so none leaks:
failed aborts are retried by the reconciler, also after a restart.

Outcomes are exceptions the reconciler maps to retry decisions:
``StoreError`` with ``transient`` (retry later), ``ConflictError`` (the
bucket changed under the local edit), other ``StoreError`` (stop the item).
"""

from __future__ import annotations

import functools
import logging
import os
import stat
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from .. import attrs as attrs_mod
from ..backend.base import (
    Body,
    NotFoundError,
    ObjectInfo,
    PreconditionFailedError,
    PutResult,
    StoreError,
    TransientError,
    UnreachableError,
    first_store_error,
)
from ..backend.bucket import Bucket
from ..cache.item import Items
from ..cache.journal import Entry, Journal
from ..etags import expected_etag, part_size_for
from ..logs import Transfer
from .conflict import ConflictHandler, ResolvedElsewhere
from .deleter import CopyPending, Deleter, log_transfer
from .moved import MovedFiles

COPY_PART = 512 * 1024**2  # part size of a copy in parts (at most 10,000 parts; larger ones grow)

log = logging.getLogger("mountsync.reconciler")


class ConflictError(StoreError):
    """The object changed in the bucket since the local copy's base."""


class StillChanging(ConflictError):
    """The object changed again while a conflict was being resolved: try later."""

    transient = True


@dataclass
class UploadSettings:
    multipart_threshold: int = 64 * 1024**2
    part_size: int = 16 * 1024**2
    part_concurrency: int = 4
    copy_limit: int = 5 * 1024**3  # larger renamed files are copied in parts (S3's CopyObject limit)


def metadata_for(e: Entry) -> dict[str, str]:
    mode = e.kind | (e.mode & 0o7777)
    return attrs_mod.to_metadata(attrs_mod.Attrs(mode=mode, uid=e.uid, gid=e.gid, mtime_ns=e.mtime_ns), e.rdev)


class Uploader:
    """Stateless apart from progress counters; all journal access on the trio thread."""

    def __init__(self, store: Bucket, journal: Journal, items: Items, settings: UploadSettings,
                 conflicts: ConflictHandler) -> None:
        self.store = store
        self.journal = journal
        self.items = items
        self.s = settings
        self.conflicts = conflicts
        self.conditional_writes = True  # False: the server ignores If-Match; check with HEAD first
        self.progress: dict[int, tuple[int, int]] = {}  # entry id → (bytes sent, total)
        self.active_uploads: set[str] = set()  # multipart upload ids being sent by this process
        self.moved = MovedFiles(store, journal, items, conflicts)
        self.deleter = Deleter(store, journal, conflicts)

    async def upload(self, entry_id: int) -> Entry | None:
        """Upload the entry's current generation. Returns the updated entry (None if gone).
        What reached the bucket is logged, one INFO line (``logs``)."""
        e = self.journal.get_by_id(entry_id)
        if e is None or not e.pending:
            return e
        started = time.monotonic()
        done, transfer = await self._upload(e)
        log_transfer(transfer, time.monotonic() - started, e.attempts + 1)
        return done

    async def _upload(self, e: Entry) -> tuple[Entry | None, Transfer]:
        entry_id = e.saved_id
        path_at_start = e.path
        if e.base_etag is not None:
            # the object this upload replaces may still be a renamed file's bytes: copy those first
            waiting_for = self.journal.copy_pending_from(e.path, e.base_etag)
            if waiting_for is not None and waiting_for != entry_id:
                raise CopyPending(waiting_for)
        key = self.store.object_key(e.path, e.kind)
        transfer = Transfer("upload", key, e.size)
        if e.kind == stat.S_IFDIR:
            gen = e.dirty_gen
            transfer = Transfer("marker", key)
            result = await self.store.put(key, b"", metadata_for(e))
        elif e.kind == stat.S_IFLNK or e.kind in attrs_mod.SPECIAL_KINDS:
            # a symlink's body is its target; a FIFO, socket or device is an empty object
            gen = e.dirty_gen
            body = (e.target or "").encode("utf-8", "surrogateescape")
            transfer = Transfer("symlink" if e.kind == stat.S_IFLNK else "special file", key, len(body))
            result = await self._put_resolving(e, key, lambda: body, metadata_for(e), None)
        elif e.copy_from is not None and e.meta_only:
            # renamed, bytes unchanged: the bucket copies them from where they are
            gen = e.dirty_gen
            source_ours = self.journal.created.ours(self.store.key(e.copy_from), e.copy_etag)
            copier = self._copy_in_parts if e.size > self.s.copy_limit else None
            try:
                result = await self.moved.copy(e, key, None if e.copy_meta else metadata_for(e), copier)
            except (PreconditionFailedError, NotFoundError) as exc:
                raise StillChanging(f"{key!r} changed in the bucket during a rename's copy; will try again") \
                    from exc
            done = self._commit(entry_id, path_at_start, key, gen, result, source_ours=source_ours)
            if e.copy_meta:
                self.moved.attributes_from_object(entry_id)
            return done, Transfer("copy", key, e.size, self.store.key(e.copy_from))
        elif e.meta_only and e.base_etag is not None:
            gen = e.dirty_gen
            transfer = Transfer("metadata", key)
            result = await self._update_metadata(e, key)
        else:
            result, gen = await self._upload_data(e, key)
        return self._commit(entry_id, path_at_start, key, gen, result), transfer

    def _commit(self, entry_id: int, path_at_start: str, key: str, gen: int, result: PutResult, *,
                source_ours: bool = True) -> Entry | None:
        """Record the upload; the version it left at ``key`` is ours (SPEC §6) when it
        replaced nothing or a version of ours (the entry's base, which a conflict
        decision may have changed to another writer's version meanwhile) and, for a
        rename's copy, its source was ours too."""
        e = self.journal.get_by_id(entry_id)
        if e is None:
            log.debug("entry %d was removed while uploading", entry_id)
            return None
        if source_ours:
            ours = self.journal.created.after_write(key, e.base_etag, result.etag)
        else:
            ours = False
            self.journal.created.forget(key)
        if e.path != path_at_start:
            # renamed while uploading: the new path still needs its upload; the
            # object now at the old key is reported (tombstoned by the caller if allowed)
            raise RenamedDuringUpload(path_at_start, result.etag, ours)
        return self.items.record_upload(e, gen, result.etag, result.version_id)

    async def _check_base(self, key: str, base: str | None, *, always: bool = False) -> None:
        """For servers that ignore conditional headers: compare with HEAD just before
        the upload (a race remains between this HEAD and the PUT; see docs/SEMANTICS.md)."""
        if self.conditional_writes and not always:
            return
        remote = await self.store.head_or_none(key)
        if (remote.etag if remote else None) != base:
            raise ConflictError(f"{key!r} changed in the bucket under a local edit")

    async def _put(self, key: str, body: Body, metadata: dict[str, str], base: str | None) -> PutResult:
        await self._check_base(key, base)
        return await _conditional_write(key, base, functools.partial(self.store.put, key, body, metadata))

    async def _resolving(self, e: Entry, key: str, snapshot: str | None,
                         attempt: Callable[[str | None], Awaitable[PutResult]]) -> PutResult:
        """Run ``attempt`` (one conditional upload against a base ETag); on a conflict, let
        the conflict handler decide (it may move the entry or reset it, raising
        ResolvedElsewhere, or let the local version win: then try again on its ETag).
        Our own earlier upload (a crash before its commit) is recognised, not a conflict."""
        base = e.base_etag
        entry_id = e.saved_id
        for _attempt in range(3):
            try:
                return await attempt(base)
            except ConflictError:
                remote = await self.store.head_or_none(key)  # one look serves both checks
                own = await self._own_earlier_upload(remote, snapshot)
                if own is not None:
                    return own
                if remote is not None and self._own_unanswered(key, remote.etag):
                    base = remote.etag  # our own earlier upload landed: this one replaces it
                    continue
                base = await self.conflicts.on_upload_conflict(e, snapshot)
                e = self.journal.get_by_id(entry_id) or e
        raise StillChanging(f"{key!r} keeps changing in the bucket; will try again")

    async def _put_resolving(self, e: Entry, key: str, open_body: Callable[[], Body], metadata: dict[str, str],
                             snapshot: str | None) -> PutResult:
        """Conditional PUT of a fresh ``open_body()`` per attempt, conflicts resolved."""

        async def put_once(base: str | None) -> PutResult:
            body = open_body()
            try:
                return await self._put(key, body, metadata, base)
            finally:
                if not isinstance(body, bytes):
                    body.close()

        return await self._resolving(e, key, snapshot, put_once)

    async def _update_metadata(self, e: Entry, key: str) -> PutResult:
        """chmod/chown/utime of an uploaded file: a self-copy with new metadata."""
        try:
            await self._check_base(key, e.base_etag)
            return await self.store.copy(key, key, metadata_for(e), if_match=e.base_etag)
        except (PreconditionFailedError, NotFoundError, ConflictError) as exc:
            remote = await self.store.head_or_none(key)
            if remote is None:
                # deleted remotely: the whole local file must go up, which needs its bytes
                raise ConflictError(f"{key!r} was deleted in the bucket before its metadata was updated") from exc
            self.conflicts.meta_change_lost(e, remote)
            raise ResolvedElsewhere(requeue=False) from None

    async def _upload_data(self, e: Entry, key: str) -> tuple[PutResult, int]:
        async with self.items.upload_source(e.saved_id, e.path) as snap:
            return await self._send(e, key, snap.path, snap.size, snap.gen)

    async def _send(self, e: Entry, key: str, source: str, size: int, gen: int) -> tuple[PutResult, int]:
        """Upload the file at ``source`` (a snapshot, or the gated cache file) as ``key``."""
        snap = source
        entry_id = e.saved_id
        e = self.journal.get_by_id(entry_id) or e
        md = metadata_for(e)
        try:
            self.progress[entry_id] = (0, size)
            if size >= self.s.multipart_threshold:
                async def multipart_once(base: str | None) -> PutResult:
                    await self._check_base(key, base)
                    return await self._multipart(
                        e, key, md, lambda upload_id: self._send_parts(e, key, upload_id, snap, size, base))

                return await self._resolving(e, key, snap, multipart_once), gen
            # a body factory, not a leak: _put_resolving closes each body it opens
            result = await self._put_resolving(e, key, lambda: open(snap, "rb"), md, snap)  # noqa: SIM115
            return result, gen
        except TransientError as exc:
            if not isinstance(exc, UnreachableError):  # sent, perhaps landed: remember what it would be
                mine = await trio.to_thread.run_sync(expected_etag, snap, size, self.s.multipart_threshold,
                                                     self.s.part_size)
                self.journal.created.unanswered(key, mine)
            raise
        finally:
            self.progress.pop(entry_id, None)

    def _own_unanswered(self, key: str, etag: str) -> bool:
        """Is version ``etag`` of ``key`` an upload of ours whose answer was lost (``_send``
        recorded it)? The creations record is left as it was: the version that replaces it
        replaces, for the own-creations rule, the one before it."""
        if not self.journal.created.was_unanswered(key, etag):
            return False
        log.info("%r holds an earlier upload of ours whose answer was lost: replacing it", key)
        return True

    async def _own_earlier_upload(self, remote: ObjectInfo | None, snapshot: str | None) -> PutResult | None:
        """After a crash between a successful upload and its journal commit, the retry
        meets our own object (``remote``, what the key holds): recognise it by its ETag
        instead of calling it a conflict."""
        if snapshot is None or remote is None:
            return None
        size = os.stat(snapshot).st_size
        if remote.size != size:
            return None
        mine = await trio.to_thread.run_sync(expected_etag, snapshot, size, self.s.multipart_threshold,
                                             self.s.part_size)
        if mine != remote.etag:
            return None
        log.info("%r already holds this version (an upload finished before a restart)", remote.key)
        return PutResult(etag=remote.etag, version_id=remote.version_id)

    async def _multipart(self, e: Entry, key: str, md: dict,
                         send: Callable[[str], Awaitable[PutResult]]) -> PutResult:
        """One multipart upload (``send(upload_id)`` sends the parts and completes it). Its
        id is committed to the journal before the first part and removed only after
        Complete or a successful Abort; an abort that fails leaves the row for the
        reconciler to retry (``abort_recorded``), also after a restart."""
        upload_id = await self.store.create_multipart(key, md)
        try:
            self.journal.add_multipart(upload_id, key, e.id)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self._abort_unrecorded(key, upload_id)
            raise
        self.active_uploads.add(upload_id)
        try:
            result = await send(upload_id)
        except BaseException:
            self.active_uploads.discard(upload_id)
            with trio.CancelScope(shield=True):
                try:
                    await self.abort_recorded(upload_id)
                except (StoreError, OSError) as exc:
                    log.info("could not abort multipart upload of %r yet (%s); will retry", key, exc)
            raise
        self.active_uploads.discard(upload_id)
        try:
            self.journal.remove_multipart(upload_id)
        except OSError as exc:  # disk full: a later abort meets NoSuchUpload and removes the row
            log.info("could not record that the multipart upload of %r finished: %s", key, exc)
        return result

    async def _copy_in_parts(self, e: Entry, src_key: str, key: str, metadata: dict[str, str] | None,
                             if_none_match: bool) -> PutResult:
        """A renamed file too large for one CopyObject (over ``copy_limit``, 5 GiB on S3):
        a multipart upload whose parts are UploadPartCopy ranges of ``src_key``, each
        conditional on the ETag the rename recorded, ``part_concurrency`` in flight."""
        assert e.copy_etag is not None  # only renamed files are copied
        source = await self.store.head(src_key)  # also for servers that ignore CopySourceIfMatch
        if source.etag != e.copy_etag or source.size != e.size:
            raise PreconditionFailedError(f"{src_key!r} is no longer the renamed version")
        md = (source.metadata or {}) if metadata is None else metadata
        size, part_size = e.size, part_size_for(e.size, min(self.s.copy_limit, COPY_PART))
        count = -(-size // part_size)

        async def send(upload_id: str) -> PutResult:
            copied = 0

            async def one(num: int) -> str:
                nonlocal copied
                off = (num - 1) * part_size
                etag = await self.store.upload_part_copy(
                    key, upload_id, num, src_key, off, min(part_size, size - off), if_match=e.copy_etag)
                copied += min(part_size, size - off)
                self.progress[e.saved_id] = (copied, size)
                return etag

            parts = await self._parts(count, one)
            return await self.store.complete_multipart(key, upload_id, parts, if_none_match=if_none_match)

        return await self._multipart(e, key, md, send)

    async def _parts(self, count: int, send_part: Callable[[int], Awaitable[str]]) -> list[tuple[int, str]]:
        """Parts 1..``count`` sent by ``send_part`` (returns the part's ETag), ``part_concurrency``
        at a time; their (number, ETag) in order. A failed part fails the lot with the most
        telling error (``first_store_error``)."""
        etags: dict[int, str] = {}
        limiter = trio.Semaphore(self.s.part_concurrency)

        async def one(num: int) -> None:
            async with limiter:
                etags[num] = await send_part(num)

        try:
            async with trio.open_nursery() as n:
                for num in range(1, count + 1):
                    n.start_soon(one, num)
        except BaseExceptionGroup as group:
            raise first_store_error(group) from None
        return [(num, etags[num]) for num in range(1, count + 1)]

    async def _send_parts(self, e: Entry, key: str, upload_id: str, snap: str, size: int,
                          base: str | None) -> PutResult:
        part_size = part_size_for(size, self.s.part_size)
        count = -(-size // part_size)
        entry_id = e.saved_id
        sent = 0

        async def one(num: int) -> str:
            nonlocal sent
            off = (num - 1) * part_size
            body = await trio.to_thread.run_sync(_read_at, snap, off, min(part_size, size - off))
            etag = await self.store.upload_part(key, upload_id, num, body)
            sent += len(body)
            self.progress[entry_id] = (sent, size)
            return etag

        parts = await self._parts(count, one)
        if base is not None:
            # some servers (moto among them) ignore If-Match on CompleteMultipartUpload:
            # check just before completing, so at worst a race of one round trip remains
            await self._check_base(key, base, always=True)
        return await _conditional_write(
            key, base, functools.partial(self.store.complete_multipart, key, upload_id, parts))

    async def abort_recorded(self, upload_id: str) -> None:
        """Abort a multipart upload recorded in the journal and forget it; an upload id the
        server no longer knows (completed or aborted already) is forgotten too. Other
        errors propagate (the row stays, so the abort is tried again). Uploads still in
        progress in this process are left alone."""
        rec = self.journal.multipart_upload(upload_id)
        if rec is None or upload_id in self.active_uploads:
            return
        try:
            await self.store.abort_multipart(rec.key, upload_id)
        except NotFoundError:
            pass
        self.journal.remove_multipart(upload_id)
        log.debug("aborted multipart upload %s of %r", upload_id, rec.key)

    async def _abort_unrecorded(self, key: str, upload_id: str) -> None:
        """The upload id could not be recorded (journal write failed): abort it at once."""
        try:
            await self.store.abort_multipart(key, upload_id)
        except NotFoundError:
            pass
        except StoreError as exc:
            log.warning("could not abort multipart upload %s of %r (%s), nor record it: it stays "
                        "incomplete in the bucket until a lifecycle rule removes it", upload_id, key, exc)

    async def delete(self, path: str) -> None:
        """Carry out the tombstone at ``path`` (``Deleter``)."""
        await self.deleter.delete(path)


async def _conditional_write(key: str, base: str | None, write: Callable[..., Awaitable[PutResult]]) -> PutResult:
    """``write`` (a PUT or a CompleteMultipartUpload of ``key``) on the condition that the
    bucket still holds ``base``: If-Match ``base``, or If-None-Match when there was none.
    A failed condition is a ConflictError; so is a vanished ``base`` (NotFoundError)."""
    try:
        if base is None:
            return await write(if_none_match=True)
        return await write(if_match=base)
    except (PreconditionFailedError, NotFoundError) as exc:
        if isinstance(exc, NotFoundError) and base is None:
            raise
        raise ConflictError(f"{key!r} changed in the bucket under a local edit") from exc


class RenamedDuringUpload(Exception):
    """The entry moved to another path while its upload ran: the object at the old key
    (``etag``; ``ours``: the upload created it, SPEC §6) must go, if allowed."""

    def __init__(self, old_path: str, etag: str, ours: bool) -> None:
        super().__init__(old_path)
        self.old_path = old_path
        self.etag = etag
        self.ours = ours


def _read_at(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(length)
