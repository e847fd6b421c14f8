"""``mountsync demo``: every stop signal cleans up like Ctrl-C, and no planted code runs.

The demo is the real CLI in a subprocess (its own moto server, its own mount).
After the signal: the demo exits, the mount daemon and the moto server are
gone, the demo's temp dir is removed and nothing is mounted at DIR.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.fuse import require_fuse
from tests.support.mount_helpers import is_mounted, wait_gone
from tests.support.planted import cli_script, plant, planted_lines

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

READY = "Press Ctrl-C"


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _kill_if(pid: int, word: bytes) -> None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if word in f.read():
                os.kill(pid, signal.SIGKILL)
    except (FileNotFoundError, ProcessLookupError):
        pass


def run_demo_and_stop(tmp_path: Path, sig: int, cwd: Path) -> dict:
    """Start ``mountsync demo DIR``, wait until it is up, send ``sig``; return what was seen."""
    require_fuse()
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir(mode=0o700)
    mp = tmp_path / "demo-mnt"
    env = dict(os.environ, MOUNTSYNC_RUNTIME_DIR=str(runtime), TMPDIR=str(tmpdir))
    proc = subprocess.Popen([cli_script(), "demo", str(mp)], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []

    def reader() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=reader, daemon=True).start()
    seen: dict = {"mountpoint": mp, "daemon": None, "children": [], "workdir": None}
    try:
        deadline = time.monotonic() + 180
        while True:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                pytest.fail(f"demo exited before it was ready ({proc.wait()}):\n{''.join(output)}")
            output.append(line)
            if READY in line:
                break
        status = subprocess.run([sys.executable, "-m", "mountsync", "status", str(mp), "--json"], env=env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert status.returncode == 0, status.stderr
        st = json.loads(status.stdout)
        seen["daemon"] = st["pid"]
        seen["workdir"] = Path(st["cache_dir"]).parent
        seen["children"] = _children(proc.pid)
        assert seen["children"], "the demo has no moto server child"
        assert is_mounted(mp)

        os.kill(proc.pid, sig)
        seen["returncode"] = proc.wait(timeout=180)
        while (line := lines.get(timeout=30)) is not None:
            output.append(line)
        seen["output"] = "".join(output)
        seen["daemon_gone"] = wait_gone(seen["daemon"], 30)
        seen["children_gone"] = all(wait_gone(p, 30) for p in seen["children"])
        seen["mounted"] = is_mounted(mp)
        seen["workdir_exists"] = seen["workdir"].exists()
        seen["tmp_left"] = sorted(os.listdir(tmpdir))
        return seen
    finally:
        # whatever happened: leave nothing behind
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        if seen["daemon"]:
            _kill_if(seen["daemon"], b"mountsync")
        for p in seen["children"]:
            _kill_if(p, b"moto")
        if is_mounted(mp):
            subprocess.run(["fusermount3", "-u", "-z", str(mp)], capture_output=True, timeout=30, check=False)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_demo_cleans_up_on_every_stop_signal(tmp_path, sig):
    seen = run_demo_and_stop(tmp_path, sig, cwd=tmp_path)
    out = seen["output"]
    assert seen["returncode"] == 0, f"demo exited with {seen['returncode']}:\n{out}"
    assert "unmounting" in out, out
    assert seen["daemon_gone"], f"the mount daemon {seen['daemon']} still runs"
    assert seen["children_gone"], f"the moto server {seen['children']} still runs"
    assert not seen["mounted"], f"{seen['mountpoint']} is still mounted"
    assert not seen["workdir_exists"], f"temp dir {seen['workdir']} left behind"
    assert seen["tmp_left"] == [], f"left in TMPDIR: {seen['tmp_left']}"
    assert not seen["mountpoint"].exists(), "the mount point the demo created is left behind"


def test_demo_from_a_directory_with_planted_packages_runs_none_of_them(tmp_path):
    marker = tmp_path / "planted-code-ran"
    root = plant(tmp_path / "planted", marker)
    seen = run_demo_and_stop(tmp_path, signal.SIGINT, cwd=root)
    assert planted_lines(marker) == "", f"planted code ran:\n{planted_lines(marker)}"
    assert seen["returncode"] == 0, seen["output"]
    assert not seen["mounted"]
