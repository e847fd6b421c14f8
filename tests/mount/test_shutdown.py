"""SIGTERM/SIGINT of the daemon and an external umount upload what is pending first."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.support.mount_helpers import get_bytes, is_mounted, key_exists, pid_alive

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def _wait_gone(pid: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), f"daemon {pid} did not exit"


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "umount"])
def test_stop_uploads_pending_first(mount, s3, bucket, how):
    m = mount("--write-back-delay", "300")
    data = os.urandom(100_000)
    m.path("pending.bin").write_bytes(data)
    assert not key_exists(s3, bucket, "pending.bin")
    pid = m.pid
    if how == "umount":
        subprocess.run(["fusermount3", "-u", str(m.mountpoint)], check=True)
    else:
        os.kill(pid, getattr(signal, how))
    _wait_gone(pid)
    assert not is_mounted(m.mountpoint)
    assert get_bytes(s3, bucket, "pending.bin") == data
