"""Eviction of clean cached data beyond ``--max-cache-size`` (least recently used first).

``choose_evictions`` is the pure decision; ``evict`` is the thin shell that
drops the data files. Dirty data (pending uploads) is never evicted, nor is a
file that is open. An evicted entry stays in the journal (its base ETag and
attributes are still right); only its bytes go, to be fetched again on demand.
"""

from __future__ import annotations

from dataclasses import dataclass

from .item import Items


@dataclass(frozen=True)
class Candidate:
    entry_id: int
    bytes_on_disk: int
    last_used: float


def choose_evictions(candidates: list[Candidate], usage: int, limit: int) -> list[int]:
    """Ids to evict, least recently used first, until ``usage`` is at most ``limit``."""
    out: list[int] = []
    for c in sorted(candidates, key=lambda c: c.last_used):
        if usage <= limit:
            break
        if c.bytes_on_disk <= 0:
            continue
        out.append(c.entry_id)
        usage -= c.bytes_on_disk
    return out


def evict(items: Items, usage: int, limit: int) -> int:
    """Bring the cache (now ``usage`` bytes) under ``limit`` if clean data allows;
    returns bytes freed.

    Runs on the trio thread (it must not interleave with opens of the same entries)."""
    if usage <= limit:
        return 0
    candidates = []
    for e in items.journal.clean_cached():
        entry_id = e.saved_id
        if items.is_open(entry_id):
            continue  # open right now
        size = items.data.allocated(entry_id)
        if size:
            candidates.append(Candidate(entry_id, size, e.last_used))
    freed = 0
    for entry_id in choose_evictions(candidates, usage, limit):
        freed += items.data.allocated(entry_id)
        items.evict(entry_id)
    return freed
