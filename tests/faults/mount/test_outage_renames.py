"""Renames on a real mount with the endpoint cut (issue: renames that survive outages).

``mv`` of an uploaded file and of an uploaded directory of 100 files succeeds while no
request can reach the endpoint (so the call needed none: it returns at local speed,
measured in docs/benchmarks.md, not asserted here); after the endpoint is back and
``sync``, the bucket holds exactly the new keys with the right bytes. A SIGKILL of the
daemon in the middle of the copies, or between two renames of a chain, loses and
duplicates nothing.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.support.fault_helpers import bucket_mismatches, sigkill_daemon
from tests.support.mount_helpers import file_keys

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

OPTS = ("--write-back-delay", "0.2", "--allow-delete")


def _tree(prefix: str, n: int = 100) -> dict[str, bytes]:
    return {f"{prefix}/f{i:03d}.bin": os.urandom(512 + 37 * i) for i in range(n)}


def _write(m, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        m.path(rel).parent.mkdir(parents=True, exist_ok=True)
        m.path(rel).write_bytes(data)


def _rebase(files: dict[str, bytes], old: str, new: str) -> dict[str, bytes]:
    return {(new + k[len(old):] if k.startswith(old + "/") else k): v for k, v in files.items()}


def test_mv_of_a_file_and_a_directory_with_the_endpoint_cut(fmount, proxy, s3, bucket):
    m = fmount(*OPTS)
    files = _tree("dir")
    files["single.bin"] = os.urandom(3 << 20)
    _write(m, files)
    m.sync(timeout=180)
    assert not bucket_mismatches(s3, bucket, files)
    proxy.cut()
    t0 = time.monotonic()
    os.rename(m.path("single.bin"), m.path("single-renamed.bin"))
    os.rename(m.path("dir"), m.path("moved"))
    took = time.monotonic() - t0
    print(f"two renames with the endpoint cut took {took * 1000:.1f} ms")
    want = _rebase(files, "dir", "moved")
    want["single-renamed.bin"] = want.pop("single.bin")
    assert sorted(os.listdir(m.mountpoint)) == ["moved", "single-renamed.bin"]
    assert sorted(os.listdir(m.path("moved"))) == sorted(k.split("/")[1] for k in want if k.startswith("moved/"))
    assert m.path("moved/f042.bin").read_bytes() == files["dir/f042.bin"]  # cached bytes
    st = m.status()
    assert st["pending_renames"] == 101, st
    assert file_keys(s3, bucket) == set(files)  # nothing happened in the bucket
    proxy.restore()
    m.sync(timeout=180)
    assert file_keys(s3, bucket) == set(want)  # exactly the new keys, none of the old
    assert not bucket_mismatches(s3, bucket, want)
    assert m.status()["pending_renames"] == 0


def test_sigkill_while_a_moved_directory_is_copied(fmount, proxy, s3, bucket):
    m = fmount(*OPTS)
    files = _tree("dir")
    _write(m, files)
    m.sync(timeout=180)
    proxy.cut()
    os.rename(m.path("dir"), m.path("moved"))
    want = _rebase(files, "dir", "moved")
    proxy.restore()
    # kill as soon as the copies have begun (some new keys, old ones still there)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        keys = file_keys(s3, bucket)
        if any(k.startswith("moved/") for k in keys):
            break
        time.sleep(0.01)
    sigkill_daemon(m)
    keys = file_keys(s3, bucket)
    print(f"killed with {sum(k.startswith('moved/') for k in keys)} copied, "
          f"{sum(k.startswith('dir/') for k in keys)} old keys left")
    m = fmount(*OPTS, mountpoint=m.mountpoint, cache_dir=m.cache_dir)
    assert sorted(os.listdir(m.mountpoint)) == ["moved"]
    m.sync(timeout=180)
    assert file_keys(s3, bucket) == set(want)
    assert not bucket_mismatches(s3, bucket, want)


def test_sigkill_between_two_renames_of_a_chain(fmount, proxy, s3, bucket):
    m = fmount(*OPTS)
    files = _tree("a", 30)
    files["top.bin"] = os.urandom(4096)
    _write(m, files)
    m.sync(timeout=180)
    proxy.cut()
    os.rename(m.path("a"), m.path("b"))
    os.rename(m.path("b/f007.bin"), m.path("f007-out.bin"))
    os.rename(m.path("top.bin"), m.path("b/top.bin"))
    sigkill_daemon(m)  # the first renames recorded, none carried out
    proxy.restore()
    m = fmount(*OPTS, mountpoint=m.mountpoint, cache_dir=m.cache_dir)
    os.rename(m.path("b"), m.path("c"))  # the chain goes on after the restart
    want = _rebase(files, "a", "c")
    want["f007-out.bin"] = want.pop("c/f007.bin")
    want["c/top.bin"] = want.pop("top.bin")
    m.sync(timeout=180)
    assert file_keys(s3, bucket) == set(want)
    assert not bucket_mismatches(s3, bucket, want)
    assert {p.name for p in m.path("c").iterdir()} == {k.split("/")[1] for k in want if k.startswith("c/")}
