"""What one ``sync`` still waits for, rechecked as items finish.

A ``sync`` of N targets must not read the journal for all N at every finished
item (that made ``sync`` and ``unmount`` of a long queue quadratic). ``Remaining``
rechecks only the items the reconciler reports finished since the last look,
and everything now and then (every ``max(8, n // 8)`` looks, and after
``recheck_all``): an item satisfied some other way (its entry removed, say) is
still noticed, at an amortised cost of a few checks per look.

Single-threaded (the trio thread); the reconciler calls ``finished`` for each item
it completes and ``recheck_all`` when it loses track (its loop restarted).
"""

from __future__ import annotations

from collections.abc import Callable, Container

from ..cache.journal import Journal
from .items import Abort, Item, Upload


def satisfied(journal: Journal, item: Item, gen: int) -> bool:
    """``item`` needs nothing more: its entry reached generation ``gen`` in the bucket
    (or is gone), its multipart upload was aborted, its tombstone carried out."""
    if isinstance(item, Upload):
        e = journal.get_by_id(item.entry_id)
        return e is None or e.uploaded_gen >= gen
    if isinstance(item, Abort):
        return journal.multipart_upload(item.upload_id) is None
    return journal.tombstone(item.path) is None


class Remaining:
    def __init__(self, targets: dict[Item, int]) -> None:
        self.left = dict(targets)  # item → the generation it must reach
        self._finished: set[Item] = set()
        self._full = True
        self._looks_since_full = 0

    def finished(self, item: Item) -> None:
        if item in self.left:
            self._finished.add(item)

    def recheck_all(self) -> None:
        self._full = True

    def refresh(self, satisfied: Callable[[Item, int], bool]) -> None:
        """Drop the targets now satisfied (see the module doc for which are looked at)."""
        if self._full or self._looks_since_full >= max(8, len(self.left) // 8):
            check = list(self.left)
            self._full, self._looks_since_full = False, 0
        else:
            check = [i for i in self._finished if i in self.left]
            self._looks_since_full += 1
        self._finished.clear()
        for item in check:
            if satisfied(item, self.left[item]):
                del self.left[item]

    def all_stopped(self, stopped: Container[Item], stopped_count: int) -> bool:
        """Every target left has stopped (a permanent error); cheap unless it may be true."""
        return stopped_count >= len(self.left) and all(i in stopped for i in self.left)
