"""The write-back queue's timetable: when each item is due, earliest first.

``DueQueue`` is a mapping ``Item → due time`` (what the reconciler reads and
writes) backed by a heap, so that taking the next due item costs O(log n)
whatever the queue's length: with 10,000 items queued, starting one must not
look at the other 9,999 (sorting the whole queue at every wake-up made a long
queue quadratic).

Invariant: every key of ``_entries`` has exactly one *live* heap entry, the one
whose ``(when, seq)`` equals ``_entries[item]``; other heap entries are stale
(the item was rescheduled or removed) and are dropped when they surface, or all
at once when they outnumber the live ones. Items with the same due time come out
in the order they were scheduled. Single-threaded (the trio thread).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import overload

from .items import Item


class DueQueue:
    def __init__(self) -> None:
        self._entries: dict[Item, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, Item]] = []
        self._seq = itertools.count()

    # -- mapping
    def __setitem__(self, item: Item, when: float) -> None:
        seq = next(self._seq)
        self._entries[item] = (when, seq)
        heapq.heappush(self._heap, (when, seq, item))
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._compact()

    def __getitem__(self, item: Item) -> float:
        return self._entries[item][0]

    def __delitem__(self, item: Item) -> None:
        del self._entries[item]

    def __contains__(self, item: object) -> bool:
        return item in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"DueQueue({dict(self.items())!r})"

    @overload
    def get(self, item: Item) -> float | None: ...
    @overload
    def get(self, item: Item, default: float) -> float: ...

    def get(self, item: Item, default: float | None = None) -> float | None:
        entry = self._entries.get(item)
        return default if entry is None else entry[0]

    def pop(self, item: Item, default: float | None = None) -> float | None:
        entry = self._entries.pop(item, None)
        return default if entry is None else entry[0]

    def setdefault(self, item: Item, when: float) -> float:
        if item not in self._entries:
            self[item] = when
        return self._entries[item][0]

    def items(self) -> list[tuple[Item, float]]:
        return [(item, when) for item, (when, _seq) in self._entries.items()]

    # -- the timetable
    def first(self) -> tuple[Item, float] | None:
        """The earliest item and its due time (None when empty); O(log n) amortised."""
        while self._heap:
            when, seq, item = self._heap[0]
            if self._entries.get(item) == (when, seq):
                return item, when
            heapq.heappop(self._heap)
        return None

    def _compact(self) -> None:
        self._heap = [(when, seq, item) for item, (when, seq) in self._entries.items()]
        heapq.heapify(self._heap)
