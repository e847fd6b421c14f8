"""``unmount --timeout T`` with the endpoint down: it unmounts anyway, keeps what
is pending in the cache (uploaded at the next mount), says so in one line with
the count and exits with status 3."""

from __future__ import annotations

import os
import time

import pytest

from tests.support.fault_helpers import bucket_mismatches
from tests.support.mount_helpers import file_keys, pid_alive

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def test_unmount_timeout_with_the_endpoint_down_keeps_pending_data(fmount, proxy, s3, bucket):
    fmount.allow_warning(r"unmounted with 3 item\(s\) not uploaded")
    m = fmount("--write-back-delay", "300")
    assert os.listdir(m.mountpoint) == []
    files = {f"kept-{i}.txt": f"pending when the endpoint went away {i}\n".encode() * (i + 1) for i in range(3)}
    for name, data in files.items():
        m.path(name).write_bytes(data)
    proxy.cut()

    t0 = time.monotonic()
    r = m.unmount(timeout=3)
    elapsed = time.monotonic() - t0
    gone = not m.is_mounted()

    lines = r.stderr.strip().splitlines()
    assert r.returncode == 3, f"exit {r.returncode} after {elapsed:.1f}s: {r.stderr.strip()}\n{m.log_tail()}"
    assert len(lines) == 1, r.stderr
    assert "3 upload(s)" in lines[0] and "next mount" in lines[0], lines[0]
    assert "Traceback" not in r.stderr
    assert gone, f"{m.mountpoint} is still in /proc/mounts after unmount returned"
    assert elapsed < 30, f"unmount --timeout 3 took {elapsed:.1f}s"
    deadline = time.monotonic() + 30
    while pid_alive(m.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(m.pid), "the daemon did not exit after unmount"
    assert file_keys(s3, bucket) == set()

    # the data went nowhere but the cache: the next mount with the endpoint back uploads it
    proxy.restore()
    m2 = fmount("--write-back-delay", "300", mountpoint=m.mountpoint, cache_dir=m.cache_dir)
    m2.sync()
    assert not bucket_mismatches(s3, bucket, files)


def test_unmount_timeout_with_nothing_pending_exits_0(fmount, proxy, s3, bucket):
    m = fmount("--write-back-delay", "300")
    m.path("a.txt").write_bytes(b"uploaded before the unmount\n")
    m.sync()
    proxy.cut()
    r = m.unmount(timeout=3)
    assert r.returncode == 0, f"{r.returncode}: {r.stderr.strip()}\n{m.log_tail()}"
    assert r.stderr.strip() == ""
    assert not m.is_mounted()
    assert not bucket_mismatches(s3, bucket, {"a.txt": b"uploaded before the unmount\n"})
