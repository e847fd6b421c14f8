"""The endpoint goes away (proxy cut) or misbehaves (503 / resets): writes stay
local and never fail, ``status`` explains what waits, and once the endpoint is
back ``sync`` puts everything in the bucket."""

from __future__ import annotations

import os
import random
import subprocess
import time

import pytest

from tests.support.fault_helpers import MiB, bucket_mismatches, random_size
from tests.support.mount_helpers import file_keys, make_tree

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def _wait_status(m, predicate, timeout: float, interval: float = 0.5) -> dict:
    deadline = time.monotonic() + timeout
    st = m.status()
    while not predicate(st) and time.monotonic() < deadline:
        time.sleep(interval)
        st = m.status()
    return st


def test_status_while_the_endpoint_is_down(fmount, proxy, s3, bucket):
    m = fmount("--write-back-delay", "0.2")
    assert os.listdir(m.mountpoint) == []  # listed once (a never-listed root: see below)
    proxy.cut()
    files = {f"down-{i}.txt": f"written while the endpoint is down {i}\n".encode() * (i + 1) for i in range(3)}
    for name, data in files.items():
        m.path(name).write_bytes(data)

    def retried(st):
        mine = [p for p in st["pending"] if p["path"] in files]
        return len(mine) == len(files) and all(p["attempts"] >= 1 and p["next_attempt"] for p in mine)

    st = _wait_status(m, retried, timeout=20)
    assert st["endpoint_reachable"] is False, st
    assert st["endpoint_error"], st
    assert st["pending_files"] == len(files), st
    now = time.time()
    for p in st["pending"]:
        assert p["path"] in files, st["pending"]
        assert p["error"], p
        assert p["attempts"] >= 1, p
        assert p["next_attempt"] is not None and now - 5 < p["next_attempt"] < now + 120, p
        assert p["state"] in ("queued", "uploading"), p
        assert p["size"] == len(files[p["path"]]), p
    assert st["errors"] == [], "a transient outage must not stop an item for good"
    # the text form says the same
    r = m.cli("status", str(m.mountpoint))
    assert r.returncode == 0 and "UNREACHABLE" in r.stdout and "attempt" in r.stdout, r.stdout
    assert file_keys(s3, bucket) == set()

    proxy.restore()
    m.sync(timeout=120)
    assert not bucket_mismatches(s3, bucket, files)
    st = m.status()
    assert st["endpoint_reachable"] is True and st["pending_files"] == 0 and st["pending"] == [], st


def test_create_in_a_directory_never_listed_while_the_endpoint_is_down(fmount, proxy, s3, bucket):
    """The root was never listed when the endpoint goes away: creating files still
    works; a name that exists in the bucket unseen is not overwritten (the local
    version becomes a conflict copy)."""
    fmount.allow_warning(r"cannot list '/'")
    fmount.allow_warning(r"conflict on 'unseen.txt'")
    s3.put_object(Bucket=bucket, Key="unseen.txt", Body=b"already in the bucket\n")
    m = fmount("--write-back-delay", "0.2")
    proxy.cut()
    m.path("offline.txt").write_bytes(b"written offline\n")
    m.path("unseen.txt").write_bytes(b"local version, written blind\n")
    assert {"offline.txt", "unseen.txt"} <= set(os.listdir(m.mountpoint))
    assert m.path("offline.txt").read_bytes() == b"written offline\n"
    proxy.restore()
    m.sync()
    assert not bucket_mismatches(s3, bucket, {"offline.txt": b"written offline\n",
                                              "unseen.txt": b"already in the bucket\n"})
    copies = [k for k in file_keys(s3, bucket) if k.startswith("unseen.conflict-") and k.endswith(".txt")]
    assert len(copies) == 1, sorted(file_keys(s3, bucket))
    assert not bucket_mismatches(s3, bucket, {copies[0]: b"local version, written blind\n"})


