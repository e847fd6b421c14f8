"""Write-back behaviour: the delay (criterion 2), crash recovery (7), unmount uploads first (9)."""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from tests.support.mount_helpers import file_keys, get_bytes, is_mounted, key_exists, list_keys, pid_alive

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def test_file_removed_within_write_back_delay_never_reaches_bucket(mount, s3, bucket):
    m = mount("--write-back-delay", "30")
    swap_data = b"editor swap data\n" * 1000
    swap = m.path(".notes.txt.swp")
    with open(swap, "wb") as f:
        f.write(swap_data)
    # long enough for an upload that ignored the delay to happen (and then unlink would be EPERM)
    time.sleep(2)
    assert not key_exists(s3, bucket, ".notes.txt.swp")
    os.unlink(swap)
    m.sync()

    assert not key_exists(s3, bucket, ".notes.txt.swp")
    assert list_keys(s3, bucket) == []
    # nothing of that size went up (the daemon may send small probes of its own)
    sent = m.status()["backend"]["bytes_up"]
    assert sent < len(swap_data), f"{sent} bytes were uploaded"

    # control: the same mount does upload a file that is kept (so the checks above can fail)
    kept = os.urandom(len(swap_data))
    m.path("kept.bin").write_bytes(kept)
    m.sync()
    assert get_bytes(s3, bucket, "kept.bin") == kept
    assert m.status()["backend"]["bytes_up"] >= sent + len(kept)


def test_sigkill_then_remount_same_cache_uploads_everything(mount, s3, bucket):
    rnd = random.Random(7)
    m = mount("--write-back-delay", "60")
    os.mkdir(m.path("ckpt"))
    expected = {}
    for i in range(50):
        data = rnd.randbytes(rnd.choice([0, 1, 100, 4096, 70_000, 300_000]))
        rel = f"ckpt/part-{i:02d}.bin" if i % 2 else f"file-{i:02d}.bin"
        with open(m.path(rel), "wb") as f:
            f.write(data)
        expected[rel] = data
    st = m.status()
    assert st["pending_files"] >= 50, st
    assert file_keys(s3, bucket) == set(), "uploads started before the write-back delay; the test proves nothing"

    pid = st["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)

    m2 = mount("--write-back-delay", "60", mountpoint=m.mountpoint, cache_dir=m.cache_dir)
    m2.sync()
    assert file_keys(s3, bucket) == set(expected)
    different = [k for k, v in expected.items() if get_bytes(s3, bucket, k) != v]
    assert not different, f"differ after recovery: {different}"
    assert all(m2.path(k).read_bytes() == v for k, v in expected.items())


def test_unmount_uploads_pending_first(mount, s3, bucket):
    m = mount("--write-back-delay", "300")
    data = os.urandom(200_000)
    m.path("late.bin").write_bytes(data)
    time.sleep(0.5)
    assert not key_exists(s3, bucket, "late.bin")

    r = m.unmount(timeout=60)
    assert r.returncode == 0, r.stderr
    assert not is_mounted(m.mountpoint)
    assert get_bytes(s3, bucket, "late.bin") == data
