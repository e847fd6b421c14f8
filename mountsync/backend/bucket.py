"""The bucket as code on the trio loop sees it: one facade over an ObjectStore.

``Bucket`` is the only way the core, the cache and the reconciler reach the
network. It

- holds the mount's prefix and builds every object key (``key``, ``dir_key``,
  ``object_key``; the pure rules are in ``mountsync.keys``), so no caller
  concatenates a prefix;
- runs each blocking store method in a worker thread under one
  ``trio.CapacityLimiter`` per Bucket, so the loop never blocks on I/O and the
  number of concurrent requests is bounded; a call cancelled on the loop is
  abandoned (its thread finishes on its own);
- owns pagination (``list_all``): nobody else follows ``next_token``;
- records what the server was found to honour (``caps``; the probe in
  ``reconciler.probe`` fills it in once per cache dir) and is the one place
  with the fallbacks for servers that ignore conditional copies/deletes
  (``copy_if_match``, ``delete_if_match``).

Every method is written out with its types (no attribute forwarding), so a
misspelt call or a wrong argument is a type error, not a runtime surprise.
All state is touched on the trio thread only, apart from ``sync`` (the
ObjectStore, which is thread-safe by contract).
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

import trio

from .. import keys
from .base import (
    Body,
    ListPage,
    MultipartUpload,
    NotFoundError,
    ObjectInfo,
    ObjectStore,
    PreconditionFailedError,
    PutResult,
    VersionInfo,
)

_P = ParamSpec("_P")
_T = TypeVar("_T")


@dataclass
class ServerCaps:
    """What the server honours. Both start True; the probe may find otherwise.

    ``conditional_writes``: 412 on PUT/complete ``If-None-Match``/``If-Match``.
    ``conditional_deletes``: 412 on DELETE ``If-Match``; without it a conditional delete
    is a HEAD and then a plain DELETE (another writer's change landing between the
    two, one round trip, is deleted; see docs/SEMANTICS.md).
    ``conditional_copies``: 412 on CopyObject ``CopySourceIfMatch``; without it the
    source is HEADed first (moto ignores the header)."""

    conditional_writes: bool = True
    conditional_deletes: bool = True
    conditional_copies: bool = True


@dataclass(frozen=True)
class Listing:
    """Every page of one listing: objects, and common prefixes (with a delimiter)."""

    objects: list[ObjectInfo] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)


class _Abandoned(Exception):
    """Stops the worker thread of a streaming GET whose caller is gone."""


class Bucket:
    def __init__(self, store: ObjectStore, *, prefix: str = "", max_concurrency: int = 16) -> None:
        self.sync = store
        self.prefix = keys.normalize_prefix(prefix)
        self.limiter = trio.CapacityLimiter(max_concurrency)
        self.caps = ServerCaps()

    # ------------------------------------------------------------- keys

    def key(self, path: str) -> str:
        """Object key of the file (or symlink) at mount path ``path``."""
        return keys.file_key(self.prefix, path)

    def dir_key(self, path: str) -> str:
        """Marker key of the directory at ``path``, which is also its listing prefix."""
        return keys.dir_key(self.prefix, path)

    def object_key(self, path: str, kind: int) -> str:
        """Key of an entry of file type ``kind`` (``stat.S_IF*``) at ``path``."""
        return self.dir_key(path) if kind == stat.S_IFDIR else self.key(path)

    # ------------------------------------------------------------ plumbing

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        return await trio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), limiter=self.limiter, abandon_on_cancel=True
        )

    # ------------------------------------------------------------ reading

    async def check_bucket(self) -> None:
        await self._run(self.sync.check_bucket)

    async def list_page(self, prefix: str, delimiter: str | None = "/", token: str | None = None,
                        max_keys: int = 1000) -> ListPage:
        return await self._run(self.sync.list_page, prefix, delimiter, token, max_keys)

    async def list_all(self, prefix: str, *, recursive: bool = False,
                       on_page: Callable[[ListPage], None] | None = None) -> Listing:
        """Every page of the listing of key prefix ``prefix`` (e.g. ``dir_key(path)``):
        one level with common prefixes, or with ``recursive`` every key below it.
        ``on_page`` sees each page as it arrives (on the trio thread, before the next is asked)."""
        out = Listing()
        token: str | None = None
        while True:
            page = await self.list_page(prefix, None if recursive else "/", token)
            if on_page is not None:
                on_page(page)
            out.objects.extend(page.objects)
            out.prefixes.extend(page.prefixes)
            token = page.next_token
            if not token:
                return out

    async def head(self, key: str) -> ObjectInfo:
        return await self._run(self.sync.head, key)

    async def head_or_none(self, key: str) -> ObjectInfo | None:
        """HEAD, with a missing key as None."""
        try:
            return await self.head(key)
        except NotFoundError:
            return None

    async def get(self, key: str, start: int = 0, end: int | None = None, *, if_match: str | None = None) -> bytes:
        return await self._run(self.sync.get, key, start, end, if_match)

    async def get_into(self, key: str, start: int, end: int, *, if_match: str | None,
                       land: Callable[[bytes, int], object]) -> int:
        """A streaming ranged GET: each piece is handed to ``land(data, offset)`` on the trio
        thread as it arrives (``ObjectStore.get_into``). An exception from ``land`` stops
        the request and propagates.

        Once this call has returned or been cancelled, ``land`` is never called again: the
        worker thread of a cancelled call is abandoned but keeps reading, and trio would
        still run what it sends (in a system task); the next piece it sends finds
        ``finished`` set (both run on the trio thread, so there is no race) and stops
        the thread instead of writing into a file its caller may have closed."""
        finished = False

        def deliver(data: bytes, at: int) -> None:  # on the trio thread
            if finished:
                raise _Abandoned
            land(data, at)

        def sink(data: bytes, at: int) -> None:  # in the worker thread
            trio.from_thread.run_sync(deliver, data, at)

        try:
            return await self._run(self.sync.get_into, key, start, end, if_match, sink)
        finally:
            finished = True

    async def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUpload]:
        return await self._run(self.sync.list_multipart_uploads, prefix)

    # ------------------------------------------------------------ writing

    async def put(self, key: str, body: Body, metadata: dict[str, str] | None = None, *,
                  if_match: str | None = None, if_none_match: bool = False) -> PutResult:
        return await self._run(self.sync.put, key, body, metadata, if_match=if_match, if_none_match=if_none_match)

    async def create_multipart(self, key: str, metadata: dict[str, str] | None = None) -> str:
        return await self._run(self.sync.create_multipart, key, metadata)

    async def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str:
        return await self._run(self.sync.upload_part, key, upload_id, part_number, body)

    async def upload_part_copy(self, key: str, upload_id: str, part_number: int, src_key: str, start: int,
                               length: int, *, if_match: str | None = None) -> str:
        return await self._run(self.sync.upload_part_copy, key, upload_id, part_number, src_key, start, length,
                               if_match=if_match)

    async def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]], *,
                                 if_match: str | None = None, if_none_match: bool = False) -> PutResult:
        return await self._run(self.sync.complete_multipart, key, upload_id, parts, if_match=if_match,
                               if_none_match=if_none_match)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        await self._run(self.sync.abort_multipart, key, upload_id)

    async def copy(self, src_key: str, dst_key: str, metadata: dict[str, str] | None = None, *,
                   if_match: str | None = None, if_none_match: bool = False) -> PutResult:
        return await self._run(self.sync.copy, src_key, dst_key, metadata, if_match=if_match,
                               if_none_match=if_none_match)

    async def delete(self, key: str, *, if_match: str | None = None) -> None:
        await self._run(self.sync.delete, key, if_match=if_match)

    async def delete_many(self, keys_: list[str]) -> list[str]:
        return await self._run(self.sync.delete_many, keys_)

    # ------------------------------------------------------------ versions

    async def versioning(self) -> str:
        return await self._run(self.sync.versioning)

    async def list_versions(self, key: str) -> list[VersionInfo]:
        return await self._run(self.sync.list_versions, key)

    async def get_version_to(self, key: str, version_id: str, path: str) -> int:
        """The whole of one version written to a new file ``path`` (mode 0600) by the worker
        thread; returns its size. The file is the caller's, left in place on failure too."""
        def fetch() -> int:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                return self.sync.get_version_into(key, version_id, lambda data, at: os.pwrite(fd, data, at))
            finally:
                os.close(fd)
        return await self._run(fetch)

    # ------------------------------------------------- conditional helpers

    async def copy_if_match(self, src_key: str, dst_key: str, etag: str | None,
                            metadata: dict[str, str] | None = None, *, if_none_match: bool = False) -> PutResult:
        """Server-side copy of ``src_key`` only if it still holds ``etag`` (the copy then has
        exactly those bytes). PreconditionFailedError / NotFoundError otherwise."""
        if not self.caps.conditional_copies:
            current = await self.head(src_key)
            if current.etag != etag:
                raise PreconditionFailedError(f"{src_key!r} has ETag {current.etag}, not {etag}")
        return await self.copy(src_key, dst_key, metadata, if_match=etag, if_none_match=if_none_match)

    async def delete_if_match(self, key: str, etag: str | None) -> None:
        """Delete ``key`` only if it still holds ``etag`` (None: unconditionally).
        PreconditionFailedError if it holds another version; NotFoundError (or success,
        as servers differ) if it is gone."""
        if etag is not None and not self.caps.conditional_deletes:
            current = await self.head(key)
            if current.etag != etag:
                raise PreconditionFailedError(f"{key!r} has ETag {current.etag}, not {etag}")
            await self.delete(key)
            return
        await self.delete(key, if_match=etag)