def test_writes_during_a_30s_outage_then_sync(fmount, proxy, s3, bucket):
    m = fmount("--write-back-delay", "0.5")
    (m.mountpoint / "out").mkdir()
    rnd = random.Random(30)
    files = {(f"out/f{i:03d}.bin" if i % 2 else f"g{i:03d}.bin"): rnd.randbytes(random_size(rnd, 256 * 1024))
             for i in range(100)}
    proxy.cut()
    t0 = time.monotonic()
    failures = []
    for i, (rel, data) in enumerate(files.items()):
        # spread the 100 files over the outage, so uploads keep trying meanwhile
        time.sleep(max(0.0, t0 + i * 0.28 - time.monotonic()))
        try:
            m.path(rel).write_bytes(data)
        except OSError as exc:
            failures.append(f"{rel}: {exc!r}")
    assert not failures, f"writes failed while the endpoint was down: {failures[:10]}"
    # cached data reads back without the endpoint
    assert all(m.path(rel).read_bytes() == data for rel, data in files.items())
    time.sleep(max(0.0, t0 + 30 - time.monotonic()))
    st = m.status()
    assert st["endpoint_reachable"] is False
    mine = [p for p in st["pending"] if p["path"] in files]  # (the directory "out" may be pending too)
    assert len(mine) == 100, sorted(p["path"] for p in st["pending"])
    assert sum(1 for p in mine if p["attempts"] >= 1) >= 90, "uploads were not even tried"
    assert st["errors"] == [], "an outage must not stop an upload for good"
    assert all(p["next_attempt"] for p in mine if p["attempts"]), "retries without a next attempt"
    # exponential backoff: the first files kept retrying ~29 s, which is 5-8 attempts
    # with waits doubling from 0.25-0.5 s (a fixed short delay would make ~100)
    most = max(p["attempts"] for p in mine)
    assert 3 <= most <= 10, f"{most} attempts in 30 s: not an exponential backoff"
    assert file_keys(s3, bucket) == set(), "something reached the bucket through a cut proxy?"

    proxy.restore()
    t1 = time.monotonic()
    m.sync(timeout=120)
    bad = bucket_mismatches(s3, bucket, files)
    assert not bad, f"missing or different after the outage: {bad[:10]}"
    assert file_keys(s3, bucket) == set(files)
    assert time.monotonic() - t1 < 60, "sync waited for the backoff instead of retrying at once"


def test_copy_with_20_percent_faults(fmount, proxy, s3, bucket, tmp_path):
    src = tmp_path / "src"
    tree = make_tree(src, count=50, seed=77, max_size=2 * MiB)
    expected = {f"tree/{rel}": path.read_bytes() for rel, path in tree.items()}
    m = fmount("--write-back-delay", "1")
    assert os.listdir(m.mountpoint) == []
    proxy.set_fault_rate(0.2, kinds=("503", "reset"), seed=2020)
    r = subprocess.run(["cp", "-r", str(src), str(m.path("tree"))], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"cp failed: {r.stderr}\n{m.log_tail()}"
    # botocore retries each request once by itself, so at 20 % few errors reach the
    # reconciler: make sure some of each kind do (every request fails for a while)
    proxy.set_fault_rate(1.0, kinds=("503",))
    time.sleep(2.5)
    proxy.set_fault_rate(1.0, kinds=("reset",))
    time.sleep(2.5)
    proxy.set_fault_rate(0.2, kinds=("503", "reset"), seed=2021)
    m.sync(timeout=600)
    faults = proxy.stats()["faults"]
    proxy.set_fault_rate(0.0)
    assert faults["503"] > 0 and faults["reset"] > 0, f"no faults were injected: {faults}"
    bad = bucket_mismatches(s3, bucket, expected)
    assert not bad, f"missing or different after faults {faults}: {bad[:10]}"
    assert file_keys(s3, bucket) == set(expected)
    assert m.status()["pending_files"] == 0
    retried = [line for line in m.log_file.read_text().splitlines() if "retrying" in line]
    assert any("SlowDown" in line or "Slow Down" in line for line in retried), retried[:5]
    assert any("SlowDown" not in line and "Slow Down" not in line for line in retried), retried[:5]
