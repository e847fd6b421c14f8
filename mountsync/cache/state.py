"""The derived state of a cache item (pure).

A file's sync state is not stored as such: it follows from the journal row's
fields (``base_etag``, ``dirty_gen``/``uploaded_gen``, ``settled``) and, for
UPLOADING, from whether an upload of it is in flight. ``item_state`` is the one
place that combines them; callers ask ``state.local_wins`` instead of repeating
flag combinations.
"""

from __future__ import annotations

import enum


class ItemState(enum.Enum):
    """Where a cached entry stands against the bucket (first match wins, in this order)."""

    UPLOADING = "uploading"  # an upload of its data is in flight (known only to the cache items)
    LOCAL_ONLY = "local-only"  # based on no bucket version: created here (or moved to a new key)
    DIRTY = "dirty"  # based on a bucket version and changed here since its last upload
    UNSETTLED = "unsettled"  # created here and uploaded early (sync / --fsync-upload) while open
    CLEAN = "clean"  # the bucket holds exactly the version it is based on

    @property
    def local_wins(self) -> bool:
        """The cache holds something the bucket lacks: listings and HEADs must not replace it."""
        return self in (ItemState.UPLOADING, ItemState.LOCAL_ONLY, ItemState.DIRTY)


def item_state(*, has_base: bool, pending: bool, settled: bool, uploading: bool = False) -> ItemState:
    """The state of an entry with these persisted facts.

    ``settled`` is kept as a fact of its own as well: a created file that was uploaded
    early and then written again is DIRTY, and still not settled (docs/SEMANTICS.md,
    the delete rule)."""
    if uploading:
        return ItemState.UPLOADING
    if not has_base:
        return ItemState.LOCAL_ONLY
    if pending:
        return ItemState.DIRTY
    if not settled:
        return ItemState.UNSETTLED
    return ItemState.CLEAN
