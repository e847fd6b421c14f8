"""GcsStore: the ObjectStore over Google Cloud Storage's own API (google-cloud-storage,
the ``mountsync[gcs]`` extra). The only module that imports the Google SDK; docs/GCS.md
is the user's side of this.

Mapping of the protocol:

- ETags are **generations** (decimal strings): every condition is a generation
  precondition (``ifGenerationMatch``; 0 = must not exist; ``"*"`` = exists, i.e.
  ``ifGenerationNotMatch`` 0), which GCS honours on uploads, copies, composes and deletes.
  A metadata change is a rewrite onto itself (a new generation), as S3's self-copy.
- list: objects.list with a delimiter and page tokens; HEAD: objects.get (metadata);
  ranged GET: media download with a range (the whole range in one response, handed on
  in pieces).
- multipart: parallel composite upload, as gcloud does it: each part is a temporary
  object under ``.mountsync-parts/UPLOAD/`` at the bucket's root (outside a mount with a
  prefix; a mount of the whole bucket shows that folder while a big file uploads), and
  complete composes them (32 at a time, then the final one with the metadata and the
  precondition) and deletes them. ``abort`` deletes the parts; uploads are known to this
  process only (``list_multipart_uploads``), as with Azure.
- copy: objects.rewrite, repeated until done (any size).
- versions: not asked for yet (the current generation as version "null").

Credentials: ``--no-sign-request`` (anonymous, public buckets); else Application Default
Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's, the metadata server); with
``--endpoint-url`` (an emulator) and no credentials, anonymous. Threads: one Client shared
(its HTTP session is thread-safe for these calls); ``_uploads`` (``LocalUploads``) locks itself.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import google.api_core.exceptions as gex
import google.auth.exceptions as gauth
import requests.exceptions as rex
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[import-untyped]

from .base import (
    PIECE,
    AccessDeniedError,
    Body,
    BucketNotFoundError,
    InvalidRequestError,
    ListPage,
    MultipartUpload,
    NotFoundError,
    ObjectInfo,
    PreconditionFailedError,
    PutResult,
    StoreError,
    StoreStats,
    TransientError,
    UnreachableError,
    hand_over,
    normalize_metadata,
)
from .local_uploads import CurrentVersionOnly, LocalUploads, check_parts

T = TypeVar("T")
log = logging.getLogger("mountsync.backend")
PARTS_PREFIX = ".mountsync-parts/"
COMPOSE_MAX = 32  # sources per compose request


def map_error(exc: BaseException, what: str = "") -> StoreError:
    """``exc`` raised by the Google SDK (or requests under it) during ``what``."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, rex.ConnectionError) and not isinstance(exc, rex.ReadTimeout):
        return UnreachableError(f"{prefix}{exc}", code=type(exc).__name__)
    if isinstance(exc, (rex.Timeout, rex.ChunkedEncodingError, ConnectionError, TimeoutError)):
        return TransientError(f"{prefix}{exc}", code=type(exc).__name__)
    if isinstance(exc, gauth.GoogleAuthError):
        return AccessDeniedError(f"{prefix}{exc}", code=type(exc).__name__)
    if isinstance(exc, gex.GoogleAPICallError):
        status, msg = int(exc.code or 0), f"{prefix}{exc.code} {exc.message}"
        if status == 404 and "bucket" in str(exc.message).lower():
            return BucketNotFoundError(msg, code="NoSuchBucket")
        if status == 404:
            return NotFoundError(msg, code="NotFound")
        if status == 412:
            return PreconditionFailedError(msg, code="PreconditionFailed")
        if status in (401, 403):
            return AccessDeniedError(msg, code=str(status))
        if status == 416:
            return InvalidRequestError(msg, code="InvalidRange")
        if status in (408, 429) or status >= 500:
            return TransientError(msg, code=str(status))
        return InvalidRequestError(msg, code=str(status))
    return StoreError(f"{prefix}{type(exc).__name__}: {exc}", code=type(exc).__name__)


