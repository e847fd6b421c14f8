"""Pure conversion between file attributes and object user metadata.

Header names follow s3fs (``x-amz-meta-mode``, ``-uid``, ``-gid``, ``-mtime``)
so a bucket written by s3fs or rclone shows the right attributes and vice versa.

- ``mode`` is the full ``st_mode`` in decimal (file-type bits included), as s3fs writes it.
- ``rdev`` is a device node's ``st_rdev`` in decimal (s3fs: ``x-amz-meta-rdev``); FIFOs,
  sockets and devices are empty objects whose ``mode`` carries the file type.
- ``mtime`` is whole seconds (what s3fs parses); rclone writes a decimal
  fraction, which is accepted on read. Sub-second precision travels in our own
  ``mtime-ns`` (integer nanoseconds) and wins when it agrees with ``mtime``
  to the second (if it disagrees, another tool rewrote ``mtime`` after us).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# file types stored as an empty object whose mode carries the type (s3fs style)
SPECIAL_KINDS = (stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR, stat.S_IFBLK)


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


def to_metadata(a: Attrs, rdev: int = 0) -> dict[str, str]:
    meta = {
        "mode": str(a.mode),
        "uid": str(a.uid),
        "gid": str(a.gid),
        "mtime": str(a.mtime_ns // 1_000_000_000),
        "mtime-ns": str(a.mtime_ns),
    }
    if stat.S_IFMT(a.mode) in (stat.S_IFCHR, stat.S_IFBLK):
        meta["rdev"] = str(rdev)
    return meta


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
    """The file type an object's stored mode gives it (s3fs style): ``S_IFLNK`` or one of
    ``SPECIAL_KINDS``; ``S_IFREG`` otherwise (no mode, a regular or a directory mode)."""
    mode = _int((meta or {}).get("mode"))
    if mode is not None and (stat.S_ISLNK(mode) or stat.S_IFMT(mode) in SPECIAL_KINDS):
        return stat.S_IFMT(mode)
    return stat.S_IFREG


def rdev_from_metadata(meta: dict[str, str] | None) -> int:
    """A device object's ``st_rdev`` (0 when absent or unreadable)."""
    rdev = _int((meta or {}).get("rdev"))
    return rdev if rdev is not None and rdev >= 0 else 0
