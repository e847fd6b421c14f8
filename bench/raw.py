"""Raw boto3: what the server itself can do (the reference for the mounts), and bucket set-up.

``Raw(endpoint)`` measures through the given endpoint (the bench proxy, so the
latency profile applies to it like to the mounts). ``Admin(endpoint)`` talks to
moto directly to create, fill, poll and empty buckets; that traffic is not
measured and not counted by the proxy.
"""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

from bench.systems import BenchError

CHUNK = 1024 * 1024
PART = 8 * 1024 * 1024


def client(endpoint: str, pool: int = 32):
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    return session.client("s3", endpoint_url=endpoint, config=Config(
        s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=pool, connect_timeout=10, read_timeout=120))


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


class Raw:
    """Timed raw operations (each returns seconds)."""

    def __init__(self, endpoint: str, threads: int = 8) -> None:
        self.s3 = client(endpoint)
        self.threads = threads

    def put(self, bucket: str, key: str, data: bytes) -> float:
        return _timed(lambda: self.s3.put_object(Bucket=bucket, Key=key, Body=data))

    def put_multipart(self, bucket: str, key: str, data: bytes, part: int = PART) -> float:
        """Parallel multipart upload (``threads`` parts in flight)."""
        def go() -> None:
            up = self.s3.create_multipart_upload(Bucket=bucket, Key=key)
            uid = up["UploadId"]
            offsets = list(range(0, len(data), part)) or [0]

            def one(i_off: tuple[int, int]) -> dict:
                i, off = i_off
                r = self.s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=i + 1,
                                        Body=data[off:off + part])
                return {"PartNumber": i + 1, "ETag": r["ETag"]}

            with ThreadPoolExecutor(self.threads) as pool:
                parts = list(pool.map(one, enumerate(offsets)))
            self.s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid,
                                              MultipartUpload={"Parts": parts})
        return _timed(go)

    def get(self, bucket: str, key: str) -> float:
        """One whole-object GET, read to the end."""
        def go() -> None:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            while body.read(CHUNK):
                pass
        return _timed(go)

    def get_ranged(self, bucket: str, key: str, size: int, part: int = PART) -> float:
        """Parallel ranged GETs of ``part`` bytes (``threads`` in flight)."""
        def one(off: int) -> None:
            body = self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={off}-{off + part - 1}")["Body"]
            while body.read(CHUNK):
                pass

        def go() -> None:
            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(one, range(0, size, part)))
        return _timed(go)

    def random_reads(self, bucket: str, key: str, size: int, offsets: list[int], n: int = 4096) -> float:
        """One ranged GET per offset, one after the other (what a reader that fetches exactly does)."""
        def go() -> None:
            for off in offsets:
                self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={off}-{off + n - 1}")["Body"].read()
        return _timed(go)

    def put_many(self, bucket: str, keys: list[str], data: bytes) -> float:
        def go() -> None:
            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(lambda k: self.s3.put_object(Bucket=bucket, Key=k, Body=data), keys))
        return _timed(go)

    def list_pass(self, bucket: str, prefix: str) -> tuple[float, list[str]]:
        keys: list[str] = []

        def go() -> None:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix,
                                                                         Delimiter="/"):
                keys.extend(o["Key"] for o in page.get("Contents", []))
        return _timed(go), keys

    def list_and_heads(self, bucket: str, prefix: str, threads: int = 16) -> float:
        """One LIST pass, then a HEAD of every key, ``threads`` at a time."""
        def go() -> None:
            _, keys = self.list_pass(bucket, prefix)
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(lambda k: self.s3.head_object(Bucket=bucket, Key=k), keys))
        return _timed(go)


class Admin:
    """Direct access to moto for set-up and for watching the bucket (never timed against a target)."""

    def __init__(self, endpoint: str) -> None:
        self.s3 = client(endpoint, pool=32)

    def create_bucket(self, name: str) -> str:
        self.s3.create_bucket(Bucket=name)
        return name

    def fill(self, bucket: str, keys: list[str], data: bytes = b"", threads: int = 16,
             deadline: float | None = None) -> None:
        def one(k: str) -> None:
            if deadline is not None and time.monotonic() > deadline:
                raise BenchError("timed out filling the bucket")
            self.s3.put_object(Bucket=bucket, Key=k, Body=data)
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, keys))

    def put_big(self, bucket: str, key: str, data: bytes) -> None:
        if len(data) <= 64 * 1024 * 1024:
            self.s3.put_object(Bucket=bucket, Key=key, Body=data)
        else:
            r = Raw.__new__(Raw)  # the multipart code lives in Raw
            r.s3, r.threads = self.s3, 8
            r.put_multipart(bucket, key, data, part=64 * 1024 * 1024)

    def size(self, bucket: str, key: str) -> int | None:
        try:
            return self.s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except self.s3.exceptions.ClientError:
            return None

    def count(self, bucket: str, prefix: str) -> int:
        n = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            n += len([o for o in page.get("Contents", []) if not o["Key"].endswith("/")])
        return n

    def empty(self, bucket: str, delete_bucket: bool = True) -> None:
        """Delete every object (and upload) in ``bucket``, then the bucket; errors are ignored."""
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if objs:
                    self.s3.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})
            for up in self.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
                self.s3.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
            if delete_bucket:
                self.s3.delete_bucket(Bucket=bucket)
        except Exception:  # noqa: BLE001 - best effort clean-up between samples
            pass


def random_offsets(size: int, n: int, block: int = 4096, seed: int = 1) -> list[int]:
    """``n`` distinct block-aligned offsets in ``[0, size)``, reproducible."""
    rng = random.Random(seed)
    blocks = max(1, size // block)
    picks = rng.sample(range(blocks), min(n, blocks))
    return [b * block for b in picks]
