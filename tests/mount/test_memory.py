"""SPEC §4/§8: the daemon's memory stays bounded whatever the size of an object.

A 1 GiB object is generated into the bucket with a boto3 multipart upload (the
test never holds it in RAM), then appended to through the mount with default
options: the first write brings the rest of the object into the cache in
bounded chunks, and the upload goes back in parts. The daemon's peak resident
size (VmHWM in /proc/PID/status) must stay under 300 MiB.
"""

from __future__ import annotations

import os
import stat

import pytest

from tests.support.mount_helpers import MiB

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

GiB = 1024 * MiB
RSS_LIMIT = 300 * MiB


def block(index: int) -> bytes:
    """The content of MiB number ``index`` of the generated object (distinct per MiB)."""
    return index.to_bytes(8, "big") * (MiB // 8)


def upload_generated(s3, bucket: str, key: str, size: int, part: int = 64 * MiB, metadata=None) -> None:
    mpu = s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata or {})
    parts = []
    for num, off in enumerate(range(0, size, part), start=1):
        body = b"".join(block(i) for i in range(off // MiB, (off + min(part, size - off)) // MiB))
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=mpu["UploadId"], PartNumber=num, Body=body)
        parts.append({"PartNumber": num, "ETag": r["ETag"]})
        del body
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=mpu["UploadId"],
                                 MultipartUpload={"Parts": parts})


def vm_hwm(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


@pytest.mark.slow
def test_append_to_1gib_object_keeps_daemon_memory_bounded(mount, s3, bucket):
    size = GiB
    upload_generated(s3, bucket, "big.bin", size)
    m = mount()
    assert m.pid is not None
    with open(m.path("big.bin"), "ab") as f:
        f.write(b"appended\n")
    m.sync(timeout=900)
    peak = vm_hwm(m.pid)
    print(f"daemon peak RSS {peak / MiB:.0f} MiB")
    assert peak < RSS_LIMIT, f"daemon peak RSS {peak / MiB:.0f} MiB"

    head = s3.head_object(Bucket=bucket, Key="big.bin")
    assert head["ContentLength"] == size + 9
    for index in (0, 1, 511, 1023):  # chunk and part boundaries kept their bytes
        got = s3.get_object(Bucket=bucket, Key="big.bin",
                            Range=f"bytes={index * MiB}-{(index + 1) * MiB - 1}")["Body"].read()
        assert got == block(index), f"MiB {index} differs"
    tail = s3.get_object(Bucket=bucket, Key="big.bin", Range=f"bytes={size - 8}-")["Body"].read()
    assert tail == block(1023)[-8:] + b"appended\n"


def test_large_object_marked_as_symlink_is_not_downloaded_by_ls(mount, s3, bucket):
    upload_generated(s3, bucket, "trap", 150 * MiB, metadata={"mode": str(stat.S_IFLNK | 0o777)})
    m = mount()
    st = os.lstat(m.path("trap"))  # what ls -l does
    assert stat.S_ISREG(st.st_mode) and st.st_size == 150 * MiB
    assert m.status()["backend"]["bytes_down"] == 0
    assert vm_hwm(m.pid) < RSS_LIMIT
