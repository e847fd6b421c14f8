"""S3Store: the ObjectStore over boto3. Only the backend/s3*.py modules (this one and
``s3_errors``, the error mapping) may import boto3/botocore (``s3_admin`` needs neither).

Threads: one boto3 client is created in ``__init__`` and shared; botocore
clients are thread-safe (the boto3 *session* is not, so it is used only in
``__init__``). The urllib3 pool holds ``max_pool_connections`` (≥ 16)
connections. ``stats`` locks itself. No other shared mutable state.

Retries: botocore retries at most once (``total_max_attempts=2``, mode
"standard"); the reconciler has its own backoff schedule. Timeouts: 5 s connect,
30 s read; ``check_bucket`` (mount check) has 5 s each and no retry (fail fast).

Checksums: PutObject and UploadPart carry an explicit ``Content-MD5`` (which
every S3-compatible server verifies); botocore's own flexible checksums are set
to ``when_required`` because several S3-compatible servers reject their
aws-chunked trailer form. DeleteObjects gets CRC32 and Content-MD5.
``Expect: 100-continue`` is kept only for bodies of 1 MiB and more. The
reasoning is in docs/ARCHITECTURE.md ("Checksums").

Stats: each method call is counted once under its operation name, whatever
botocore retried underneath; ``bytes_up`` counts the body sent (even if the
request then failed), ``bytes_down`` the body received.

Limits: ``copy`` is one CopyObject (5 GiB at most; larger sources are copied in parts
with ``upload_part_copy``). ``CopySourceIfMatch`` is sent; moto ignores it.

Errors are mapped to ``base.py`` classes by ``map_error`` (``s3_errors.py``):
the server's code and HTTP status decide; connection failures become
UnreachableError (could not connect) or TransientError (reset/timeout after
connecting).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.utils import determine_content_length

from .base import (
    PIECE,
    Body,
    BucketNotFoundError,
    InvalidRequestError,
    ListPage,
    MultipartUpload,
    NotFoundError,
    ObjectInfo,
    PutResult,
    StoreError,
    StoreStats,
    normalize_etag,
    normalize_metadata,
)
from .s3_admin import S3Admin
from .s3_errors import map_error

T = TypeVar("T")

log = logging.getLogger("mountsync.backend")
_PROBE_CONFIG = Config(connect_timeout=5.0, read_timeout=5.0, retries={"total_max_attempts": 1, "mode": "standard"})

def _quoted(etag: str) -> str:
    etag = etag.strip()
    return etag if etag == "*" or etag.startswith('"') else f'"{etag}"'


def _version(value: str | None) -> str | None:
    return None if value in (None, "", "null") else value


def _put_result(resp: Any, etag: str | None) -> PutResult:
    """The PutResult of a write's response ``resp`` whose new object has ``etag``."""
    return PutResult(etag=normalize_etag(etag), version_id=_version(resp.get("VersionId")))


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _add_content_md5(params: dict[str, Any], **_: Any) -> None:
    """before-call handler for DeleteObjects: add Content-MD5 of the XML body."""
    body = params.get("body")
    if isinstance(body, (bytes, bytearray)) and "Content-MD5" not in params["headers"]:
        params["headers"]["Content-MD5"] = _md5_b64(bytes(body))


_EXPECT_MIN_BODY = 1 << 20


def _drop_expect_for_small_bodies(request: Any, **_: Any) -> None:
    """before-sign handler for PutObject/UploadPart.

    botocore sends ``Expect: 100-continue`` with every file-like body, which
    costs one extra round trip per request. It only pays off for big bodies (a
    412/403 then stops the upload before the body is sent), so keep it for
    bodies of 1 MiB and more and drop it below.
    """
    if "Expect" not in request.headers:
        return
    body = request.body
    if isinstance(body, (bytes, bytearray)):
        size: int | None = len(body)
    else:
        size = determine_content_length(body)
    if size is not None and size < _EXPECT_MIN_BODY:
        del request.headers["Expect"]


