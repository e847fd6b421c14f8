"""A set of byte ranges, kept as sorted disjoint half-open intervals (pure)."""

from __future__ import annotations

import bisect


class RangeSet:
    """Sorted, disjoint, non-adjacent ``[start, end)`` intervals.

    Not thread-safe; owned by one file node, used on the trio loop only.
    """

    __slots__ = ("_starts", "_ends")

    def __init__(self, ranges: list[tuple[int, int]] | None = None) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for s, e in ranges or ():
            self.add(s, e)

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        i = bisect.bisect_left(self._ends, start)  # first interval ending at/after start
        j = bisect.bisect_right(self._starts, end)  # first interval starting after end
        if i < j:
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]

    def remove_from(self, offset: int) -> None:
        """Forget everything at or beyond ``offset`` (truncate)."""
        i = bisect.bisect_left(self._ends, offset + 1)
        del self._starts[i + 1:]
        del self._ends[i + 1:]
        if i < len(self._starts):
            if self._starts[i] >= offset:
                del self._starts[i]
                del self._ends[i]
            else:
                self._ends[i] = offset

    def contains(self, start: int, end: int) -> bool:
        if end <= start:
            return True
        i = bisect.bisect_right(self._starts, start) - 1
        return i >= 0 and self._ends[i] >= end

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        """The parts of ``[start, end)`` not in the set, in order."""
        out: list[tuple[int, int]] = []
        pos = start
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while pos < end and i < len(self._starts):
            s, e = self._starts[i], self._ends[i]
            if e <= pos:
                i += 1
                continue
            if s >= end:
                break
            if s > pos:
                out.append((pos, s))
            pos = max(pos, e)
            i += 1
        if pos < end:
            out.append((pos, end))
        return out

    def total(self) -> int:
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def to_list(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))

    def clear(self) -> None:
        self._starts.clear()
        self._ends.clear()

    def __repr__(self) -> str:
        return f"RangeSet({self.to_list()})"
