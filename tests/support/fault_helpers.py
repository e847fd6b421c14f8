"""Helpers for the fault-injection mount tests."""

from __future__ import annotations

import os
import random
import signal
import time

from tests.support.mount_helpers import get_bytes, pid_alive

MiB = 1024 * 1024


def sigkill_daemon(m, timeout: float = 10.0) -> int:
    """SIGKILL the daemon of mount ``m`` (pid from ``status --json``); wait until it is gone."""
    pid = m.status()["pid"]
    assert pid == m.pid or m.pid is None, f"status names pid {pid}, the mount started {m.pid}"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"daemon {pid} still alive {timeout}s after SIGKILL"
        time.sleep(0.02)
    return pid


def random_size(rnd: random.Random, max_size: int = MiB) -> int:
    """Half uniform in [0, max_size], half log-uniform (many small files), some 0."""
    r = rnd.random()
    if r < 0.05:
        return 0
    if r < 0.5:
        return rnd.randint(1, max_size)
    return min(max_size, int(2 ** rnd.uniform(0, max_size.bit_length())))


def bucket_mismatches(s3, bucket: str, expected: dict[str, bytes]) -> list[str]:
    """Keys of ``expected`` whose object is missing or differs (with a short reason)."""
    from botocore.exceptions import ClientError

    bad = []
    for key, data in sorted(expected.items()):
        try:
            got = get_bytes(s3, bucket, key)
        except ClientError as exc:
            bad.append(f"{key}: {exc.response.get('Error', {}).get('Code')}")
            continue
        if got != data:
            bad.append(f"{key}: {len(got)} bytes in the bucket, {len(data)} expected")
    return bad
