"""examples/checkpoint/train.py on a real mount: killed together with the daemon, remounted,
it resumes from the newest complete checkpoint, and no step is lost beyond it (issue: user
experience, containers and checkpoints)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.fault_helpers import sigkill_daemon

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

TRAIN = Path(__file__).resolve().parents[2] / "examples" / "checkpoint" / "train.py"


def _load_example():
    """The example itself (its state function checks the resumed run), loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("checkpoint_train", TRAIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train = _load_example()


def _expected_state(step: int) -> bytes:
    state = train.initial_state()
    for s in range(1, step + 1):
        state = train.train_step(state, s)
    return state


def test_training_killed_with_the_daemon_resumes_from_its_last_checkpoint(mount, s3, bucket):
    opts = ("--write-back-delay", "1")
    m = mount(*opts)
    run_dir = m.path("run1")
    proc = subprocess.Popen([sys.executable, str(TRAIN), "--dir", str(run_dir), "--steps", "100000",
                             "--every", "5", "--step-seconds", "0.005"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    saved: list[int] = []
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    while len(saved) < 6 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if found := re.match(r"saved step (\d+)", line):
            saved.append(int(found.group(1)))
    assert len(saved) >= 6, f"the trainer saved {saved}"
    # kill both at once, mid-run: the daemon first (so the trainer cannot save any more)
    sigkill_daemon(m)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    rest = proc.stdout.read()
    saved += [int(s) for s in re.findall(r"saved step (\d+)", rest)]
    last = max(saved)

    m = mount(*opts, mountpoint=m.mountpoint, cache_dir=m.cache_dir)
    r = subprocess.run([sys.executable, str(TRAIN), "--dir", str(run_dir), "--steps", str(last + 12),
                        "--every", "5", "--step-seconds", "0"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[0] == f"resumed from step {last}", r.stdout  # nothing saved was lost
    final = train.newest_checkpoint(run_dir)
    assert final is not None and final[0] == last + 12
    assert final[1] == _expected_state(last + 12)  # the resumed run computed what an unbroken one would
    m.sync()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="run1/")["Contents"])
    assert keys[-1] == f"run1/ckpt-{last + 12:08d}.bin" and not any(k.endswith(".tmp") for k in keys), keys
    body = s3.get_object(Bucket=bucket, Key=keys[-1])["Body"].read()
    assert train.decode(body) == final
