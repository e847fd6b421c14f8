"""What the write-back queue holds: typed items, and what a run carries over.

An item names *what* to do, never the data: the reconciler reads the journal
when the item runs. Items are frozen (hashable; they key the queue's dicts).

- ``Upload(entry_id)``: upload the entry's current generation.
- ``Delete(path)``: carry out the tombstone at ``path``.
- ``Abort(upload_id)``: abort a multipart upload recorded in the journal that no
  upload of this process is using.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..cache.journal import Journal


@dataclass(frozen=True, slots=True)
class Upload:
    entry_id: int


@dataclass(frozen=True, slots=True)
class Delete:
    path: str


@dataclass(frozen=True, slots=True)
class Abort:
    upload_id: str


Item = Upload | Delete | Abort


@dataclass
class SyncResult:
    ok: bool
    done: int = 0
    failed: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "done": self.done, "failed": self.failed, "remaining": self.remaining}


@dataclass(frozen=True)
class Carried:
    """What an earlier run left to do, read from the journal before this run serves anything."""

    uploads: tuple[int, ...] = ()
    deletes: tuple[str, ...] = ()
    unsettled: tuple[int, ...] = ()
    aborts: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.uploads) + len(self.deletes)


def carried_over(journal: Journal) -> Carried:
    return Carried(
        uploads=tuple(journal.pending_ids()),
        deletes=tuple(t.path for t in journal.tombstones()),
        unsettled=tuple(journal.unsettled_ids()),
        aborts=tuple(r.upload_id for r in journal.multipart_uploads()),
    )
