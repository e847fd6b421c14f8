"""Fixtures for running ordinary POSIX programs (git, tar, rsync, sqlite3, vim, cp, s3fs) on a real mount.

The real-mount fixtures (``cli_env``, ``moto_endpoint``, ``s3``, ``bucket``,
``mount``) come from ``tests/support/mount_fixtures.py`` (registered by
``tests/conftest.py``; one moto subprocess for the whole run).

On top of them:

- ``tool_env``: the environment for the programs run on the mount: HOME in the
  test's tmp dir, no system/global git config, C locale, so that nothing of the
  machine's configuration changes what the programs do.
- ``run(argv, cwd=..., check=True)``: run a program, text output captured; on
  failure the assertion shows its output.
- ``s3fs_mount(bucket)``: mount ``bucket`` with Debian's s3fs (flags as in
  PEERS.md) on a new mountpoint in the test's tmp dir, wait until it is in
  /proc/mounts, return the mountpoint. Unmounted with ``fusermount3 -u`` after the
  test (lazily if that fails). Skips when s3fs is not installed (fails in CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.fuse import in_ci
from tests.support.mount_helpers import is_mounted


@pytest.fixture
def tool_env(tmp_path) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update({
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        "TZ": "UTC",
    })
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


@pytest.fixture
def run(tool_env):
    def _run(argv, cwd=None, check=True, timeout=300, input=None, env=None) -> subprocess.CompletedProcess:
        r = subprocess.run([str(a) for a in argv], check=False, cwd=cwd, env=env or tool_env, capture_output=True,
                           text=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check:
            assert r.returncode == 0, (f"{' '.join(map(str, argv))} (cwd {cwd}) exited {r.returncode}\n"
                                       f"stdout: {r.stdout[-3000:]}\nstderr: {r.stderr[-3000:]}")
        return r

    return _run


def _need_s3fs() -> str:
    path = shutil.which("s3fs")
    if path is None:
        if in_ci():
            pytest.fail("s3fs is not installed (Debian package s3fs)", pytrace=False)
        pytest.skip("s3fs is not installed (Debian package s3fs)")
    return path


def _fusermount_u(mountpoint: Path) -> bool:
    for _ in range(20):
        if not is_mounted(mountpoint):
            return True
        subprocess.run(["fusermount3", "-u", str(mountpoint)], check=False, capture_output=True, timeout=30)
        if not is_mounted(mountpoint):
            return True
        time.sleep(0.25)  # busy for a moment (a program still had it open)
    subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], check=False, capture_output=True, timeout=30)
    return False


class S3fsMounts:
    def __init__(self, endpoint: str, tmp_path: Path) -> None:
        self.endpoint = endpoint
        self.tmp_path = tmp_path
        self.mountpoints: list[Path] = []
        self.passwd = tmp_path / "s3fs-passwd"
        self.passwd.write_text("testing:testing\n")
        self.passwd.chmod(0o600)

    def __call__(self, bucket: str, *extra: str) -> Path:
        s3fs = _need_s3fs()
        mnt = self.tmp_path / f"s3fs-{len(self.mountpoints) + 1}"
        mnt.mkdir()
        self.mountpoints.append(mnt)
        r = subprocess.run(
            [s3fs, bucket, str(mnt), "-o", f"url={self.endpoint}", "-o", "use_path_request_style",
             "-o", "endpoint=us-east-1", "-o", f"passwd_file={self.passwd}", *extra],
            check=False, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"s3fs exited {r.returncode}: {r.stderr.strip()}"
        deadline = time.monotonic() + 20
        while not is_mounted(mnt):
            assert time.monotonic() < deadline, f"s3fs mount of {bucket} did not appear at {mnt}"
            time.sleep(0.05)
        return mnt

    def unmount(self, mnt: Path) -> None:
        assert _fusermount_u(mnt), f"fusermount3 -u {mnt} failed; detached lazily"

    def teardown(self) -> list[str]:
        return [f"s3fs mount {m} was busy at teardown; detached lazily"
                for m in reversed(self.mountpoints) if not _fusermount_u(m)]


@pytest.fixture
def s3fs_mount(moto_endpoint, tmp_path):
    mounts = S3fsMounts(moto_endpoint, tmp_path)
    yield mounts
    problems = mounts.teardown()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
