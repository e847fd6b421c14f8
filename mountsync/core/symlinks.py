"""Symlink objects (s3fs style: the stored mode says symlink, the body is the target), and
the file type of an object (``object_kind``: FIFOs, sockets and devices are empty objects).

An object is taken as a symlink only if its body can be a target: at most
PATH_MAX - 1 bytes. A larger object whose metadata says "symlink" is shown as a
regular file and never read on lookup, so nobody who can write to the bucket
can make a lookup download an object of arbitrary size. The target is read
with the same chunked, timed, conditional fetch as any object data.
"""

from __future__ import annotations

import errno
import logging
import stat

from .. import attrs as attrs_mod
from ..backend.base import ObjectInfo, StoreError
from ..backend.bucket import Bucket
from ..cache.fetch import fetch_chunks
from ..errors import FsError

log = logging.getLogger("mountsync.core")

SYMLINK_MAX = 4095  # PATH_MAX (4096) less the terminating NUL: the longest target


def object_kind(metadata: dict[str, str] | None, size: int) -> int:
    """Pure: the file type an object of this metadata and size stands for. A symlink's
    body is its target (at most ``SYMLINK_MAX`` bytes); a FIFO, socket or device is an
    empty object. Anything else whose metadata claims such a type is a regular file."""
    kind = attrs_mod.kind_from_metadata(metadata)
    if kind == stat.S_IFLNK:
        return kind if size <= SYMLINK_MAX else stat.S_IFREG
    if kind in attrs_mod.SPECIAL_KINDS:
        return kind if size == 0 else stat.S_IFREG
    return stat.S_IFREG


def is_symlink_object(info: ObjectInfo) -> bool:
    """Pure: does this object stand for a symlink?"""
    return object_kind(info.metadata, info.size) == stat.S_IFLNK


async def read_target(store: Bucket, key: str, info: ObjectInfo, timeout: float) -> str:
    """The target of a symlink object (version ``info.etag``); EIO if it cannot be read now."""
    buf = bytearray(info.size)

    def land(body: bytes, at: int) -> None:
        buf[at:at + len(body)] = body

    try:
        await fetch_chunks(store, key, info.etag, [(0, info.size)], land, timeout=timeout)
    except StoreError as exc:
        log.warning("cannot read symlink %r from the bucket: %s", key, exc)
        raise FsError(errno.EIO, f"cannot read symlink {key!r}: {exc}") from None
    return bytes(buf).decode("utf-8", "surrogateescape")
