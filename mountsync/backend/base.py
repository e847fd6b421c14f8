"""The object-store interface every backend implements.

The protocol is deliberately small and *synchronous*: every method may block on
the network. Callers on the trio loop never call it directly; they go through
``mountsync.backend.bucket.Bucket``, which runs each call in a worker thread
under a capacity limit (and builds the keys). That keeps the implementations (boto3, the in-memory
fake, the fault-injecting wrapper) free of any async machinery and lets the
conformance suite call them plainly.

Conventions shared by all implementations:

- Keys are full object keys (the mount's prefix already applied by the caller).
- ETags are returned *without* surrounding quotes.
- ``metadata`` is user metadata with the ``x-amz-meta-`` prefix stripped and
  names lower-cased, e.g. ``{"mode": "33188", "mtime": "1700000000.5"}``.
- ``end`` in ranged reads is exclusive; a range past the object's end is
  clipped, as S3 does.
- Errors are ``StoreError`` subclasses. ``transient`` says whether retrying the
  same request later can succeed (throttling, 5xx, resets, timeouts,
  unreachable endpoint); everything else is permanent for that request.
- Every implementation keeps ``stats`` (requests per operation, bytes moved)
  so tests can assert what crossed the wire.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable

PIECE = 1024 * 1024  # bytes handed over at a time by a streaming GET (``get_into``)

# --------------------------------------------------------------------- errors


class StoreError(Exception):
    """Base of all backend errors. ``errno`` is what a filesystem call reports."""

    transient = False
    errno = errno.EIO

    def __init__(self, message: str = "", *, code: str = "") -> None:
        super().__init__(message or self.__class__.__name__)
        self.code = code  # the server's error code, e.g. "SlowDown", if known


class NotFoundError(StoreError):
    """The key (or upload id) does not exist."""

    errno = errno.ENOENT


class BucketNotFoundError(StoreError):
    """The bucket itself does not exist."""

    errno = errno.ENOENT


class AccessDeniedError(StoreError):
    """403: credentials are missing or not allowed to do this."""

    errno = errno.EACCES


class PreconditionFailedError(StoreError):
    """412: an If-Match / If-None-Match condition did not hold."""

    errno = errno.EBUSY


class ArchivedError(StoreError):
    """The object is in an archive storage class (GLACIER, DEEP_ARCHIVE, ...) and must be
    restored before it can be read (S3: 403 InvalidObjectState)."""

    errno = errno.EACCES

    def __init__(self, message: str = "", *, code: str = "", storage_class: str = "") -> None:
        super().__init__(message, code=code)
        self.storage_class = storage_class or "an archive storage class"


class InvalidRequestError(StoreError):
    """The server rejected the request as malformed (400 and friends)."""


class TransientError(StoreError):
    """Worth retrying: throttling (503 SlowDown), 500s, resets, timeouts."""

    transient = True


class UnreachableError(TransientError):
    """The endpoint could not be reached at all (connection refused, DNS, timeout)."""


# ---------------------------------------------------------------- data types


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows of one object.

    ``metadata`` is a dict (possibly empty) when it comes from HEAD/GET, and from a
    listing that carries user metadata (Azure, GCS); ``None`` from one that does not (S3).
    A listing's metadata spares the core a HEAD per object (``core.metafetch``).
    """

    key: str
    size: int
    etag: str
    last_modified: float  # seconds since the epoch
    metadata: dict[str, str] | None = None
    version_id: str | None = None


@dataclass(frozen=True)
class VersionInfo:
    """One version of one key on a versioned bucket (``list_versions``).

    ``deleted``: a delete marker (no bytes: ``size`` 0, ``etag`` ""). ``latest``: the version
    a plain GET sees (or, for a marker, the reason a plain GET finds nothing). ``version_id``
    is "null" for the one version an unversioned bucket (or one from before versioning was
    enabled) keeps, as S3 names it."""

    key: str
    version_id: str
    size: int
    etag: str
    last_modified: float  # seconds since the epoch
    latest: bool
    deleted: bool = False
    storage_class: str = ""


@dataclass(frozen=True)
class ListPage:
    """One page of a listing. ``prefixes`` are the common prefixes (ending in the delimiter)."""

    objects: list[ObjectInfo]
    prefixes: list[str]
    next_token: str | None


@dataclass(frozen=True)
class PutResult:
    etag: str
    version_id: str | None = None


@dataclass(frozen=True)
class MultipartUpload:
    key: str
    upload_id: str
    initiated: float  # seconds since the epoch


@dataclass
class StoreStats:
    """Thread-safe counters of what a store moved. Reset with ``reset()``."""

    requests: dict[str, int] = field(default_factory=dict)
    bytes_down: int = 0
    bytes_up: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, op: str, down: int = 0, up: int = 0) -> None:
        with self._lock:
            self.requests[op] = self.requests.get(op, 0) + 1
            self.bytes_down += down
            self.bytes_up += up

    def downloaded(self, n: int) -> None:
        """Bytes received by a request already counted (a streaming GET)."""
        with self._lock:
            self.bytes_down += n

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "bytes_down": self.bytes_down,
                "bytes_up": self.bytes_up,
            }

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.bytes_down = 0
            self.bytes_up = 0


Body = bytes | BinaryIO


# ------------------------------------------- forms every implementation returns


def normalize_etag(etag: str | None) -> str:
    """An ETag as this interface carries it: without surrounding quotes or blanks ("" for none)."""
    return (etag or "").strip().strip('"')


