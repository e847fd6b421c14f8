"""Events that lower layers publish for upper ones (no back-references).

The reconciler publishes what it did to the journal behind the core's back
(an entry moved to a conflict name, an entry reset to the bucket's version, a
path that reappeared); the core publishes what the kernel must forget. A
subscriber is a plain callable run synchronously on the trio thread, so it
sees the journal exactly as the publisher left it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class EntryMoved:
    """The journal entry ``entry_id`` now lives at ``new_path`` (was ``old_path``)."""

    entry_id: int
    old_path: str
    new_path: str


@dataclass(frozen=True)
class EntryReset:
    """The local version of ``path`` was replaced by the bucket's version."""

    entry_id: int
    path: str


@dataclass(frozen=True)
class PathChanged:
    """The bucket's view of ``path`` changed (e.g. a refused delete): list its parent again."""

    path: str


@dataclass(frozen=True)
class RemoteChanged:
    """A change notification: the object at ``path`` was written (``etag``, when the event
    said) or removed in the bucket, by this mount or another writer."""

    path: str
    etag: str = ""
    removed: bool = False


@dataclass(frozen=True)
class InvalidateInode:
    """The kernel must drop cached attributes and pages of ``ino``."""

    ino: int


@dataclass(frozen=True)
class InvalidateEntry:
    """The kernel must drop its cached lookup of ``name`` in directory ``parent_ino``."""

    parent_ino: int
    name: str


class EventBus:
    """Synchronous publish/subscribe on the trio thread."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[object], None]] = []

    def subscribe(self, fn: Callable[[object], None]) -> None:
        self._subscribers.append(fn)

    def publish(self, event: object) -> None:
        for fn in list(self._subscribers):
            fn(event)
