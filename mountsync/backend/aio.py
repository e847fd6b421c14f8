"""Async face of an ObjectStore for code on the trio loop.

Every call runs the blocking store method in a worker thread under one
``trio.CapacityLimiter`` (the only place the core and reconciler reach the
network), so the trio loop never blocks on I/O and the number of concurrent
requests is bounded. The limiter is per AsyncStore instance.

``caps`` records what the server was found to honour (the probe in
``reconciler.probe`` fills it in once per cache dir); ``delete_if_match`` is the
one way code deletes a key conditionally, so the fallback lives in one place.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import trio

from .base import ObjectStore, PreconditionFailedError


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


class AsyncStore:
    def __init__(self, store: ObjectStore, max_concurrency: int = 16) -> None:
        self.sync = store
        self.limiter = trio.CapacityLimiter(max_concurrency)
        self.caps = ServerCaps()

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.sync, method)
        return await trio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), limiter=self.limiter, abandon_on_cancel=True
        )

    async def copy_if_match(self, src_key: str, dst_key: str, etag: str, metadata: dict[str, str] | None = None,
                            *, if_none_match: bool = False) -> Any:
        """Server-side copy of ``src_key`` only if it still holds ``etag`` (the copy then has
        exactly those bytes). PreconditionFailedError / NotFoundError otherwise."""
        if not self.caps.conditional_copies:
            current = await self.call("head", src_key)
            if current.etag != etag:
                raise PreconditionFailedError(f"{src_key!r} has ETag {current.etag}, not {etag}")
        return await self.call("copy", src_key, dst_key, metadata, if_match=etag, if_none_match=if_none_match)

    async def delete_if_match(self, key: str, etag: str | None) -> None:
        """Delete ``key`` only if it still holds ``etag`` (None: unconditionally).
        PreconditionFailedError if it holds another version; NotFoundError (or success,
        as servers differ) if it is gone."""
        if etag is not None and not self.caps.conditional_deletes:
            current = await self.call("head", key)
            if current.etag != etag:
                raise PreconditionFailedError(f"{key!r} has ETag {current.etag}, not {etag}")
            await self.call("delete", key)
            return
        await self.call("delete", key, if_match=etag)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        async def bound(*args: Any, **kwargs: Any) -> Any:
            return await self.call(name, *args, **kwargs)

        bound.__name__ = name
        return bound