def normalize_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """User metadata as this interface carries it: names lower-cased, values as strings."""
    return {str(k).lower(): str(v) for k, v in (metadata or {}).items()}


# ------------------------------------------------------------------ protocol


@runtime_checkable
class ObjectStore(Protocol):
    """A bucket. All methods block; see the module docstring for conventions."""

    stats: StoreStats

    def describe(self) -> str:
        """A short human description (``s3://bucket at http://...``), no secrets."""
        ...

    def check_bucket(self) -> None:
        """Raise BucketNotFoundError / AccessDeniedError / UnreachableError, else return."""
        ...

    def list_page(
        self,
        prefix: str,
        delimiter: str | None = "/",
        token: str | None = None,
        max_keys: int = 1000,
    ) -> ListPage:
        """One page of keys under ``prefix`` in key order; pass ``next_token`` back for more."""
        ...

    def head(self, key: str) -> ObjectInfo:
        """Info with metadata, or NotFoundError."""
        ...

    def get(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        if_match: str | None = None,
    ) -> bytes:
        """Bytes ``[start, end)`` of the object. ``if_match`` → PreconditionFailedError if changed."""
        ...

    def get_into(
        self,
        key: str,
        start: int,
        end: int,
        if_match: str | None,
        sink: Callable[[bytes, int], object],
        piece: int = PIECE,
    ) -> int:
        """Bytes ``[start, end)`` handed to ``sink(data, offset)`` in order, in pieces of at
        most ``piece`` bytes as they arrive (one request; memory bounded by ``piece``);
        returns how many bytes were handed over. An exception raised by ``sink`` stops the
        request and propagates unchanged. Errors as for ``get``."""
        ...

    def put(
        self,
        key: str,
        body: Body,
        metadata: dict[str, str] | None = None,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> PutResult:
        """Store a whole object. ``if_match`` / ``if_none_match`` make it conditional (412)."""
        ...

    def create_multipart(self, key: str, metadata: dict[str, str] | None = None) -> str:
        """Start a multipart upload; returns its upload id."""
        ...

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str:
        """Upload one part (numbers from 1); returns the part's ETag."""
        ...

    def upload_part_copy(self, key: str, upload_id: str, part_number: int, src_key: str, start: int,
                         length: int, *, if_match: str | None = None) -> str:
        """One part copied from bytes ``[start, start + length)`` of ``src_key`` in the bucket
        (UploadPartCopy, for objects too large for one CopyObject); ``if_match``: only if the
        source still has that ETag (412 otherwise; best effort, like ``copy``). Returns the
        part's ETag."""
        ...

    def complete_multipart(
        self,
        key: str,
        upload_id: str,
        parts: list[tuple[int, str]],
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> PutResult:
        """Assemble ``parts`` ((number, etag) in order). Conditional like ``put``."""
        ...

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Abort; NotFoundError if the upload id is unknown."""
        ...

    def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUpload]:
        """Uploads started and neither completed nor aborted."""
        ...

    def copy(
        self,
        src_key: str,
        dst_key: str,
        metadata: dict[str, str] | None = None,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> PutResult:
        """Server-side copy. ``metadata=None`` keeps the source's; a dict replaces it.

        ``if_match`` requires the *source* to still have that ETag; ``if_none_match``
        requires the *destination* not to exist (412). Both best effort: some servers
        (moto among them) ignore them, so callers check with HEAD as well."""
        ...

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Delete one key. Deleting a missing key succeeds (as in S3)."""
        ...

    def delete_many(self, keys: list[str]) -> list[str]:
        """Delete up to 1000 keys in one request; returns the keys that failed."""
        ...

    # versions (``mountsync versions`` / ``restore``; the mount itself never asks for them)

    def versioning(self) -> str:
        """The bucket's versioning state: "Enabled", "Suspended" or "" (never enabled)."""
        ...

    def list_versions(self, key: str) -> list[VersionInfo]:
        """Every version of exactly ``key`` (delete markers included), newest first; on a bucket
        without versioning, the current object alone (version id "null") or nothing."""
        ...

    def get_version_into(self, key: str, version_id: str, sink: Callable[[bytes, int], object],
                         piece: int = PIECE) -> int:
        """The whole of one version handed to ``sink(data, offset)`` as it arrives, as
        ``get_into``; NotFoundError if there is no such version, InvalidRequestError if it is
        a delete marker; ArchivedError as for ``get``."""
        ...


def first_store_error(group: BaseExceptionGroup) -> BaseException:
    """The error to report for a failed group of concurrent requests (parts): a permanent
    StoreError if any (retrying cannot help), else a transient one, else the group itself."""
    leaves = []

    def walk(g: BaseExceptionGroup) -> None:
        for exc in g.exceptions:
            walk(exc) if isinstance(exc, BaseExceptionGroup) else leaves.append(exc)

    walk(group)
    store_errors = [e for e in leaves if isinstance(e, StoreError)]
    for e in store_errors:
        if not e.transient:
            return e
    return store_errors[0] if store_errors else group


def hand_over(data: bytes, start: int, sink: Callable[[bytes, int], object], piece: int = PIECE) -> int:
    """Hand ``data`` (the bytes at ``start``) to ``sink`` in pieces of at most ``piece``
    bytes, for stores that receive a range whole; returns ``len(data)``."""
    view = memoryview(data)
    for at in range(0, len(data), max(1, piece)):
        sink(bytes(view[at:at + piece]), start + at)
    return len(data)
