"""What the write-back queue looks like from outside: ``mountsync status`` (``status``)
and the state word of one item (``state_of``). Read-only views of a ``Reconciler``;
trio thread only, like the reconciler itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..cache.journal import Journal
from .items import Delete, Item, Upload
from .uploader import Uploader


class Reconciler(Protocol):
    """What these views read of ``reconciler.Reconciler`` (named here, so that this module
    does not import the one that imports it). Read-only."""

    @property
    def journal(self) -> Journal: ...
    @property
    def uploader(self) -> Uploader: ...
    @property
    def inflight(self) -> Mapping[Item, object]: ...
    @property
    def stopped(self) -> Mapping[Item, str]: ...
    @property
    def writers(self) -> Mapping[int, int]: ...
    @property
    def completed(self) -> int: ...
    @property
    def restarts(self) -> int: ...

    def describe(self, item: Item) -> str: ...


def status(rec: Reconciler) -> dict:
    pending = []
    for e in rec.journal.pending():
        if e.id is None:
            continue
        item = Upload(e.id)
        sent, total = rec.uploader.progress.get(e.id, (0, e.size))
        pending.append({
            "path": e.path, "size": e.size, "state": state_of(rec, item),
            "error": e.error, "attempts": e.attempts,
            "next_attempt": e.next_attempt or None, "sent": sent, "total": total,
            "renamed_from": e.copy_from,  # a rename whose copy in the bucket is still to do
        })
    deletes = [{"path": t.path, "state": state_of(rec, Delete(t.path)), "error": t.error,
                "attempts": t.attempts} for t in rec.journal.tombstones()]
    conflicts = rec.journal.conflicts()
    return {
        "pending_files": len(pending),
        "pending_bytes": sum(p["size"] for p in pending),
        "pending_renames": sum(1 for p in pending if p["renamed_from"] is not None),
        "pending": pending,
        "pending_deletes": deletes,
        "errors": [{"item": rec.describe(i), "error": r} for i, r in rec.stopped.items()],
        "conflicts": len(conflicts),
        "conflicts_open": sum(1 for c in conflicts if not c.resolved),
        "uploads_done": rec.completed,
        "multipart_to_abort": sum(1 for r in rec.journal.multipart_uploads()
                                  if r.upload_id not in rec.uploader.active_uploads),
        "worker_restarts": rec.restarts,
    }


def state_of(rec: Reconciler, item: Item) -> str:
    """uploading/deleting/aborting (in flight), stopped, open (a writer has it), queued."""
    if item in rec.inflight:
        return "uploading" if isinstance(item, Upload) else "deleting" if isinstance(item, Delete) else "aborting"
    if item in rec.stopped:
        return "stopped"
    if isinstance(item, Upload) and rec.writers[item.entry_id] > 0:
        return "open"
    return "queued"