def _body_and_md5(body: Body) -> tuple[Any, str, int]:
    """(body to send, base64 MD5, length). Seekable files are hashed in place and rewound."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
        return data, _md5_b64(data), len(data)
    seekable = getattr(body, "seekable", None)
    if callable(seekable) and seekable():
        pos = body.tell()
        h = hashlib.md5()
        size = 0
        while chunk := body.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
        body.seek(pos)
        return body, base64.b64encode(h.digest()).decode("ascii"), size
    data = body.read()
    return data, _md5_b64(data), len(data)


class S3Store(S3Admin):
    """An S3 (or S3-compatible) bucket. Blocking; safe to call from many threads.
    Requests the mount itself never makes (``create_bucket``, the version requests) are in
    ``S3Admin``."""

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        force_path_style: bool = False,
        no_sign_request: bool = False,
        storage_class: str | None = None,
        sse: str | None = None,
        sse_kms_key_id: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_pool_connections: int = 16,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.storage_class = storage_class
        self.sse = sse
        self.sse_kms_key_id = sse_kms_key_id
        self.stats = StoreStats()
        config = Config(
            region_name=region,
            signature_version=UNSIGNED if no_sign_request else None,
            s3={"addressing_style": "path" if force_path_style else "auto"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"total_max_attempts": 2, "mode": "standard"},
            max_pool_connections=max(16, max_pool_connections),
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            tcp_keepalive=True,
        )
        try:
            session = boto3.session.Session(profile_name=profile, region_name=region)
            self._client = session.client("s3", endpoint_url=endpoint_url, config=config)
            self._probe_client = session.client("s3", endpoint_url=endpoint_url, config=config.merge(_PROBE_CONFIG))
        except Exception as exc:
            raise map_error(exc, "configuring the S3 client") from exc
        events = self._client.meta.events
        events.register("before-call.s3.DeleteObjects", _add_content_md5)
        events.register("before-sign.s3.PutObject", _drop_expect_for_small_bodies)
        events.register("before-sign.s3.UploadPart", _drop_expect_for_small_bodies)

    # ------------------------------------------------------------ helpers

    def describe(self) -> str:
        if self.endpoint_url:
            parts = urllib.parse.urlsplit(self.endpoint_url)
            host = parts.hostname or ""
            if parts.port:
                host = f"{host}:{parts.port}"
            where = urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
        else:
            where = f"AWS region {self._client.meta.region_name or 'us-east-1'}"
        return f"s3://{self.bucket} at {where}"

    def _call(
        self, op: str, what: str, fn: Callable[[], T], up: int = 0, down: Callable[[T], int] | None = None
    ) -> T:
        """Run one request, count it in ``stats`` and map its errors; with --debug, one DEBUG
        line per request (what, outcome, seconds)."""
        result: Any = None
        started = time.monotonic()
        outcome = "ok"
        try:
            result = fn()
            return result
        except StoreError as exc:
            outcome = type(exc).__name__
            raise
        except Exception as exc:
            mapped = map_error(exc, what)
            outcome = type(mapped).__name__
            raise mapped from exc
        finally:
            self.stats.count(op, down=down(result) if (down and result is not None) else 0, up=up)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("request %s: %s in %.3f s", what, outcome, time.monotonic() - started)

    def _write_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.storage_class:
            params["StorageClass"] = self.storage_class
        if self.sse:
            params["ServerSideEncryption"] = self.sse
            if self.sse_kms_key_id:
                params["SSEKMSKeyId"] = self.sse_kms_key_id
        return params

    @staticmethod
    def _conditions(if_match: str | None, if_none_match: bool = False) -> dict[str, str]:
        """The IfMatch/IfNoneMatch request parameters (``if_match`` quoted, ``*`` kept)."""
        params: dict[str, str] = {}
        if if_match is not None:
            params["IfMatch"] = _quoted(if_match)
        if if_none_match:
            params["IfNoneMatch"] = "*"
        return params

    # --------------------------------------------------------- operations

    def check_bucket(self) -> None:
        what = f"HeadBucket {self.bucket}"
        try:
            self._call("check_bucket", what, lambda: self._probe_client.head_bucket(Bucket=self.bucket))
        except NotFoundError as exc:  # HEAD has no body: a bare 404 means no bucket
            raise BucketNotFoundError(f"bucket {self.bucket!r} does not exist", code=exc.code) from exc
        except InvalidRequestError as exc:
            if exc.code in ("InvalidBucketName", "ParamValidationError"):
                raise BucketNotFoundError(f"invalid bucket name {self.bucket!r}", code=exc.code) from exc
            raise

    def list_page(
        self, prefix: str, delimiter: str | None = "/", token: str | None = None, max_keys: int = 1000
    ) -> ListPage:
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if delimiter:
            params["Delimiter"] = delimiter
        if token:
            params["ContinuationToken"] = token
        resp = self._call("list", f"ListObjectsV2 {prefix!r}", lambda: self._client.list_objects_v2(**params))
        objects = [
            ObjectInfo(
                key=o["Key"],
                size=int(o.get("Size", 0)),
                etag=normalize_etag(o.get("ETag")),
                last_modified=o["LastModified"].timestamp(),
            )
            for o in resp.get("Contents", [])
        ]
        prefixes = [p["Prefix"] for p in resp.get("CommonPrefixes", [])]
        next_token = resp.get("NextContinuationToken") if resp.get("IsTruncated") else None
        return ListPage(objects, prefixes, next_token or None)

    def _head(self, key: str, if_match: str | None = None) -> ObjectInfo:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, **self._conditions(if_match)}
        resp = self._call("head", f"HeadObject {key!r}", lambda: self._client.head_object(**params))
        return ObjectInfo(
            key=key,
            size=int(resp.get("ContentLength", 0)),
            etag=normalize_etag(resp.get("ETag")),
            last_modified=resp["LastModified"].timestamp(),
            metadata=normalize_metadata(resp.get("Metadata")),
            version_id=_version(resp.get("VersionId")),
        )

    def head(self, key: str) -> ObjectInfo:
        return self._head(key)

    def get(self, key: str, start: int = 0, end: int | None = None, if_match: str | None = None) -> bytes:
        if start < 0 or (end is not None and end < 0):
            raise InvalidRequestError(f"bad range [{start}, {end})", code="InvalidArgument")
        if end is not None and end <= start:
            self._head(key, if_match)  # existence and condition only
            return b""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, **self._conditions(if_match)}
        if end is not None:
            params["Range"] = f"bytes={start}-{end - 1}"
        elif start > 0:
            params["Range"] = f"bytes={start}-"

        def fetch() -> bytes:
            resp = self._client.get_object(**params)
            with resp["Body"] as stream:
                return stream.read()

        try:
            return self._call("get", f"GetObject {key!r}", fetch, down=len)
        except InvalidRequestError as exc:
            if exc.code == "InvalidRange":  # the range starts at or past the end
                return b""
            raise

    def get_into(self, key: str, start: int, end: int, if_match: str | None,
                 sink: Callable[[bytes, int], object], piece: int = PIECE) -> int:
        """One ranged GET whose body is read off the connection ``piece`` bytes at a time,
        each handed to ``sink`` as it arrives (the request is counted once, its bytes as
        they come). An exception from ``sink`` closes the response and propagates."""
        if end <= start:
            self.get(key, start, end, if_match)
            return 0
        what = f"GetObject {key!r}"
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Range": f"bytes={start}-{end - 1}",
                                  **self._conditions(if_match)}
        try:
            resp = self._call("get", what, lambda: self._client.get_object(**params))
        except InvalidRequestError as exc:
            if exc.code == "InvalidRange":  # the range starts at or past the end
                return 0
            raise
        return self._stream_body(what, resp, start, sink, piece)

    def _stream_body(self, what: str, resp: Any, start: int, sink: Callable[[bytes, int], object],
                     piece: int) -> int:
        """Read a GetObject answer's body ``piece`` bytes at a time into ``sink`` (offsets from
        ``start``), counting the bytes as they come; closes the body."""
        handed = 0
        body = resp["Body"]  # botocore's StreamingBody (its ``with`` yields the raw stream)
        try:
            chunks = body.iter_chunks(piece)
            while True:
                try:
                    data = next(chunks, None)
                except Exception as exc:
                    raise map_error(exc, what) from exc
                if not data:
                    return handed
                self.stats.downloaded(len(data))
                sink(data, start + handed)
                handed += len(data)
        finally:
            body.close()

    def put(
        self, key: str, body: Body, metadata: dict[str, str] | None = None, *,
        if_match: str | None = None, if_none_match: bool = False,
    ) -> PutResult:
        payload, md5, size = _body_and_md5(body)
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": payload,
            "ContentMD5": md5,
            "Metadata": normalize_metadata(metadata),
            **self._write_params(),
            **self._conditions(if_match, if_none_match),
        }
        resp = self._call("put", f"PutObject {key!r}", lambda: self._client.put_object(**params), up=size)
        return _put_result(resp, resp.get("ETag"))

    def create_multipart(self, key: str, metadata: dict[str, str] | None = None) -> str:
        params: dict[str, Any] = {
            "Bucket": self.bucket, "Key": key, "Metadata": normalize_metadata(metadata), **self._write_params(),
        }
        resp = self._call(
            "create_multipart", f"CreateMultipartUpload {key!r}",
            lambda: self._client.create_multipart_upload(**params),
        )
        return resp["UploadId"]

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str:
        payload, md5, size = _body_and_md5(body)
        resp = self._call(
            "upload_part", f"UploadPart {key!r} #{part_number}",
            lambda: self._client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=part_number,
                Body=payload, ContentMD5=md5,
            ),
            up=size,
        )
        return normalize_etag(resp.get("ETag"))

    def upload_part_copy(self, key: str, upload_id: str, part_number: int, src_key: str, start: int,
                         length: int, *, if_match: str | None = None) -> str:
        params: dict[str, Any] = {
            "Bucket": self.bucket, "Key": key, "UploadId": upload_id, "PartNumber": part_number,
            "CopySource": {"Bucket": self.bucket, "Key": src_key},
            "CopySourceRange": f"bytes={start}-{start + length - 1}",
        }
        if if_match is not None:
            params["CopySourceIfMatch"] = _quoted(if_match)
        resp = self._call(
            "upload_part_copy", f"UploadPartCopy {src_key!r} -> {key!r} #{part_number}",
            lambda: self._client.upload_part_copy(**params),
        )
        return normalize_etag((resp.get("CopyPartResult") or {}).get("ETag"))

    def complete_multipart(
        self, key: str, upload_id: str, parts: list[tuple[int, str]], *,
        if_match: str | None = None, if_none_match: bool = False,
    ) -> PutResult:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "MultipartUpload": {"Parts": [{"PartNumber": n, "ETag": _quoted(e)} for n, e in parts]},
            **self._conditions(if_match, if_none_match),
        }
        resp = self._call(
            "complete_multipart", f"CompleteMultipartUpload {key!r}",
            lambda: self._client.complete_multipart_upload(**params),
        )
        return _put_result(resp, resp.get("ETag"))

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self._call(
            "abort_multipart", f"AbortMultipartUpload {key!r}",
            lambda: self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id),
        )

    def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUpload]:
        found: list[MultipartUpload] = []
        markers: dict[str, str] = {}
        while True:
            params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, **markers}
            resp = self._call(
                "list_multipart_uploads", f"ListMultipartUploads {prefix!r}",
                functools.partial(self._client.list_multipart_uploads, **params),
            )
            for u in resp.get("Uploads", []) or []:
                found.append(
                    MultipartUpload(key=u["Key"], upload_id=u["UploadId"], initiated=u["Initiated"].timestamp())
                )
            if not resp.get("IsTruncated"):
                return found
            key_marker = resp.get("NextKeyMarker") or ""
            upload_marker = resp.get("NextUploadIdMarker") or ""
            if not key_marker and not upload_marker:
                return found  # a server that says "truncated" without markers: avoid looping
            markers = {"KeyMarker": key_marker, "UploadIdMarker": upload_marker}

    def copy(
        self, src_key: str, dst_key: str, metadata: dict[str, str] | None = None, *, if_match: str | None = None,
        if_none_match: bool = False,
    ) -> PutResult:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": dst_key,
            "CopySource": {"Bucket": self.bucket, "Key": src_key},
            **self._write_params(),
        }
        if metadata is None:
            params["MetadataDirective"] = "COPY"
        else:
            params["MetadataDirective"] = "REPLACE"
            params["Metadata"] = normalize_metadata(metadata)
        if if_match is not None:
            params["CopySourceIfMatch"] = _quoted(if_match)
        if if_none_match:
            params["IfNoneMatch"] = "*"
        resp = self._call(
            "copy", f"CopyObject {src_key!r} -> {dst_key!r}", lambda: self._client.copy_object(**params)
        )
        return _put_result(resp, (resp.get("CopyObjectResult") or {}).get("ETag"))

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, **self._conditions(if_match)}
        self._call("delete", f"DeleteObject {key!r}", lambda: self._client.delete_object(**params))

    def delete_many(self, keys: list[str]) -> list[str]:
        failed: list[str] = []
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            resp = self._call(
                "delete_many", f"DeleteObjects ({len(chunk)} keys)",
                functools.partial(
                    self._client.delete_objects,
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True},
                ),
            )
            failed.extend(e["Key"] for e in resp.get("Errors", []) or [] if "Key" in e)
        return failed
