"""What Azure and GCS stores share where their services have no S3-style upload ids or
(here) versions: the multipart uploads this process started (``LocalUploads``), the
check of a completion's part list (``check_parts``), and versions as "the current object
only" (``CurrentVersionOnly``). Pure bookkeeping; no SDK.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from .base import (
    PIECE,
    InvalidRequestError,
    MultipartUpload,
    NotFoundError,
    ObjectInfo,
    VersionInfo,
    normalize_metadata,
)


class LocalUploads:
    """Uploads started by this process: id → (key, metadata, started). Thread-safe (its
    own lock). The services keep the parts; this remembers what the protocol's upload id
    stands for, so an id from another process (or before a restart) is unknown."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._uploads: dict[str, tuple[str, dict[str, str], float]] = {}  # guarded by _lock

    def start(self, key: str, metadata: dict[str, str] | None) -> str:
        upload_id = uuid.uuid4().hex[:16]
        with self._lock:
            self._uploads[upload_id] = (key, normalize_metadata(metadata), time.time())
        return upload_id

    def metadata(self, key: str, upload_id: str) -> dict[str, str]:
        """The upload's metadata; NotFoundError if ``upload_id`` is not an upload of ``key``."""
        with self._lock:
            upload = self._uploads.get(upload_id)
        if upload is None or upload[0] != key:
            raise NotFoundError(f"no upload {upload_id!r} for {key!r}", code="NoSuchUpload")
        return upload[1]

    def end(self, upload_id: str) -> None:
        with self._lock:
            self._uploads.pop(upload_id, None)

    def listing(self, prefix: str) -> list[MultipartUpload]:
        with self._lock:
            found = [MultipartUpload(key=k, upload_id=uid, initiated=t)
                     for uid, (k, _m, t) in self._uploads.items() if k.startswith(prefix)]
        return sorted(found, key=lambda u: (u.key, u.initiated))


def check_parts(parts: list[tuple[int, str]]) -> None:
    """A completion's part list: not empty, numbers ascending without repeats (as S3 wants)."""
    if not parts:
        raise InvalidRequestError("no parts given", code="MalformedXML")
    numbers = [n for n, _ in parts]
    if numbers != sorted(set(numbers)):
        raise InvalidRequestError("parts not in ascending order", code="InvalidPartOrder")


class CurrentVersionOnly:
    """The version requests for a store that does not ask for versions: the current object
    is the one version, called "null" as S3 calls the version of an unversioned bucket."""

    head: Callable[[str], ObjectInfo]
    get_into: Callable[..., int]

    def versioning(self) -> str:
        return ""

    def list_versions(self, key: str) -> list[VersionInfo]:
        try:
            info = self.head(key)
        except NotFoundError:
            return []
        return [VersionInfo(key=key, version_id="null", size=info.size, etag=info.etag,
                            last_modified=info.last_modified, latest=True)]

    def get_version_into(self, key: str, version_id: str, sink: Callable[[bytes, int], object],
                         piece: int = PIECE) -> int:
        if version_id != "null":
            raise NotFoundError(f"{key!r} has no version {version_id!r}", code="NoSuchVersion")
        size = self.head(key).size
        return self.get_into(key, 0, size, None, sink, piece) if size else 0
