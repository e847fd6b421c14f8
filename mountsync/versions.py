"""Older versions of a file on a versioned bucket: the daemon's side of ``mountsync
versions`` and ``mountsync restore``.

Listing asks the bucket (ListObjectVersions) about the file's key; nothing is cached.
Restoring is a normal write: the daemon fetches the version into a private file in the
cache dir (``restore/``, mode 0600) and the CLI copies it into the mount at the file's path,
so the bytes go through the write-back cache and the conflict rules like any other write
(a change by another writer that lands meanwhile is kept; see docs/SEMANTICS.md). The CLI
removes the file once copied; the daemon empties ``restore/`` when it starts, for a CLI
that was killed in between.

Runs on the trio thread (the control handler); the requests go through ``Bucket``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict

from .backend.base import StoreError
from .backend.bucket import Bucket

RESTORE_DIR = "restore"


def inside_path(raw: object) -> str | None:
    """The mount-relative path of a request ("a/b"), or None if it is empty or leaves the mount."""
    path = str(raw or "").strip("/")
    if not path or path == "." or any(part in ("", ".", "..") for part in path.split("/")):
        return None
    return path


async def list_versions(bucket: Bucket, path: str) -> dict:
    """{"ok", "key", "versioning", "versions": [VersionInfo as dicts, newest first]}."""
    key = bucket.key(path)
    try:
        state = await bucket.versioning()
        versions = await bucket.list_versions(key)
    except StoreError as exc:
        return {"ok": False, "error": f"cannot list the versions of {path}: {exc}"}
    return {"ok": True, "key": key, "versioning": state, "versions": [asdict(v) for v in versions]}


async def fetch_version(bucket: Bucket, path: str, version_id: str, cache_dir: str) -> dict:
    """The bytes of one version of ``path`` in a new private file: {"ok", "file", "size",
    "version"}; or {"ok": False, "error": one line}."""
    key = bucket.key(path)
    try:
        versions = await bucket.list_versions(key)
    except StoreError as exc:
        return {"ok": False, "error": f"cannot list the versions of {path}: {exc}"}
    chosen = [v for v in versions if v.version_id == version_id]
    if not chosen:
        return {"ok": False, "error": f"{path} has no version {version_id!r} in the bucket "
                                      f"(mountsync versions {path} lists them)"}
    if chosen[0].deleted:
        return {"ok": False, "error": f"version {version_id} of {path} is a delete marker (where the file was "
                                      "deleted): it has no bytes; pick an earlier version"}
    where = os.path.join(cache_dir, RESTORE_DIR)
    os.makedirs(where, mode=0o700, exist_ok=True)
    fd, file = tempfile.mkstemp(dir=where, prefix="version-")
    os.close(fd)
    try:
        size = await bucket.get_version_to(key, version_id, file)
    except StoreError as exc:
        os.unlink(file)
        return {"ok": False, "error": f"cannot read version {version_id} of {path}: {exc}"}
    except BaseException:
        os.unlink(file)
        raise
    return {"ok": True, "file": file, "size": size, "version": asdict(chosen[0])}


def clear_leftovers(cache_dir: str) -> None:
    """Remove version files a killed ``mountsync restore`` left behind."""
    shutil.rmtree(os.path.join(cache_dir, RESTORE_DIR), ignore_errors=True)
