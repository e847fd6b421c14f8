"""What every core object shares: the services below the core and the mount's options.

``CoreContext`` holds references only (no mutable state of its own): the
``Bucket`` facade (backend.bucket: keys, worker threads, pagination), the
``Journal``, the ``Items`` registry (cache.item: the only writer of an entry's
data state), the ``ChangeSink`` (the reconciler), ``CoreOptions``, the
``EventBus`` and the ``ConflictCopies`` shared with the reconciler. Each core
object (``Tree``, ``Listings``, ``Files``, ``Names``, ``Renames``, ``DirMoves``)
gets the same context; none of them owns these services.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

import trio

from .. import attrs as attrs_mod
from .. import keys
from ..backend.bucket import Bucket
from ..cache.item import Items
from ..cache.journal import Journal
from ..errors import FsError
from ..events import EventBus
from ..reconciler.conflict import ConflictCopies

log = logging.getLogger("mountsync.core")


class ChangeSink(Protocol):
    """What the core tells the reconciler (implemented by reconciler.Reconciler)."""

    def changed(self, entry_id: int) -> None: ...
    def opened_for_write(self, entry_id: int) -> None: ...
    def closed_for_write(self, entry_id: int) -> None: ...
    def tombstoned(self, path: str, *, held: bool = False) -> None: ...
    async def wait_idle(self, entry_id: int) -> None: ...
    async def wait_path_idle(self, path: str) -> None: ...
    async def upload_now(self, entry_id: int) -> None: ...
    def hold(self, path: str) -> AbstractAsyncContextManager[None]: ...
    def foreground(self) -> None: ...


@dataclass(frozen=True)
class CoreOptions:
    read_only: bool = False
    allow_delete: bool = False
    metadata_ttl: float = 5.0
    negative_metadata_ttl: float | None = None  # None: same as metadata_ttl
    read_timeout: float = 30.0
    fsync_upload: bool = False
    defaults: attrs_mod.Defaults = field(default_factory=lambda: attrs_mod.Defaults(0, 0, 0o644, 0o755))


class Background:
    """The core's background tasks (read-ahead, revalidation of big directories): one
    nursery, open while the stack serves (``serve``). Before and after that ``running``
    is false and callers do without (a read fetches only what it needs). Trio thread only."""

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None

    @property
    def running(self) -> bool:
        return self._nursery is not None

    async def serve(self) -> None:
        """Run the background tasks until cancelled (the stack's background nursery)."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await trio.sleep_forever()
        finally:
            self._nursery = None

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        assert self._nursery is not None, "check running first"
        self._nursery.start_soon(fn, *args)


def now_ns() -> int:
    return time.time_ns()


@dataclass(frozen=True)
class CoreContext:
    store: Bucket
    journal: Journal
    items: Items
    sink: ChangeSink
    opt: CoreOptions
    events: EventBus
    conflict_copies: ConflictCopies
    # paths whose objects are archived (GLACIER...) → their storage class, for status
    archived: dict[str, str] = field(default_factory=dict)

    def key(self, path: str) -> str:
        return self.store.key(path)

    def writable(self) -> None:
        if self.opt.read_only:
            raise FsError(errno.EROFS, "mounted read-only")

    @staticmethod
    def check_name(name: str) -> None:
        if len(name.encode("utf-8", "surrogateescape")) > keys.MAX_NAME_BYTES:
            raise FsError(errno.ENAMETOOLONG)
        if not keys.is_valid_name(name):
            raise FsError(errno.EINVAL, f"invalid name {name!r}")

    @property
    def negative_ttl(self) -> float:
        """How long "no such name" is trusted (``--negative-metadata-ttl``)."""
        n = self.opt.negative_metadata_ttl
        return self.opt.metadata_ttl if n is None else n
