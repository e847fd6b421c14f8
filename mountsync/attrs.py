"""Pure conversion between file attributes and object user metadata.

Header names follow s3fs (``x-amz-meta-mode``, ``-uid``, ``-gid``, ``-mtime``)
so a bucket written by s3fs or rclone shows the right attributes and vice versa.

- ``mode`` is the full ``st_mode`` in decimal (file-type bits included), as s3fs writes it.
- ``mtime`` is whole seconds (what s3fs parses); rclone writes a decimal
  fraction, which is accepted on read. Sub-second precision travels in our own
  ``mtime-ns`` (integer nanoseconds) and wins when it agrees with ``mtime``
  to the second (if it disagrees, another tool rewrote ``mtime`` after us).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation


@dataclass(frozen=True)
class Defaults:
    uid: int
    gid: int
    file_mode: int  # permission bits only
    dir_mode: int


@dataclass(frozen=True)
class Attrs:
    mode: int  # full st_mode
    uid: int
    gid: int
    mtime_ns: int


def to_metadata(a: Attrs) -> dict[str, str]:
    return {
        "mode": str(a.mode),
        "uid": str(a.uid),
        "gid": str(a.gid),
        "mtime": str(a.mtime_ns // 1_000_000_000),
        "mtime-ns": str(a.mtime_ns),
    }


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _mtime_ns(meta: dict[str, str], fallback_ns: int) -> int:
    secs_text = meta.get("mtime")
    ns = _int(meta.get("mtime-ns"))
    secs_ns: int | None = None
    if secs_text is not None:
        try:
            secs_ns = int(Decimal(secs_text.strip()) * 1_000_000_000)
        except (InvalidOperation, ValueError):
            secs_ns = None
    if ns is not None and (secs_ns is None or secs_ns // 1_000_000_000 == ns // 1_000_000_000):
        return ns
    if secs_ns is not None:
        return secs_ns
    return fallback_ns


def from_metadata(meta: dict[str, str] | None, kind: int, last_modified: float,
                  defaults: Defaults) -> Attrs:
    """Attributes of an object. ``kind`` is ``stat.S_IFREG``/``S_IFDIR``/``S_IFLNK``;
    the stored mode's type bits are ignored when they contradict ``kind`` except
    that a regular object whose mode says symlink *is* a symlink (see ``kind_from_metadata``)."""
    meta = meta or {}
    fallback_ns = int(last_modified * 1_000_000_000)
    perm_default = defaults.dir_mode if kind == stat.S_IFDIR else defaults.file_mode
    if kind == stat.S_IFLNK:
        perm_default = 0o777
    mode = _int(meta.get("mode"))
    perm = stat.S_IMODE(mode) if mode is not None else perm_default
    uid = _int(meta.get("uid"))
    gid = _int(meta.get("gid"))
    return Attrs(
        mode=kind | perm,
        uid=defaults.uid if uid is None else uid,
        gid=defaults.gid if gid is None else gid,
        mtime_ns=_mtime_ns(meta, fallback_ns),
    )


def kind_from_metadata(meta: dict[str, str] | None) -> int:
    """``S_IFLNK`` when an object's stored mode marks it as a symlink (s3fs style), else ``S_IFREG``."""
    mode = _int((meta or {}).get("mode"))
    if mode is not None and stat.S_ISLNK(mode):
        return stat.S_IFLNK
    return stat.S_IFREG
