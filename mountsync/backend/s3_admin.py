"""Requests of S3Store the mount itself never makes: creating the bucket (``mountsync demo``)
and the version requests (``mountsync versions`` / ``restore``). A mixin: it uses the
store's client, ``_call`` (counting, error mapping, request log lines) and
``_stream_body``, and imports nothing of boto3.

ListObjectVersions takes a prefix, not a key: versions of other keys that start with the
same characters are skipped, and the listing stops at the first key past ``key``. Its
answer holds versions and delete markers in two lists; they are merged newest first by
time, which S3 gives to the second (or millisecond): a delete and a write within the same
tick keep the versions-before-markers order (moto lists them that way, too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import PIECE, InvalidRequestError, VersionInfo, normalize_etag


class S3Admin:
    bucket: str
    _client: Any
    _call: Callable[..., Any]
    _stream_body: Callable[..., int]

    def create_bucket(self) -> None:
        """Create the bucket (used by ``mountsync demo`` against its embedded server)."""
        params: dict[str, Any] = {"Bucket": self.bucket}
        region = self._client.meta.region_name
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self._call("create_bucket", f"CreateBucket {self.bucket}", lambda: self._client.create_bucket(**params))

    def versioning(self) -> str:
        resp = self._call("get_versioning", f"GetBucketVersioning {self.bucket}",
                          lambda: self._client.get_bucket_versioning(Bucket=self.bucket))
        return str(resp.get("Status", "") or "")

    def list_versions(self, key: str) -> list[VersionInfo]:
        found: list[VersionInfo] = []
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key}
        while True:
            resp = self._call("list_versions", f"ListObjectVersions {key!r}",
                              lambda: self._client.list_object_versions(**params))
            for v in resp.get("Versions", []):
                if v["Key"] == key:
                    found.append(VersionInfo(
                        key=key, version_id=str(v.get("VersionId") or "null"), size=int(v.get("Size", 0)),
                        etag=normalize_etag(v.get("ETag")), last_modified=v["LastModified"].timestamp(),
                        latest=bool(v.get("IsLatest")), storage_class=str(v.get("StorageClass", "") or "")))
            for m in resp.get("DeleteMarkers", []):
                if m["Key"] == key:
                    found.append(VersionInfo(
                        key=key, version_id=str(m.get("VersionId") or "null"), size=0, etag="",
                        last_modified=m["LastModified"].timestamp(), latest=bool(m.get("IsLatest")),
                        deleted=True))
            past = [k for k in (resp.get("NextKeyMarker"),) if k and k > key]
            if not resp.get("IsTruncated") or past:
                break
            params["KeyMarker"] = resp["NextKeyMarker"]
            params["VersionIdMarker"] = resp.get("NextVersionIdMarker", "")
        found.sort(key=lambda v: (not v.latest, -v.last_modified))
        return found

    def get_version_into(self, key: str, version_id: str, sink: Callable[[bytes, int], object],
                         piece: int = PIECE) -> int:
        what = f"GetObject {key!r} version {version_id}"
        params = {"Bucket": self.bucket, "Key": key, "VersionId": version_id}
        try:
            resp = self._call("get", what, lambda: self._client.get_object(**params))
        except InvalidRequestError as exc:
            if exc.code == "MethodNotAllowed":  # S3's answer for a delete marker
                raise InvalidRequestError(f"version {version_id!r} of {key!r} is a delete marker",
                                          code=exc.code) from exc
            raise
        return int(self._stream_body(what, resp, 0, sink, piece))
