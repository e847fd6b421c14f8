"""``DueQueue``: when each queued item of the write-back queue is due, ordered by time.

A mapping item → due time (the reconciler and ``status`` read and write it like a
dict) with a heap beside it, so that the scheduler finds what is due without
sorting the whole queue at every wake-up: a program creating thousands of files
wakes the scheduler once per close, and each wake-up costs O(k log n) for the k
items due, not O(n log n).

Invariant: for every item in the mapping, the heap holds an entry with its current
(time, sequence number); heap entries whose sequence number is no longer the
item's are stale and skipped (they are dropped when reached, and the heap is
rebuilt when stale entries outnumber live ones). Trio thread only.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator, MutableMapping

from .items import Item


class DueQueue(MutableMapping[Item, float]):
    """Item → due time, with ``pop_due`` and ``next_time`` in time order."""

    def __init__(self) -> None:
        self._when: dict[Item, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, Item]] = []
        self._seq = itertools.count()

    def __getitem__(self, item: Item) -> float:
        return self._when[item][0]

    def __setitem__(self, item: Item, when: float) -> None:
        seq = next(self._seq)
        self._when[item] = (when, seq)
        heapq.heappush(self._heap, (when, seq, item))
        if len(self._heap) > 2 * len(self._when) + 64:
            self._heap = [(w, s, i) for i, (w, s) in self._when.items()]
            heapq.heapify(self._heap)

    def __delitem__(self, item: Item) -> None:
        del self._when[item]  # its heap entry is stale from now on

    def __iter__(self) -> Iterator[Item]:
        return iter(self._when)

    def __len__(self) -> int:
        return len(self._when)

    def _live_top(self) -> tuple[float, int, Item] | None:
        while self._heap:
            _when, seq, item = self._heap[0]
            cur = self._when.get(item)
            if cur is not None and cur[1] == seq:
                return self._heap[0]
            heapq.heappop(self._heap)
        return None

    def pop_due(self, now: float) -> list[tuple[Item, float]]:
        """Remove and return every item due at ``now`` (earliest first)."""
        out: list[tuple[Item, float]] = []
        while (top := self._live_top()) is not None and top[0] <= now:
            heapq.heappop(self._heap)
            del self._when[top[2]]
            out.append((top[2], top[0]))
        return out

    def next_time(self) -> float:
        """When the earliest item is due (``inf`` when the queue is empty)."""
        top = self._live_top()
        return math.inf if top is None else top[0]
