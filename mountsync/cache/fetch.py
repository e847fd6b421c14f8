"""Chunked fetches: object bytes brought into a file in bounded ranged GETs.

Every path that downloads object content uses ``fetch_chunks``: reads of
uncached ranges (with read-ahead), the fill before the first write to a partly
cached file, truncation of such a file, the copy of the bucket's version a
conflict strategy sets aside, and the target of a symlink object. Each GET
streams: its body is read off the connection in pieces of ``backend.base.PIECE``
(1 MiB), each landing in the file as it arrives (``Bucket.get_into``). So the
memory a download needs is bounded (at most ``parallel`` pieces in flight),
whatever the size of the object or of a range, and the time limit applies to
each piece, not to the whole object. Ranges are cut into GETs of at most
``chunk`` bytes (128 MiB: few requests for a big sequential read; rclone's
chunked reading starts at 128 MiB too).

Contract:
- ``missing`` is cut into chunks of at most ``chunk`` bytes (``plan_chunks``,
  pure), each one GET conditional on ``etag`` (``If-Match``), started in
  order. One is in flight at first (``eager``: ``parallel`` at once), twice as
  many after each arrival, up to ``parallel`` (``_Pace``).
- Time limit: ``timeout`` runs afresh for each chunk: the fetch fails with
  ``FetchTimeout`` when no chunk has arrived for ``timeout`` seconds with one
  GET in flight ("this GET took too long"); with several in flight, the first
  expiry halves the number allowed in flight and grants one more period (see
  ``_Pace``). A big object needs no bigger limit than a small one, as long as
  the endpoint keeps delivering.
- Each piece is handed to ``land(body, offset)`` as soon as it arrives (on the
  trio thread), which writes it and records it as present; a failure after
  that leaves the landed pieces in place, so a retry fetches only the rest.
  The time limit restarts at each piece.
- ``still_wanted()`` is checked before each request and before each landing;
  when it turns false (the file changed, was dropped, or became complete) the
  GET is closed and the fetch stops quietly.
- Errors: ``FetchTimeout`` (a ``TransientError``), ``ShortRead`` (transient), or the store's own
  ``StoreError`` (``PreconditionFailedError`` when the object changed). The
  first error stops the other chunks.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..backend.base import PreconditionFailedError, StoreError, TransientError
from ..backend.bucket import Bucket

CHUNK = 128 * 1024 * 1024  # the largest range one GET asks for (it streams: see the module doc)
PARALLEL = 4
DEFAULT_TIMEOUT = 30.0


class _Unwanted(Exception):
    """Raised by a landing to stop its GET: the bytes are not wanted any more."""


class FetchTimeout(TransientError):
    """No chunk arrived within the time limit."""


class ShortRead(TransientError):
    """The server returned fewer bytes than the range asked for."""


def plan_chunks(missing: list[tuple[int, int]], chunk: int = CHUNK) -> list[tuple[int, int]]:
    """Cut each ``[start, end)`` range into pieces of at most ``chunk`` bytes, in order."""
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    out: list[tuple[int, int]] = []
    for start, end in missing:
        pos = start
        while pos < end:
            out.append((pos, min(end, pos + chunk)))
            pos = out[-1][1]
    return out


async def fetch_chunks(store: Bucket, key: str, etag: str | None, missing: list[tuple[int, int]],
                       land: Callable[[bytes, int], object], *, timeout: float = DEFAULT_TIMEOUT,
                       chunk: int = CHUNK, parallel: int = PARALLEL, eager: bool = False,
                       still_wanted: Callable[[], bool] = lambda: True) -> None:
    """Fetch ``missing`` ranges of ``key`` (version ``etag``) into ``land``; see the module doc.
    ``eager``: start with ``parallel`` GETs in flight (a read-ahead known to be wanted)."""
    pieces = plan_chunks(missing, chunk)
    if not pieces:
        return
    pace = _Pace(timeout, max(1, parallel), max(1, parallel) if eager else 1)

    async def one(start: int, end: int, slot: object) -> None:
        got = 0

        def piece(body: bytes, at: int) -> None:
            nonlocal got
            got += len(body)
            if not still_wanted():
                raise _Unwanted
            land(body, at)
            pace.arrived()

        try:
            await store.get_into(key, start, end, if_match=etag, land=piece)
            if got != end - start:
                raise ShortRead(f"GET {key!r} bytes {start}-{end - 1}: got {got} bytes")
        except _Unwanted:
            pass  # the file changed or was dropped: stop quietly
        finally:
            pace.width.release_on_behalf_of(slot)

    try:
        async with trio.open_nursery() as outer:
            outer.start_soon(pace.watch, key)
            async with trio.open_nursery() as nursery:
                for start, end in pieces:  # in order
                    slot = object()
                    await pace.width.acquire_on_behalf_of(slot)
                    if not still_wanted():
                        pace.width.release_on_behalf_of(slot)
                        break
                    nursery.start_soon(one, start, end, slot)
            outer.cancel_scope.cancel()  # all arrived: stop the watch
    except BaseExceptionGroup as group:
        raise _first_error(group) from None


class _Pace:
    """How many GETs of one fetch are in flight, and its time limit (trio thread only).

    One GET at first, twice as many after each arrival, up to ``ceiling``. The time
    limit restarts at each arrival. When it passes with several GETs in flight, they
    may only be sharing a slow link: the ceiling halves and they get one more period
    (no request is abandoned); with one GET in flight it is a ``FetchTimeout``. So a
    dead endpoint fails a fetch within ``timeout`` × (1 + log2(parallel))."""

    def __init__(self, timeout: float, ceiling: int, start: int = 1) -> None:
        self.timeout = timeout
        self.ceiling = ceiling
        self.width = trio.CapacityLimiter(min(start, ceiling))
        self.deadline = trio.current_time() + timeout

    def arrived(self) -> None:
        self.deadline = trio.current_time() + self.timeout
        self.width.total_tokens = min(self.ceiling, self.width.total_tokens * 2)

    async def watch(self, key: str) -> None:
        while True:
            await trio.sleep_until(self.deadline)
            if trio.current_time() < self.deadline:
                continue  # something arrived meanwhile
            if self.ceiling > 1 and self.width.borrowed_tokens > 1:
                self.ceiling //= 2
                self.width.total_tokens = self.ceiling
                self.deadline = trio.current_time() + self.timeout
                continue
            raise FetchTimeout(f"GET {key!r}: no chunk arrived within {self.timeout:g}s")


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The error to report for a failed fetch: a changed object first, then any store
    error, then anything else; a group of cancellations only is re-raised as is."""
    leaves: list[BaseException] = []

    def walk(g: BaseExceptionGroup) -> None:
        for exc in g.exceptions:
            walk(exc) if isinstance(exc, BaseExceptionGroup) else leaves.append(exc)

    walk(group)
    real = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    if not real:
        return group
    for kind in (PreconditionFailedError, StoreError):
        for e in real:
            if isinstance(e, kind):
                return e
    return real[0]
