"""Read-ahead decisions and the ranges of one file being fetched (trio thread only).

``plan_read`` (pure) decides, for one read, what must be present before it returns
(``need``) and what to fetch ahead of the reader in the background (``ahead``):

- A stream starts with a read at offset 0 or exactly where the last read of the
  file ended; within a stream, a read is *sequential* when it starts within
  ``SLACK`` of where the last one ended (the kernel sends read-ahead requests
  concurrently, so they may arrive slightly out of order). Anything else is
  *random*: it needs the
  ``RANDOM_BLOCK``-aligned blocks it touches, and nothing is fetched ahead.
- A sequential stream fetches ahead in ranges that grow ×8 from ``WINDOW_MIN`` up
  to ``WINDOW_MAX`` (1 → 8 → 64 → 256 MiB), each one streaming GET (up to
  ``cache.fetch.CHUNK``). The next range is asked for when the reader
  gets within half of the last range's size of the read-ahead edge, so one range
  is usually still arriving while the reader consumes the one before.

``Reader`` is the per-file state: the stream (last end, window, read-ahead edge),
the ranges some task is fetching right now (``inflight``), and a notification fired
at each landing and at the end of each fetch. A task that needs a range waits for
the fetch that covers it instead of asking again, so each range is fetched once.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio

from ..cache.ranges import RangeSet

KiB = 1024
MiB = 1024 * KiB
RANDOM_BLOCK = 64 * KiB
WINDOW_MIN = 1 * MiB
WINDOW_MAX = 256 * MiB
GROWTH = 8
SLACK = 256 * KiB


@dataclass(frozen=True)
class Stream:
    """Where the reader of a file is: the end of its last read (-1: none yet), the size of
    the last range fetched ahead (0: not a sequential stream) and the read-ahead edge."""

    last_end: int = -1
    window: int = 0
    ahead: int = 0


@dataclass(frozen=True)
class ReadPlan:
    stream: Stream
    need: tuple[int, int]
    ahead: tuple[int, int] | None  # a range to fetch in the background


def plan_read(s: Stream, offset: int, end: int, size: int) -> ReadPlan:
    """What the read of ``[offset, end)`` of a ``size``-byte file needs, and fetches ahead."""
    # within a stream, reads may come a little out of order
    in_stream = s.last_end - SLACK <= offset <= s.last_end + SLACK
    sequential = in_stream if s.window else offset in (0, s.last_end)
    if not sequential:
        start = offset - offset % RANDOM_BLOCK
        stop = min(size, -(-end // RANDOM_BLOCK) * RANDOM_BLOCK)
        return ReadPlan(Stream(end, 0, 0), (start, max(stop, end)), None)
    if s.window == 0:  # a new stream starts here
        window, edge, fresh = WINDOW_MIN, offset, True
    else:
        window, edge, fresh = s.window, max(s.ahead, offset), False
    last_end = max(end, s.last_end) if not fresh else end
    if edge >= size or (not fresh and edge - end >= window // 2):
        return ReadPlan(Stream(last_end, window, edge), (offset, end), None)
    if not fresh:
        window = min(window * GROWTH, WINDOW_MAX)
    stop = min(size, edge + window)
    return ReadPlan(Stream(last_end, window, stop), (offset, end), (edge, stop))


def subtract(ranges: list[tuple[int, int]], taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of ``ranges`` that none of ``taken`` covers, in order."""
    if not taken:
        return list(ranges)
    busy = RangeSet(taken)
    out: list[tuple[int, int]] = []
    for s, e in ranges:
        out.extend(busy.missing(s, e))
    return out


class Reader:
    """One regular file's read state (see the module doc); lives on its ``Node``."""

    __slots__ = ("stream", "inflight", "_changed", "scopes")

    def __init__(self) -> None:
        self.stream = Stream()
        self.inflight: list[tuple[int, int]] = []  # ranges some task is fetching now
        self._changed = trio.Event()
        # one per background read-ahead task of the open item; cancelled when it is closed
        self.scopes: set[trio.CancelScope] = set()

    def begin(self, ranges: list[tuple[int, int]]) -> None:
        self.inflight.extend(ranges)

    def end(self, ranges: list[tuple[int, int]]) -> None:
        for r in ranges:
            self.inflight.remove(r)
        self.notify()

    def notify(self) -> None:
        """Something landed or a fetch ended: waiters look again."""
        self._changed.set()
        self._changed = trio.Event()

    async def wait(self) -> None:
        await self._changed.wait()

    def stop_readahead(self) -> None:
        """The item is closed: cancel its read-ahead tasks and forget the stream."""
        for scope in self.scopes:
            scope.cancel()
        self.stream = Stream()
