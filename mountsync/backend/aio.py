"""Async face of an ObjectStore for code on the trio loop.

Every call runs the blocking store method in a worker thread under one
``trio.CapacityLimiter`` (the only place the core and reconciler reach the
network), so the trio loop never blocks on I/O and the number of concurrent
requests is bounded. The limiter is per AsyncStore instance.
"""

from __future__ import annotations

import functools
from typing import Any

import trio

from .base import ObjectStore


class AsyncStore:
    def __init__(self, store: ObjectStore, max_concurrency: int = 16) -> None:
        self.sync = store
        self.limiter = trio.CapacityLimiter(max_concurrency)

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        fn = getattr(self.sync, method)
        return await trio.to_thread.run_sync(
            functools.partial(fn, *args, **kwargs), limiter=self.limiter, abandon_on_cancel=True
        )

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        async def bound(*args: Any, **kwargs: Any) -> Any:
            return await self.call(name, *args, **kwargs)

        bound.__name__ = name
        return bound
