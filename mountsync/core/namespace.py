"""Directory listings: the bucket's view of one directory, and how it merges with local state.

``parse_listing`` and ``merge_children`` are pure; the listing itself comes from
``Bucket.list_all`` (which owns pagination).

Rules (SPEC §3):
- A common prefix is a directory; a zero-byte key ending in ``/`` is a marker.
- A key that cannot be a POSIX name is not shown (reported to ``on_invalid``).
- When key ``a`` and keys ``a/...`` both exist, the directory wins and the
  file ``a`` is not reachable through the mount (reported as a clash).
- Local state wins over the listing: entries in the journal are shown even if
  the bucket lacks them (not yet uploaded), and tombstoned paths are hidden
  even if the bucket still has them (delete not yet done).
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import keys
from ..backend.base import ObjectInfo

RELIST_SPACING = 10  # a big directory is relisted in the background at most once per 10× its listing time


def relist_due(listed_at: float, took: float, ttl: float, now: float) -> bool:
    """Is a background relisting of a big directory due? Once its listing is older than the
    TTL and than ``RELIST_SPACING`` times what that listing took: a directory whose listing
    takes minutes (100,000 names on a slow server) is then relisted at most a tenth of the
    time, instead of back to back while `ls -l` looks each of its names up after the TTL,
    each relisting competing with the metadata HEADs for the server."""
    return now - listed_at >= max(ttl, RELIST_SPACING * took)


@dataclass(frozen=True)
class RemoteChild:
    name: str
    kind: int  # S_IFDIR or S_IFREG; symlinks are only known after HEAD
    info: ObjectInfo | None  # the object, for files


@dataclass(frozen=True)
class LocalChild:
    name: str
    kind: int


def parse_listing(
    dir_prefix: str,
    objects: Iterable[ObjectInfo],
    prefixes: Iterable[str],
    on_invalid: Callable[[str, str], None] = lambda key, why: None,
) -> tuple[dict[str, RemoteChild], bool]:
    """Children of the directory listed with ``dir_prefix``, and whether its marker exists."""
    out: dict[str, RemoteChild] = {}
    marker = False
    for p in prefixes:
        name = keys.listing_name(dir_prefix, p)
        if name is None:
            on_invalid(p, "not a valid POSIX name")
            continue
        out[name] = RemoteChild(name, stat.S_IFDIR, None)
    for obj in objects:
        if obj.key == dir_prefix:
            marker = True
            continue
        if obj.key.endswith("/"):
            # "a//" style keys: an empty segment; never shown
            on_invalid(obj.key, "empty path segment")
            continue
        name = keys.listing_name(dir_prefix, obj.key)
        if name is None:
            on_invalid(obj.key, "not a valid POSIX name")
            continue
        if name in out:
            on_invalid(obj.key, "a directory of the same name hides this object")
            continue
        out[name] = RemoteChild(name, stat.S_IFREG, obj)
    return out, marker


def merge_children(
    remote: dict[str, RemoteChild],
    local: Iterable[LocalChild],
    hidden: Iterable[str],
) -> dict[str, int]:
    """Names shown in a directory and their kinds: (remote − hidden) ⊕ local."""
    out = {name: rc.kind for name, rc in remote.items()}
    for name in hidden:
        out.pop(name, None)
    for lc in local:
        out[lc.name] = lc.kind
    return out
