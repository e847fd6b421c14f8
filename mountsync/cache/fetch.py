"""Chunked fetches: object bytes brought into a file in bounded ranged GETs.

Every path that downloads object content uses ``fetch_chunks``: reads of
uncached ranges (with read-ahead), the fill before the first write to a partly
cached file, truncation of such a file, the copy of the bucket's version a
conflict strategy sets aside, and the target of a symlink object. So the
memory a download needs is bounded (at most ``parallel`` chunks of ``chunk``
bytes in flight), whatever the size of the object, and the time limit applies
to each chunk, not to the whole object.

Contract:
- ``missing`` is cut into chunks of at most ``chunk`` bytes (``plan_chunks``,
  pure); up to ``parallel`` are fetched at once, each a GET conditional on
  ``etag`` (``If-Match``) under its own timeout.
- Each chunk is handed to ``land(body, offset)`` as soon as it arrives (on the
  trio thread), which writes it and records it as present; a failure after
  that leaves the landed chunks in place, so a retry fetches only the rest.
- ``still_wanted()`` is checked before each request and before each landing;
  when it turns false (the file changed, was dropped, or became complete) the
  fetch stops quietly.
- Errors: ``FetchTimeout`` (a chunk did not arrive within ``timeout``; a
  ``TransientError``), ``ShortRead`` (transient), or the store's own
  ``StoreError`` (``PreconditionFailedError`` when the object changed). The
  first error stops the other chunks.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..backend.aio import AsyncStore
from ..backend.base import PreconditionFailedError, StoreError, TransientError

CHUNK = 8 * 1024 * 1024
PARALLEL = 4
DEFAULT_TIMEOUT = 30.0


class FetchTimeout(TransientError):
    """One ranged GET did not complete within its timeout."""


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


async def fetch_chunks(store: AsyncStore, key: str, etag: str | None, missing: list[tuple[int, int]],
                       land: Callable[[bytes, int], object], *, timeout: float = DEFAULT_TIMEOUT,
                       chunk: int = CHUNK, parallel: int = PARALLEL,
                       still_wanted: Callable[[], bool] = lambda: True) -> None:
    """Fetch ``missing`` ranges of ``key`` (version ``etag``) into ``land``; see the module doc."""
    pieces = plan_chunks(missing, chunk)
    if not pieces:
        return
    slots = trio.Semaphore(max(1, parallel))

    async def one(start: int, end: int) -> None:
        async with slots:
            if not still_wanted():
                return
            with trio.move_on_after(timeout) as scope:
                body = await store.get(key, start, end, if_match=etag)
            if scope.cancelled_caught:
                raise FetchTimeout(f"GET {key!r} bytes {start}-{end - 1}: no answer within {timeout:g}s")
            if len(body) != end - start:
                raise ShortRead(f"GET {key!r} bytes {start}-{end - 1}: got {len(body)} bytes")
            if still_wanted():
                land(body, start)

    if len(pieces) == 1:
        await one(*pieces[0])
        return
    try:
        async with trio.open_nursery() as nursery:
            for start, end in pieces:
                nursery.start_soon(one, start, end)
    except BaseExceptionGroup as group:
        raise _first_error(group) from None


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
