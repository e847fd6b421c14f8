"""The cache disk fills up while the endpoint is down (nothing can be uploaded,
nothing can be evicted): writes fail with ENOSPC, nothing closed before is
lost, and once the endpoint is back and everything is uploaded, writes work
again (clean data is evicted to make room)."""

from __future__ import annotations

import errno
import os
import random
import shutil
import subprocess
import time

import pytest

from tests.support.fault_helpers import MiB, bucket_mismatches, sigkill_daemon
from tests.support.fuse import in_ci
from tests.support.mount_helpers import file_keys, get_bytes

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

TMPFS_SIZE = 64 * MiB


@pytest.fixture
def small_cache_disk(tmp_path):
    """A 64 MiB tmpfs; request it *before* ``fmount``/``mount`` so that it is
    unmounted only after the mounts on top of it were torn down."""
    where = tmp_path / "tmpfs"
    where.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        why = "mounting a tmpfs needs root and mount(8)"
        if in_ci():
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE // MiB}m,mode=0700", "tmpfs", str(where)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        if in_ci():
            pytest.fail(f"cannot mount a tmpfs: {r.stderr.strip()}", pytrace=False)
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield where
    finally:
        # keep the logs for a post-mortem: the tmpfs goes away
        for log in where.glob("*/daemon.log"):
            if not log.is_symlink():
                shutil.copy(log, tmp_path / f"{log.parent.name}-daemon.log")
        deadline = time.monotonic() + 10
        while subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                subprocess.run(["umount", "-l", str(where)], capture_output=True)
                break
            time.sleep(0.1)


def _disk_report(cache, m) -> str:
    """What filled the cache disk: free space, the largest files, what status says."""
    st = os.statvfs(cache)
    sizes = []
    for dirpath, _dirs, files in os.walk(cache):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                sizes.append((os.stat(path).st_blocks * 512, os.path.relpath(path, cache)))
            except FileNotFoundError:
                continue
    sizes.sort(reverse=True)
    status = m.status()
    return (f"free {st.f_bavail * st.f_frsize} of {st.f_blocks * st.f_frsize} bytes; {len(sizes)} files, "
            f"{sum(s for s, _ in sizes)} bytes, largest {sizes[:8]}; pending {status['pending_files']}, "
            f"cache_bytes {status['cache_bytes']}")


def _wait_uploaded(m, timeout: float) -> dict:
    """Poll ``status`` until nothing is pending; on timeout, kill the daemon (a
    drain at teardown could not finish either) and fail with what status said."""
    deadline = time.monotonic() + timeout
    while True:
        st = m.status()
        if st["pending_files"] == 0:
            return st
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    sigkill_daemon(m)
    subprocess.run(["fusermount3", "-u", "-z", str(m.mountpoint)], capture_output=True, timeout=30)
    raise AssertionError(
        f"{timeout:.0f}s after the endpoint came back, {st['pending_files']} file(s) are still pending "
        f"(errors: {st['errors'][:2]}, upload worker restarts: {st.get('worker_restarts')}): "
        f"{st['pending'][:3]}")


def test_cache_disk_full_while_the_endpoint_is_down(small_cache_disk, fmount, proxy, s3, bucket, tmp_path):
    fmount.allow_warning(r"WARNING mountsync\.fuse: cache disk full")
    # the log lives outside the full disk (--log-file; the mount fixture still
    # scans it): lines written while the disk is full are kept. Not through a
    # symlink in the cache dir: mountsync refuses links there (docs/SECURITY.md)
    cache = small_cache_disk / "cache"
    cache.mkdir(mode=0o700)
    log_dir = tmp_path / "logs"
    log_dir.mkdir(mode=0o700)
    fmount.scan_log_in(log_dir)
    m = fmount("--write-back-delay", "0.5", "--log-file", str(log_dir / "daemon.log"), cache_dir=cache)
    assert "mounted" in (log_dir / "daemon.log").read_text(), "the daemon does not log to --log-file"
    assert os.listdir(m.mountpoint) == []
    proxy.cut()
    rnd = random.Random(64)
    closed: dict[str, bytes] = {}
    failed: dict[str, bytes] = {}
    first_enospc = None
    for i in range(100):
        rel = f"fill-{i:03d}.bin"
        data = rnd.randbytes(MiB)
        try:
            with open(m.path(rel), "wb") as f:
                f.write(data)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, f"{rel}: {exc!r} (expected ENOSPC)\n{m.log_tail()}"
            failed[rel] = data
            first_enospc = i if first_enospc is None else first_enospc
            continue
        closed[rel] = data
    assert first_enospc is not None, "100 MiB fitted in a 64 MiB cache disk?"
    assert 20 <= len(closed) < 64, f"{len(closed)} files were written before the disk was full"
    # nothing written before the error is lost: closed files whole, failed ones a prefix
    damaged = [rel for rel, data in closed.items() if m.path(rel).read_bytes() != data]
    assert not damaged, f"damaged after ENOSPC: {damaged[:10]}"
    for rel, data in failed.items():
        if m.path(rel).exists():
            got = m.path(rel).read_bytes()
            assert data.startswith(got), f"{rel}: the part written before ENOSPC reads back wrong"
    assert file_keys(s3, bucket) == set()

    proxy.restore()
    _wait_uploaded(m, timeout=60)
    m.sync(timeout=120)
    bad = bucket_mismatches(s3, bucket, closed)
    assert not bad, f"closed files missing or different in the bucket: {bad[:10]}"
    for rel in failed:  # whatever part of them is there went up as it reads
        if m.path(rel).exists():
            assert get_bytes(s3, bucket, rel) == m.path(rel).read_bytes(), rel

    # everything is uploaded (clean): new writes make room by evicting clean data
    more = {f"after-{i}.bin": rnd.randbytes(MiB) for i in range(8)}
    for rel, data in more.items():
        try:
            with open(m.path(rel), "wb") as f:
                f.write(data)
        except OSError as exc:  # seen twice under heavy load, not understood: say what the disk held
            raise AssertionError(f"{rel}: {exc!r} after everything was uploaded\n"
                                 f"{_disk_report(cache, m)}\n{log_dir / 'daemon.log'}") from exc
    m.sync(timeout=120)
    assert not bucket_mismatches(s3, bucket, more)
    # and the evicted files read back (from the bucket now)
    sample = sorted(closed)[:3]
    assert all(m.path(rel).read_bytes() == closed[rel] for rel in sample)