def conditions(if_match: str | None, if_none_match: bool = False, *, source: bool = False) -> dict[str, int]:
    """Generation preconditions for an ETag condition (the keyword names of the Google SDK)."""
    head = "if_source_generation" if source else "if_generation"
    if if_none_match:
        return {f"{head}_match": 0}
    if if_match == "*":
        return {f"{head}_not_match": 0}
    if if_match is not None:
        try:
            return {f"{head}_match": int(if_match)}
        except ValueError:  # not a generation: no object can have it
            return {f"{head}_match": -1}
    return {}


class GcsStore(CurrentVersionOnly):
    """A Google Cloud Storage bucket. Blocking; safe to call from many threads."""

    def __init__(self, bucket: str, *, endpoint_url: str | None = None, no_sign_request: bool = False,
                 storage_class: str | None = None, connect_timeout: float = 5.0, read_timeout: float = 30.0) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.storage_class = storage_class
        self.stats = StoreStats()
        self._timeout = (connect_timeout, read_timeout)
        self._uploads = LocalUploads()  # the multipart uploads this process started
        options = {"api_endpoint": endpoint_url} if endpoint_url else None
        project = os.environ.get("GOOGLE_CLOUD_PROJECT") or "mountsync"
        try:
            if no_sign_request:
                client = storage.Client(project=project, credentials=AnonymousCredentials(), client_options=options)
            else:
                try:
                    client = storage.Client(project=project, client_options=options)
                except gauth.DefaultCredentialsError:
                    if not endpoint_url:
                        raise AccessDeniedError(
                            "no Google credentials: set GOOGLE_APPLICATION_CREDENTIALS, run 'gcloud auth "
                            "application-default login', or use --no-sign-request for a public bucket",
                            code="NoCredentials") from None
                    client = storage.Client(project=project, credentials=AnonymousCredentials(),
                                            client_options=options)
        except StoreError:
            raise
        except Exception as exc:
            raise map_error(exc, "configuring the Google Cloud Storage client") from exc
        self._bucket = client.bucket(bucket)

    def describe(self) -> str:
        return f"gs://{self.bucket}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def _call(self, op: str, what: str, fn: Callable[[], T], *, up: int = 0) -> T:
        started, outcome = time.monotonic(), "ok"
        try:
            return fn()
        except Exception as exc:
            mapped = map_error(exc, what)
            outcome = type(mapped).__name__
            raise mapped from exc
        finally:
            self.stats.count(op, up=up)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("request %s: %s in %.3f s", what, outcome, time.monotonic() - started)

    @staticmethod
    def _info(blob: Any, with_metadata: bool) -> ObjectInfo:
        return ObjectInfo(key=blob.name, size=int(blob.size or 0), etag=str(blob.generation or ""),
                          last_modified=blob.updated.timestamp() if blob.updated else 0.0,
                          metadata=normalize_metadata(blob.metadata) if with_metadata else None)

    def _blob(self, key: str, metadata: dict[str, str] | None = None) -> Any:
        blob = self._bucket.blob(key)
        if metadata is not None:
            blob.metadata = normalize_metadata(metadata)
        if self.storage_class:
            blob.storage_class = self.storage_class
        return blob

    # ------------------------------------------------------------ reading

    def check_bucket(self) -> None:
        def look() -> None:
            if not self._bucket.exists(timeout=self._timeout, retry=None):
                raise BucketNotFoundError(f"bucket {self.bucket!r} does not exist", code="NoSuchBucket")
        self._call("check_bucket", f"buckets.get {self.bucket}", look)

    def list_page(self, prefix: str, delimiter: str | None = "/", token: str | None = None,
                  max_keys: int = 1000) -> ListPage:
        def fetch() -> ListPage:
            found = self._bucket.client.list_blobs(
                self._bucket, prefix=prefix or None, delimiter=delimiter or None, page_size=max_keys,
                max_results=max_keys, page_token=token, timeout=self._timeout, retry=None)
            page = next(found.pages, None)
            if page is None:
                return ListPage([], [], None)
            objects = [self._info(b, True) for b in page]  # objects.list carries the metadata
            return ListPage(objects, sorted(page.prefixes), found.next_page_token or None)
        return self._call("list", f"objects.list {prefix!r}", fetch)

    def _get_blob(self, key: str, if_match: str | None = None) -> Any:
        blob = self._bucket.blob(key)
        blob.reload(timeout=self._timeout, retry=None, **conditions(if_match))
        return blob

    def head(self, key: str) -> ObjectInfo:
        return self._info(self._call("head", f"objects.get {key!r}", lambda: self._get_blob(key)), True)

    def get(self, key: str, start: int = 0, end: int | None = None, if_match: str | None = None) -> bytes:
        if start < 0 or (end is not None and end < 0):
            raise InvalidRequestError(f"bad range [{start}, {end})", code="InvalidArgument")
        if end is not None and end <= start:
            self._call("head", f"objects.get {key!r}", lambda: self._get_blob(key, if_match))
            return b""
        what = f"media {key!r}"
        try:
            data: bytes = self._call("get", what, lambda: self._bucket.blob(key).download_as_bytes(
                start=start or None, end=None if end is None else end - 1, timeout=self._timeout,
                retry=None, checksum=None, **conditions(if_match)))
        except InvalidRequestError as exc:
            if exc.code == "InvalidRange":
                return b""
            raise
        self.stats.downloaded(len(data))
        return data

    def get_into(self, key: str, start: int, end: int, if_match: str | None,
                 sink: Callable[[bytes, int], object], piece: int = PIECE) -> int:
        """The range in one request, handed to ``sink`` in pieces (held whole meanwhile)."""
        return hand_over(self.get(key, start, end, if_match), start, sink, piece) if end > start else \
            len(self.get(key, start, end, if_match))

    # ------------------------------------------------------------ writing

    def put(self, key: str, body: Body, metadata: dict[str, str] | None = None, *,
            if_match: str | None = None, if_none_match: bool = False) -> PutResult:
        data = body if isinstance(body, bytes) else body.read()
        blob = self._blob(key, metadata or {})
        self._call("put", f"upload {key!r}", lambda: blob.upload_from_string(
            data, content_type="application/octet-stream", timeout=self._timeout, retry=None, checksum="md5",
            **conditions(if_match, if_none_match)), up=len(data))
        return PutResult(etag=str(blob.generation))

    def create_multipart(self, key: str, metadata: dict[str, str] | None = None) -> str:
        self.stats.count("create_multipart")
        return self._uploads.start(key, metadata)

    @staticmethod
    def _part_name(upload_id: str, part_number: int) -> str:
        return f"{PARTS_PREFIX}{upload_id}/{part_number:05d}"

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str:
        self._uploads.metadata(key, upload_id)  # NotFoundError for an unknown upload
        if not 1 <= part_number <= 10000:
            raise InvalidRequestError(f"part number {part_number} out of range", code="InvalidArgument")
        blob = self._bucket.blob(self._part_name(upload_id, part_number))
        self._call("upload_part", f"upload part {part_number} of {key!r}", lambda: blob.upload_from_string(
            body, timeout=self._timeout, retry=None, checksum="md5"), up=len(body))
        return str(blob.generation)

    def upload_part_copy(self, key: str, upload_id: str, part_number: int, src_key: str, start: int,
                         length: int, *, if_match: str | None = None) -> str:
        data = self.get(src_key, start, start + length, if_match)
        if len(data) != length:
            raise InvalidRequestError(f"range {start}+{length} outside {src_key!r}", code="InvalidRange")
        return self.upload_part(key, upload_id, part_number, data)

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]], *,
                           if_match: str | None = None, if_none_match: bool = False) -> PutResult:
        metadata = self._uploads.metadata(key, upload_id)
        check_parts(parts)
        sources = [self._bucket.blob(self._part_name(upload_id, n)) for n, _ in parts]
        level = 0
        while len(sources) > COMPOSE_MAX:  # compose 32 at a time into intermediate objects
            level += 1
            merged = []
            for i in range(0, len(sources), COMPOSE_MAX):
                mid = self._bucket.blob(f"{PARTS_PREFIX}{upload_id}/m{level}-{i // COMPOSE_MAX:05d}")
                def compose(into: Any = mid, group: list[Any] = sources[i:i + COMPOSE_MAX]) -> None:
                    into.compose(group, timeout=self._timeout, retry=None)

                self._call("complete_multipart", f"compose into {mid.name!r}", compose)
                merged.append(mid)
            sources = merged
        final = self._blob(key, metadata)
        self._call("complete_multipart", f"compose {key!r}", lambda: final.compose(
            sources, timeout=self._timeout, retry=None, **conditions(if_match, if_none_match)))
        self._discard_parts(upload_id)
        return PutResult(etag=str(final.generation))

    def _discard_parts(self, upload_id: str) -> None:
        self._uploads.end(upload_id)
        try:
            leftovers = [b.name for b in self._bucket.client.list_blobs(
                self._bucket, prefix=f"{PARTS_PREFIX}{upload_id}/", timeout=self._timeout, retry=None)]
            failed = self._delete_all(leftovers)
        except Exception as exc:  # noqa: BLE001 - a leftover part must not fail the finished upload
            failed = [str(map_error(exc))]
        if failed:
            log.warning("could not remove the parts of upload %s (%s): delete %s%s/ yourself",
                        upload_id, failed[0], PARTS_PREFIX, upload_id)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self.stats.count("abort_multipart")
        self._uploads.metadata(key, upload_id)  # NotFoundError for an unknown upload
        self._discard_parts(upload_id)

    def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUpload]:
        self.stats.count("list_multipart_uploads")
        return self._uploads.listing(prefix)

    def copy(self, src_key: str, dst_key: str, metadata: dict[str, str] | None = None, *,
             if_match: str | None = None, if_none_match: bool = False) -> PutResult:
        if src_key == dst_key and metadata is None:
            raise InvalidRequestError("copy of an object onto itself without changes", code="InvalidRequest")
        # with no new metadata, an empty destination resource: the copy keeps the source's
        # metadata and class (a resource with only a storage class would drop the metadata)
        dst = self._bucket.blob(dst_key) if metadata is None else self._blob(dst_key, metadata)
        source = self._bucket.blob(src_key)
        cond = {**conditions(if_match, source=True), **conditions(None, if_none_match)}

        def rewrite() -> None:
            token = None
            while True:
                token, _done, _total = dst.rewrite(source, token=token, timeout=self._timeout, retry=None, **cond)
                if token is None:
                    return
        self._call("copy", f"rewrite {src_key!r} → {dst_key!r}", rewrite)
        return PutResult(etag=str(dst.generation))

    def _delete(self, key: str, if_match: str | None) -> None:
        try:
            self._bucket.blob(key).delete(timeout=self._timeout, retry=None, **conditions(if_match))
        except gex.NotFound:
            if if_match is not None:
                raise

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        self._call("delete", f"objects.delete {key!r}", lambda: self._delete(key, if_match))

    def delete_many(self, keys: list[str]) -> list[str]:
        """One delete request per key (GCS's batch endpoint is being retired), counted as one
        ``delete_many``; returns the keys that could not be deleted."""
        if not keys:
            return []
        return self._call("delete_many", f"delete {len(keys)} objects", lambda: self._delete_all(keys))

    def _delete_all(self, keys: list[str]) -> list[str]:
        failed: list[str] = []
        for key in keys:
            try:
                self._delete(key, None)
            except Exception:  # noqa: BLE001 - reported as failed, like DeleteObjects' errors
                failed.append(key)
        return failed
