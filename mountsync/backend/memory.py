"""An in-memory bucket with real S3 semantics, for tests and the model checker.

What it imitates (and the conformance suite checks against moto):

- ETag: hex MD5 of the body for PUT and copy; ``md5(concat(part md5s))-N`` for
  a completed multipart upload. No quotes.
- Conditions: ``If-None-Match: *`` on an existing key → PreconditionFailedError;
  ``If-Match`` with another ETag → PreconditionFailedError; ``If-Match`` on a
  missing key → NotFoundError (as S3 and moto answer 404 there). ``"*"`` as
  ``if_match`` means "any existing object".
- Ranged GET: ``[start, end)`` clipped at the object's end; a range starting at
  or past the end returns ``b""`` (S3 answers 416, which S3Store maps to the same).
  An empty range (``end <= start``) is answered like a HEAD and counted as "head".
- Listing: keys in code-point order (which equals UTF-8 byte order, S3's order),
  common prefixes collapsed and counted against ``max_keys`` (capped at 1000, as
  S3), an opaque continuation token.
- Multipart uploads are tracked until completed or aborted; part sizes are not
  checked (S3 and moto want 5 MiB for every part but the last). A failed
  condition on complete leaves the upload in place; the caller aborts it.
- Deleting a missing key succeeds; ``delete`` with ``if_match`` on a missing
  key → NotFoundError (as moto).
- ``bucket_exists=False`` makes every call raise BucketNotFoundError.
- Versions (``versioned=True``, or ``set_versioning``): every write keeps the versions
  before it and a delete leaves a delete marker, each with its own version id; without
  versioning (or suspended) a write replaces the version called "null", as S3 does.

Locking: one ``threading.Lock`` (``self._lock``) guards all bucket state
(``_objects``, ``_keys``, ``_uploads``). It is held for the whole of each
operation, never while calling out of this module, so operations are atomic
with respect to each other. ``stats`` has its own lock (``StoreStats``); it is
updated outside ``self._lock``.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .base import (
    PIECE,
    Body,
    BucketNotFoundError,
    InvalidRequestError,
    ListPage,
    MultipartUpload,
    NotFoundError,
    ObjectInfo,
    PreconditionFailedError,
    PutResult,
    StoreStats,
    VersionInfo,
    hand_over,
    normalize_etag,
    normalize_metadata,
)

MAX_LIST_KEYS = 1000
MAX_DELETE_KEYS = 1000


@dataclass
class _Object:
    data: bytes
    etag: str
    last_modified: float
    metadata: dict[str, str]
    version_id: str = "null"  # set by ``_store_locked``
    deleted: bool = False  # a delete marker (in ``_history`` only)


@dataclass
class _Upload:
    key: str
    metadata: dict[str, str]
    initiated: float
    parts: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # number → (etag, data)


def _read_body(body: Body) -> bytes:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)
    data = body.read()
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("body must be bytes or a binary file object")
    return bytes(data)


def _after(key: str) -> str:
    """The smallest string greater than ``key``."""
    return key + "\0"


def _after_prefix(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class MemoryStore:
    """An ObjectStore kept in a dict. Thread-safe; see the module docstring."""

    def __init__(self, bucket: str = "memory-bucket", *, bucket_exists: bool = True,
                 versioned: bool = False) -> None:
        self.bucket = bucket
        self.bucket_exists = bucket_exists
        self.stats = StoreStats()
        self._lock = threading.Lock()
        self._objects: dict[str, _Object] = {}  # guarded by _lock
        self._keys: list[str] = []  # sorted keys of _objects; guarded by _lock
        self._uploads: dict[str, _Upload] = {}  # guarded by _lock
        self._upload_ids = itertools.count(1)  # guarded by _lock
        self._versioning = "Enabled" if versioned else ""  # guarded by _lock
        self._history: dict[str, list[_Object]] = {}  # key → versions, oldest first; guarded by _lock
        self._version_ids = itertools.count(1)  # guarded by _lock

    # ------------------------------------------------------------ helpers

    def describe(self) -> str:
        return f"memory://{self.bucket}"

    def _check_bucket_locked(self) -> None:
        if not self.bucket_exists:
            raise BucketNotFoundError(f"bucket {self.bucket!r} does not exist", code="NoSuchBucket")

    def _keep_version_locked(self, key: str, obj: _Object) -> None:
        """Record ``obj`` (an object or a delete marker) as ``key``'s newest version."""
        versions = self._history.setdefault(key, [])
        if self._versioning == "Enabled":
            obj.version_id = f"v{next(self._version_ids):06d}"
        else:  # replaces the "null" version
            obj.version_id = "null"
            versions[:] = [v for v in versions if v.version_id != "null"]
        versions.append(obj)

    def _store_locked(self, key: str, obj: _Object) -> None:
        self._keep_version_locked(key, obj)
        if key not in self._objects:
            if not self._keys or key > self._keys[-1]:
                self._keys.append(key)
            else:
                bisect.insort(self._keys, key)
        self._objects[key] = obj

    def _remove_locked(self, key: str) -> None:
        if key in self._objects:
            if self._versioning:
                self._keep_version_locked(key, _Object(b"", "", time.time(), {}, deleted=True))
            else:
                del self._history[key]
        if self._objects.pop(key, None) is not None:
            i = bisect.bisect_left(self._keys, key)
            del self._keys[i]

    def _object_locked(self, key: str) -> _Object:
        """The object at ``key``, or NotFoundError (the bucket checked first)."""
        self._check_bucket_locked()
        obj = self._objects.get(key)
        if obj is None:
            raise NotFoundError(f"{key!r} does not exist", code="NoSuchKey")
        return obj

    def _check_conditions_locked(
        self, key: str, if_match: str | None, if_none_match: bool
    ) -> None:
        current = self._objects.get(key)
        if if_none_match and current is not None:
            raise PreconditionFailedError(
                f"{key!r} exists (If-None-Match)", code="PreconditionFailed"
            )
        if if_match is not None:
            if current is None:
                raise NotFoundError(f"{key!r} does not exist (If-Match)", code="NoSuchKey")
            wanted = normalize_etag(if_match)
            if wanted not in ("*", current.etag):
                raise PreconditionFailedError(
                    f"{key!r} has ETag {current.etag}, not {wanted} (If-Match)",
                    code="PreconditionFailed",
                )

    @staticmethod
    def _info(key: str, obj: _Object, with_metadata: bool) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=len(obj.data),
            etag=obj.etag,
            last_modified=obj.last_modified,
            metadata=dict(obj.metadata) if with_metadata else None,
        )

    # --------------------------------------------------------- operations

    def check_bucket(self) -> None:
        self.stats.count("check_bucket")
        with self._lock:
            self._check_bucket_locked()

    def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        self.stats.count("list")
        limit = min(max_keys, MAX_LIST_KEYS)
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        with self._lock:
            self._check_bucket_locked()
            if limit <= 0:
                return ListPage([], [], None)
            start = prefix if token is None else max(prefix, token)
            i = bisect.bisect_left(self._keys, start)
            keys = self._keys
            next_token: str | None = None
            resume: str | None = None  # where the next page starts: just after the last item taken
            while i < len(keys) and keys[i].startswith(prefix):
                if len(objects) + len(prefixes) >= limit:
                    # One more item exists: the page is truncated here.
                    next_token = resume
                    break
                key = keys[i]
                cut = key.find(delimiter, len(prefix)) if delimiter else -1
                if delimiter and cut >= 0:
                    common = key[: cut + len(delimiter)]
                    prefixes.append(common)
                    resume = _after_prefix(common)
                    i = bisect.bisect_left(keys, resume, i)
                else:
                    objects.append(self._info(key, self._objects[key], False))
                    resume = _after(key)
                    i += 1
        return ListPage(objects, prefixes, next_token)

    def head(self, key: str) -> ObjectInfo:
        self.stats.count("head")
        with self._lock:
            return self._info(key, self._object_locked(key), True)

    def get(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
    ) -> bytes:
        if start < 0 or (end is not None and end < 0):
            raise InvalidRequestError(f"bad range [{start}, {end})", code="InvalidArgument")
        empty_range = end is not None and end <= start
        data = b""
        try:
            with self._lock:
                obj = self._object_locked(key)
                if if_match is not None:
                    self._check_conditions_locked(key, if_match, False)
                if not empty_range:
                    data = obj.data[start:end]
        finally:
            if empty_range:
                self.stats.count("head")
            else:
                self.stats.count("get", down=len(data))
        return data

    def get_into(self, key: str, start: int, end: int, if_match: str | None,
                 sink: Callable[[bytes, int], object], piece: int = PIECE) -> int:
        """``get`` (one request, as subclasses see it), handed over in pieces."""
        data = self.get(key, start, end, if_match)
        return hand_over(data, start, sink, piece)

    def put(
        self,
        key: str,
        body: Body,
        metadata: dict[str, str] | None = None,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> PutResult:
        data = _read_body(body)
        self.stats.count("put", up=len(data))
        etag = hashlib.md5(data).hexdigest()
        with self._lock:
            self._check_bucket_locked()
            self._check_conditions_locked(key, if_match, if_none_match)
            self._store_locked(key, _Object(data, etag, time.time(), normalize_metadata(metadata)))
        return PutResult(etag=etag)

    def create_multipart(self, key: str, metadata: dict[str, str] | None = None) -> str:
        self.stats.count("create_multipart")
        with self._lock:
            self._check_bucket_locked()
            upload_id = f"mem-upload-{next(self._upload_ids)}"
            self._uploads[upload_id] = _Upload(key, normalize_metadata(metadata), time.time())
        return upload_id

    def _upload_locked(self, key: str, upload_id: str) -> _Upload:
        self._check_bucket_locked()
        upload = self._uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise NotFoundError(f"no upload {upload_id!r} for {key!r}", code="NoSuchUpload")
        return upload

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str:
        data = _read_body(body)
        self.stats.count("upload_part", up=len(data))
        if not 1 <= part_number <= 10000:
            raise InvalidRequestError(f"part number {part_number} out of range", code="InvalidArgument")
        etag = hashlib.md5(data).hexdigest()
        with self._lock:
            upload = self._upload_locked(key, upload_id)
            upload.parts[part_number] = (etag, data)
        return etag

    def upload_part_copy(self, key: str, upload_id: str, part_number: int, src_key: str, start: int,
                         length: int, *, if_match: str | None = None) -> str:
        self.stats.count("upload_part_copy")
        if not 1 <= part_number <= 10000:
            raise InvalidRequestError(f"part number {part_number} out of range", code="InvalidArgument")
        with self._lock:
            src = self._object_locked(src_key)
            self._check_conditions_locked(src_key, if_match, False)  # If-Match is on the source
            if start < 0 or length <= 0 or start + length > len(src.data):
                raise InvalidRequestError(f"range {start}+{length} outside {src_key!r}", code="InvalidRange")
            data = src.data[start:start + length]
            etag = hashlib.md5(data).hexdigest()
            self._upload_locked(key, upload_id).parts[part_number] = (etag, data)
        return etag

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> PutResult:
        self.stats.count("complete_multipart")
        with self._lock:
            upload = self._upload_locked(key, upload_id)
            if not parts:
                raise InvalidRequestError("no parts given", code="MalformedXML")
            numbers = [n for n, _ in parts]
            if numbers != sorted(set(numbers)):
                raise InvalidRequestError("parts not in ascending order", code="InvalidPartOrder")
            chunks: list[bytes] = []
            digests: list[bytes] = []
            for number, etag in parts:
                stored = upload.parts.get(number)
                if stored is None or stored[0] != normalize_etag(etag):
                    raise InvalidRequestError(f"part {number} not found or ETag differs", code="InvalidPart")
                digests.append(bytes.fromhex(stored[0]))
                chunks.append(stored[1])
            self._check_conditions_locked(key, if_match, if_none_match)
            etag = f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(parts)}"
            self._store_locked(key, _Object(b"".join(chunks), etag, time.time(), upload.metadata))
            del self._uploads[upload_id]
        return PutResult(etag=etag)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self.stats.count("abort_multipart")
        with self._lock:
            self._upload_locked(key, upload_id)
            del self._uploads[upload_id]

    def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUpload]:
        self.stats.count("list_multipart_uploads")
        with self._lock:
            self._check_bucket_locked()
            found = [
                MultipartUpload(key=u.key, upload_id=uid, initiated=u.initiated)
                for uid, u in self._uploads.items()
                if u.key.startswith(prefix)
            ]
        found.sort(key=lambda u: (u.key, u.initiated))
        return found

    def copy(
        self,
        src_key: str,
        dst_key: str,
        metadata: dict[str, str] | None = None,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> PutResult:
        self.stats.count("copy")
        with self._lock:
            src = self._object_locked(src_key)
            self._check_conditions_locked(src_key, if_match, False)  # If-Match is on the source
            if if_none_match:
                self._check_conditions_locked(dst_key, None, True)
            if src_key == dst_key and metadata is None:
                raise InvalidRequestError("copy of an object onto itself without changes", code="InvalidRequest")
            new_meta = dict(src.metadata) if metadata is None else normalize_metadata(metadata)
            etag = hashlib.md5(src.data).hexdigest()
            self._store_locked(dst_key, _Object(src.data, etag, time.time(), new_meta))
        return PutResult(etag=etag)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        self.stats.count("delete")
        with self._lock:
            self._check_bucket_locked()
            if if_match is not None:
                self._check_conditions_locked(key, if_match, False)
            self._remove_locked(key)

    def delete_many(self, keys: list[str]) -> list[str]:
        for i in range(0, len(keys), MAX_DELETE_KEYS):
            self.stats.count("delete_many")
            with self._lock:
                self._check_bucket_locked()
                for key in keys[i : i + MAX_DELETE_KEYS]:
                    self._remove_locked(key)
        return []

    # ------------------------------------------------------------ versions

    def versioning(self) -> str:
        self.stats.count("get_versioning")
        with self._lock:
            self._check_bucket_locked()
            return self._versioning

    def set_versioning(self, state: str) -> None:
        """Turn versioning "Enabled" or "Suspended" (a test helper; S3: PutBucketVersioning)."""
        with self._lock:
            self._versioning = state

    def list_versions(self, key: str) -> list[VersionInfo]:
        self.stats.count("list_versions")
        with self._lock:
            self._check_bucket_locked()
            versions = list(reversed(self._history.get(key, [])))
        return [VersionInfo(key=key, version_id=v.version_id, size=len(v.data), etag=v.etag,
                            last_modified=v.last_modified, latest=i == 0, deleted=v.deleted,
                            storage_class="" if v.deleted else "STANDARD")
                for i, v in enumerate(versions)]

    def get_version_into(self, key: str, version_id: str, sink: Callable[[bytes, int], object],
                         piece: int = PIECE) -> int:
        with self._lock:
            self._check_bucket_locked()
            found = [v for v in self._history.get(key, []) if v.version_id == version_id]
        if not found:
            self.stats.count("get")
            raise NotFoundError(f"{key!r} has no version {version_id!r}", code="NoSuchVersion")
        if found[0].deleted:
            self.stats.count("get")
            raise InvalidRequestError(f"version {version_id!r} of {key!r} is a delete marker",
                                      code="MethodNotAllowed")
        self.stats.count("get", down=len(found[0].data))
        return hand_over(found[0].data, 0, sink, piece)

    # ------------------------------------------------------- test helpers

    def objects(self) -> dict[str, bytes]:
        """Snapshot: key → body of every object."""
        with self._lock:
            return {k: o.data for k, o in self._objects.items()}

    def metadata_of(self, key: str) -> dict[str, str]:
        """A copy of ``key``'s user metadata; KeyError if the key does not exist."""
        with self._lock:
            return dict(self._objects[key].metadata)

    def etag_of(self, key: str) -> str:
        """``key``'s ETag; KeyError if the key does not exist."""
        with self._lock:
            return self._objects[key].etag
