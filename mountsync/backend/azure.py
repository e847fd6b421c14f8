"""AzureStore: the ObjectStore over Azure Blob Storage (azure-storage-blob, the
``mountsync[azure]`` extra). With ``azure_errors``, the only modules that import the
Azure SDK. docs/AZURE.md is the user's side of this.

Mapping of the protocol (a container is the bucket, a blob the object):

- list: List Blobs with a delimiter (``walk_blobs``) or flat, paged by the service's
  continuation marker, with each blob's metadata (so ``ls -l`` needs no HEADs); HEAD: Get
  Blob Properties; ranged GET: Get Blob with a range.
- conditions: If-Match on the blob's ETag; If-None-Match: * (Azure answers 409
  BlobAlreadyExists when the blob exists: PreconditionFailedError like S3's 412).
- multipart: blocks. ``create_multipart`` only names the upload (the service has no
  upload ids); each part is a staged block whose id encodes the upload id and part
  number (``upload_part`` returns the block id as the part's "ETag"); complete is Put
  Block List with the metadata and conditions. Uncommitted blocks are dropped by the
  service after a week; ``abort_multipart`` and ``list_multipart_uploads`` see only the
  uploads this process started (the reconciler records its own, and starts over after
  a restart). ``upload_part_copy`` reads the source range and stages it (Azurite lacks
  Put Block From URL); ``copy`` itself takes any size (Copy Blob within the account).
- copy: Copy Blob, waited for when the service runs it asynchronously; a copy onto
  itself with new metadata is Set Blob Metadata (conditional on the ETag).
- metadata: Azure names must be C# identifiers, so ``-`` is stored as ``_`` and read
  back as ``-`` (``mtime-ns`` ↔ ``mtime_ns``; ``azure_name``/``from_azure_name``). A
  name with both (not one mountsync writes) would come back with hyphens only.
- ETags are the service's opaque ``0x…`` values (not MD5s): a retried upload whose
  first answer was lost cannot be recognised by its bytes, and is a conflict like any
  other change (keep-both keeps both).
- versions: not asked for (``versioning`` "", ``list_versions`` the current blob as
  version "null"); Azure blob versioning is a later step.

Credentials, in order (``credential_from_env``): ``AZURE_STORAGE_CONNECTION_STRING``;
``AZURE_STORAGE_KEY`` (account key); ``AZURE_STORAGE_SAS_TOKEN``; ``--no-sign-request``
(anonymous, public containers); ``DefaultAzureCredential`` when azure-identity is
installed. Endpoint: ``--endpoint-url`` (Azurite: ``http://127.0.0.1:10000/ACCOUNT``),
else ``https://ACCOUNT.blob.core.windows.net``.

Threads: one BlobServiceClient (thread-safe) shared by all calls; ``_uploads``
(``local_uploads.LocalUploads``) and ``stats`` lock themselves.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.storage.blob import BlobBlock, BlobPrefix, BlobServiceClient

from .azure_errors import map_error
from .base import (
    PIECE,
    AccessDeniedError,
    Body,
    InvalidRequestError,
    ListPage,
    MultipartUpload,
    NotFoundError,
    ObjectInfo,
    PreconditionFailedError,
    PutResult,
    StoreError,
    StoreStats,
    hand_over,
    normalize_etag,
    normalize_metadata,
)
from .local_uploads import CurrentVersionOnly, LocalUploads, check_parts

T = TypeVar("T")
log = logging.getLogger("mountsync.backend")
MAX_BATCH_DELETE = 256  # blobs per Blob Batch request
COPY_POLL = 0.2  # seconds between looks at an asynchronous Copy Blob


def azure_name(name: str) -> str:
    """A metadata name as Azure stores it (a C# identifier: no hyphens): ``-`` → ``_``."""
    return name.replace("-", "_")


def from_azure_name(name: str) -> str:
    """The protocol's form of an Azure metadata name: lower case, ``_`` → ``-`` (so a name
    read from Azure is written back unchanged; ``mtime_ns`` ↔ ``mtime-ns``)."""
    return name.lower().replace("_", "-")


def _quoted(etag: str) -> str:
    etag = etag.strip()
    return etag if etag == "*" or etag.startswith('"') else f'"{etag}"'


def credential_from_env(env: Mapping[str, str], account: str, no_sign_request: bool) -> tuple[str, Any]:
    """("connection-string", text) or ("credential", a credential for BlobServiceClient);
    AccessDeniedError when nothing usable is there."""
    if env.get("AZURE_STORAGE_CONNECTION_STRING"):
        return "connection-string", env["AZURE_STORAGE_CONNECTION_STRING"]
    if env.get("AZURE_STORAGE_KEY"):
        return "credential", {"account_name": account, "account_key": env["AZURE_STORAGE_KEY"]}
    if env.get("AZURE_STORAGE_SAS_TOKEN"):
        return "credential", env["AZURE_STORAGE_SAS_TOKEN"].lstrip("?")
    if no_sign_request:
        return "credential", None
    try:
        from azure.identity import DefaultAzureCredential  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise AccessDeniedError(
            "no Azure credentials: set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or "
            "AZURE_STORAGE_SAS_TOKEN, use --no-sign-request for a public container, or install "
            "azure-identity for DefaultAzureCredential", code="NoCredentials") from None
    return "credential", DefaultAzureCredential()


class AzureStore(CurrentVersionOnly):
    """A container of an Azure storage account. Blocking; safe to call from many threads."""

    def __init__(self, account: str, container: str, *, endpoint_url: str | None = None,
                 no_sign_request: bool = False, tier: str | None = None, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0, env: Mapping[str, str] | None = None) -> None:
        self.account = account
        self.bucket = container
        self.tier = tier
        self.endpoint_url = endpoint_url or f"https://{account}.blob.core.windows.net"
        self.stats = StoreStats()
        self._uploads = LocalUploads()  # the multipart uploads this process started
        how, cred = credential_from_env(os.environ if env is None else env, account, no_sign_request)
        options: dict[str, Any] = {"connection_timeout": connect_timeout, "read_timeout": read_timeout,
                                   "retry_total": 1, "max_single_get_size": 64 * 1024**2,
                                   "max_single_put_size": 256 * 1024**2}
        try:
            if how == "connection-string" and endpoint_url:  # the flag's endpoint, the string's key
                parts = dict(p.split("=", 1) for p in cred.split(";") if "=" in p)
                key = ({"account_name": parts.get("AccountName", account), "account_key": parts["AccountKey"]}
                       if "AccountKey" in parts else parts.get("SharedAccessSignature"))
                service = BlobServiceClient(endpoint_url, credential=key, **options)
            elif how == "connection-string":
                service = BlobServiceClient.from_connection_string(cred, **options)
            else:
                service = BlobServiceClient(self.endpoint_url, credential=cred, **options)
        except Exception as exc:
            raise map_error(exc, "configuring the Azure client") from exc
        self._container = service.get_container_client(container)

    def describe(self) -> str:
        return f"az://{self.account}/{self.bucket} at {self.endpoint_url}"

    def _call(self, op: str, what: str, fn: Callable[[], T], *, up: int = 0, conditional: bool = False) -> T:
        """Run one request, count it, map its errors; with --debug one DEBUG line per request."""
        started, outcome = time.monotonic(), "ok"
        try:
            return fn()
        except Exception as exc:
            mapped = map_error(exc, what, conditional=conditional)
            outcome = type(mapped).__name__
            raise mapped from exc
        finally:
            self.stats.count(op, up=up)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("request %s: %s in %.3f s", what, outcome, time.monotonic() - started)

    @staticmethod
    def _conditions(if_match: str | None, if_none_match: bool = False) -> dict[str, Any]:
        if if_none_match:
            return {"match_condition": MatchConditions.IfMissing}
        if if_match is not None:
            return {"etag": _quoted(if_match), "match_condition": MatchConditions.IfNotModified}
        return {}

    @staticmethod
    def _metadata(metadata: dict[str, str] | None) -> dict[str, str]:
        return {azure_name(k): v for k, v in normalize_metadata(metadata).items()}

    @staticmethod
    def _info(key: str, props: Any, with_metadata: bool) -> ObjectInfo:
        return ObjectInfo(
            key=key, size=int(props.size or 0), etag=normalize_etag(props.etag),
            last_modified=props.last_modified.timestamp() if props.last_modified else 0.0,
            metadata={from_azure_name(k): str(v) for k, v in (props.metadata or {}).items()}
            if with_metadata else None)

    # ------------------------------------------------------------ reading

    def check_bucket(self) -> None:
        self._call("check_bucket", f"GetContainerProperties {self.bucket}",
                   self._container.get_container_properties)

    def list_page(self, prefix: str, delimiter: str | None = "/", token: str | None = None,
                  max_keys: int = 1000) -> ListPage:
        def fetch() -> ListPage:
            paged: Any
            if delimiter:
                paged = self._container.walk_blobs(name_starts_with=prefix or None, delimiter=delimiter,
                                                   results_per_page=max_keys, include=["metadata"])
            else:
                paged = self._container.list_blobs(name_starts_with=prefix or None, results_per_page=max_keys,
                                                   include=["metadata"])
            pages: Any = paged.by_page(continuation_token=token)
            objects: list[ObjectInfo] = []
            prefixes: list[str] = []
            for item in next(pages, []):
                if isinstance(item, BlobPrefix):
                    prefixes.append(item.name)
                else:
                    objects.append(self._info(item.name, item, True))  # List Blobs include=metadata
            return ListPage(objects, prefixes, pages.continuation_token or None)

        return self._call("list", f"ListBlobs {prefix!r}", fetch)

    def head(self, key: str) -> ObjectInfo:
        props = self._call("head", f"GetBlobProperties {key!r}",
                           lambda: self._container.get_blob_client(key).get_blob_properties())
        return self._info(key, props, True)

    def _download(self, key: str, start: int, end: int | None, if_match: str | None) -> Any:
        length = None if end is None else end - start
        return self._container.get_blob_client(key).download_blob(
            offset=start if (start or length is not None) else None, length=length, max_concurrency=1,
            **self._conditions(if_match))

    def get(self, key: str, start: int = 0, end: int | None = None, if_match: str | None = None) -> bytes:
        if start < 0 or (end is not None and end < 0):
            raise InvalidRequestError(f"bad range [{start}, {end})", code="InvalidArgument")
        if end is not None and end <= start:
            info = self.head(key)
            if if_match is not None and normalize_etag(if_match) not in ("*", info.etag):
                raise PreconditionFailedError(f"{key!r} has ETag {info.etag}, not {if_match}")
            return b""
        try:
            data: bytes = self._call("get", f"GetBlob {key!r}",
                                     lambda: self._download(key, start, end, if_match).readall())
        except InvalidRequestError as exc:
            if exc.code == "InvalidRange":  # starts at or past the end
                return b""
            raise
        self.stats.downloaded(len(data))
        return data

    def get_into(self, key: str, start: int, end: int, if_match: str | None,
                 sink: Callable[[bytes, int], object], piece: int = PIECE) -> int:
        """The range read in the SDK's chunks, each handed over in pieces of ``piece`` bytes."""
        if end <= start:
            self.get(key, start, end, if_match)
            return 0
        what = f"GetBlob {key!r}"
        try:
            stream = self._call("get", what, lambda: self._download(key, start, end, if_match))
        except InvalidRequestError as exc:
            if exc.code == "InvalidRange":
                return 0
            raise
        handed = 0
        chunks = stream.chunks()
        while True:
            try:
                data = next(chunks, None)
            except Exception as exc:
                raise map_error(exc, what) from exc
            if not data:
                return handed
            self.stats.downloaded(len(data))
            handed += hand_over(data, start + handed, sink, piece)

    # ------------------------------------------------------------ writing

    def put(self, key: str, body: Body, metadata: dict[str, str] | None = None, *,
            if_match: str | None = None, if_none_match: bool = False) -> PutResult:
        data = body if isinstance(body, bytes) else body.read()
        extra: dict[str, Any] = {"standard_blob_tier": self.tier} if self.tier else {}
        with self._missing_is_not_found(key, if_match):
            resp: Any = self._call("put", f"PutBlob {key!r}", lambda: self._container.get_blob_client(key).upload_blob(
                data, overwrite=True, metadata=self._metadata(metadata), length=len(data),
                **self._conditions(if_match, if_none_match), **extra),
                up=len(data), conditional=if_match is not None or if_none_match)
        return PutResult(etag=normalize_etag(resp.get("etag")))

    @contextlib.contextmanager
    def _missing_is_not_found(self, key: str, if_match: str | None) -> Iterator[None]:
        """Azure answers If-Match on a missing blob with 412; the protocol (as S3) says 404."""
        try:
            yield
        except PreconditionFailedError:
            if if_match is not None and if_match != "*":
                try:
                    self.head(key)
                except NotFoundError:
                    raise NotFoundError(f"{key!r} does not exist (If-Match)", code="BlobNotFound") from None
            raise

    def create_multipart(self, key: str, metadata: dict[str, str] | None = None) -> str:
        self.stats.count("create_multipart")
        return self._uploads.start(key, metadata)

    @staticmethod
    def _block_id(upload_id: str, part_number: int) -> str:
        return base64.b64encode(f"{upload_id}-{part_number:05d}".encode()).decode("ascii")

    def upload_part(self, key: str, upload_id: str, part_number: int, body: bytes) -> str:
        self._uploads.metadata(key, upload_id)  # NotFoundError for an unknown upload
        if not 1 <= part_number <= 50000:
            raise InvalidRequestError(f"part number {part_number} out of range", code="InvalidArgument")
        block = self._block_id(upload_id, part_number)
        self._call("upload_part", f"PutBlock {key!r} #{part_number}",
                   lambda: self._container.get_blob_client(key).stage_block(block, body, length=len(body)),
                   up=len(body))
        return block

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
        blocks = [BlobBlock(block_id=block) for _, block in parts]
        extra: dict[str, Any] = {"standard_blob_tier": self.tier} if self.tier else {}
        with self._missing_is_not_found(key, if_match):
            resp: Any = self._call("complete_multipart", f"PutBlockList {key!r}",
                                   lambda: self._container.get_blob_client(key).commit_block_list(
                                       blocks, metadata=self._metadata(metadata),
                                       **self._conditions(if_match, if_none_match), **extra),
                                   conditional=if_match is not None or if_none_match)
        self._uploads.end(upload_id)
        return PutResult(etag=normalize_etag(resp.get("etag")))

    def abort_multipart(self, key: str, upload_id: str) -> None:
        self.stats.count("abort_multipart")
        self._uploads.metadata(key, upload_id)  # NotFoundError for an unknown upload
        self._uploads.end(upload_id)

    def list_multipart_uploads(self, prefix: str = "") -> list[MultipartUpload]:
        self.stats.count("list_multipart_uploads")
        return self._uploads.listing(prefix)

    def copy(self, src_key: str, dst_key: str, metadata: dict[str, str] | None = None, *,
             if_match: str | None = None, if_none_match: bool = False) -> PutResult:
        what = f"CopyBlob {src_key!r} → {dst_key!r}"
        if src_key == dst_key:
            if metadata is None:
                raise InvalidRequestError("copy of an object onto itself without changes", code="InvalidRequest")
            updated: Any = self._call("copy", what, lambda: self._container.get_blob_client(dst_key).set_blob_metadata(
                self._metadata(metadata), **self._conditions(if_match)), conditional=if_match is not None)
            return PutResult(etag=normalize_etag(updated.get("etag")))
        source: dict[str, Any] = {}
        if if_match is not None:
            source = {"source_etag": _quoted(if_match), "source_match_condition": MatchConditions.IfNotModified}
        dst = self._container.get_blob_client(dst_key)
        src_url = self._container.get_blob_client(src_key).url
        meta = None if metadata is None else self._metadata(metadata)
        resp: Any = self._call("copy", what, lambda: dst.start_copy_from_url(
            src_url, metadata=meta, **source, **self._conditions(None, if_none_match)),
            conditional=if_match is not None or if_none_match)
        while resp.get("copy_status") == "pending":
            time.sleep(COPY_POLL)
            props = self._call("head", f"GetBlobProperties {dst_key!r}", dst.get_blob_properties)
            resp = {"copy_status": props.copy.status, "etag": props.etag}
        if resp.get("copy_status") not in (None, "success"):
            raise StoreError(f"{what}: the copy ended {resp.get('copy_status')}", code="CopyFailed")
        return PutResult(etag=normalize_etag(resp.get("etag")))

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        try:
            self._call("delete", f"DeleteBlob {key!r}", lambda: self._container.get_blob_client(key).delete_blob(
                **self._conditions(if_match)), conditional=if_match is not None)
        except NotFoundError:
            if if_match is not None:
                raise

    def delete_many(self, keys: list[str]) -> list[str]:
        failed: list[str] = []
        for i in range(0, len(keys), MAX_BATCH_DELETE):
            batch = keys[i:i + MAX_BATCH_DELETE]
            def send(names: list[str] = batch) -> list[Any]:
                return list(self._container.delete_blobs(*names, raise_on_any_failure=False))

            answers = self._call("delete_many", f"BlobBatch delete of {len(batch)}", send)
            failed += [k for k, a in zip(batch, answers, strict=False) if a.status_code not in (200, 202, 404)]
        return failed
