"""Criteria 5 and 6: ranged reads of a big object, listing a 10,000-key directory."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.mount_helpers import MiB

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def test_read_4k_at_200mib_of_256mib_object_fetches_little(mount, s3, bucket):
    size = 256 * MiB
    data = os.urandom(size)
    s3.put_object(Bucket=bucket, Key="big/blob.bin", Body=data)
    m = mount()

    path = m.path("big/blob.bin")
    assert os.stat(path).st_size == size
    offset = 200 * MiB
    fd = os.open(path, os.O_RDONLY)
    try:
        chunk = os.pread(fd, 4096, offset)
    finally:
        os.close(fd)
    assert chunk == data[offset:offset + 4096]

    backend = m.status()["backend"]
    assert backend["bytes_down"] < 16 * MiB, backend
    assert backend["bytes_down"] >= 4096, backend  # it really came from the bucket


def test_ls_of_10000_key_directory_is_complete(mount, s3, bucket):
    names = [f"obj-{i:05d}.dat" for i in range(10_000)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda n: s3.put_object(Bucket=bucket, Key=f"many/{n}", Body=b""), names))
    s3.put_object(Bucket=bucket, Key="other/x", Body=b"x")  # a sibling prefix sorts after "many/"
    m = mount()

    assert sorted(os.listdir(m.path("many"))) == names
    r = subprocess.run(["ls", "-1", str(m.path("many"))], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == names
    assert sorted(os.listdir(m.mountpoint)) == ["many", "other"]
