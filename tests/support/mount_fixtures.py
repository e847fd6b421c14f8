"""Fixtures for tests that really mount a bucket through FUSE (tests/mount, tests/faults/mount,
tests/programs, tests/model), registered for the whole suite by ``tests/conftest.py``.

- ``moto_endpoint`` (session): one ``python -m moto.server`` subprocess.
- ``cli_env`` (session): the environment for every ``python -m mountsync`` call
  and daemon: dummy AWS credentials and a private control-socket directory
  (``MOUNTSYNC_RUNTIME_DIR``) so these tests never meet another mount's socket.
- ``s3``: a plain boto3 client to look at the bucket independently of mountsync.
- ``bucket``: a new, empty bucket per test (moto is reset afterwards).
- ``mount``: a factory ``mount(*options, bucket=..., mountpoint=..., cache_dir=...)``
  that runs ``mountsync mount`` in a subprocess and returns a ``Mount``. Every
  mount is torn down after the test, whatever happened: ``unmount``; if that
  fails, SIGKILL of the daemon (pid from ``status --json``) and
  ``fusermount3 -u -z``. Then every ``daemon.log`` the test created is scanned:
  a line with `` ERROR `` or ``Traceback`` fails the test, and so does a
  `` WARNING `` line unless the test declared it with ``mount.allow_warning(regex)``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.azurite import ACCOUNT as AZURE_ACCOUNT
from tests.support.azurite import new_container_name
from tests.support.fuse import require_fuse
from tests.support.moto_server import (
    apply_test_aws_env,
    make_boto3_client,
    reset_moto,
    start_moto_subprocess,
    stop_moto_subprocess,
)
from tests.support.mount_helpers import is_mounted, run_cli, wait_gone

UNMOUNT_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def cli_env(tmp_path_factory) -> dict:
    env = apply_test_aws_env(dict(os.environ))
    env["MOUNTSYNC_RUNTIME_DIR"] = str(tmp_path_factory.mktemp("runtime"))
    return env


@pytest.fixture(scope="session")
def moto_endpoint(cli_env):
    endpoint, proc = start_moto_subprocess()
    try:
        yield endpoint
    finally:
        stop_moto_subprocess(proc)


@pytest.fixture(scope="session")
def s3(moto_endpoint):
    return make_boto3_client(moto_endpoint)


@pytest.fixture
def bucket(s3, moto_endpoint):
    name = f"mnt-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=name)
    yield name
    reset_moto(moto_endpoint)  # frees the memory of big objects; the next test uses a new name anyway


@dataclass
class Mount:
    """One ``mountsync mount`` made by the ``mount`` fixture."""

    bucket: str
    mountpoint: Path
    cache_dir: Path
    env: dict
    result: subprocess.CompletedProcess
    pid: int | None = None
    options: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result.returncode == 0

    @property
    def log_file(self) -> Path:
        return self.cache_dir / "daemon.log"

    def cli(self, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess:
        return run_cli(self.env, *args, timeout=timeout)

    def sync(self, timeout: float = 120.0) -> None:
        r = self.cli("sync", str(self.mountpoint), "--timeout", str(timeout), timeout=timeout + 60)
        assert r.returncode == 0, f"sync failed ({r.returncode}): {r.stderr.strip()}\n{self.log_tail()}"

    def status(self) -> dict:
        r = self.cli("status", str(self.mountpoint), "--json", timeout=60)
        assert r.returncode == 0, f"status failed ({r.returncode}): {r.stderr.strip()}"
        return json.loads(r.stdout)

    def unmount(self, timeout: float = UNMOUNT_TIMEOUT) -> subprocess.CompletedProcess:
        return self.cli("unmount", str(self.mountpoint), "--timeout", str(timeout), timeout=timeout + 120)

    def is_mounted(self) -> bool:
        return is_mounted(self.mountpoint)

    def path(self, rel: str) -> Path:
        return self.mountpoint / rel

    def log_tail(self, n: int = 30) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no daemon.log)"
        return "daemon.log (tail):\n" + "\n".join(lines[-n:])


class MountFactory:
    def __init__(self, env: dict, endpoint: str, default_bucket: str, tmp_path: Path) -> None:
        self.env = env
        self.endpoint = endpoint
        self.default_bucket = default_bucket
        self.tmp_path = tmp_path
        self.mounts: list[Mount] = []
        self.cache_dirs: list[Path] = []
        self.allowed_warnings: list[re.Pattern] = []
        self._n = 0

    def new_dir(self, stem: str) -> Path:
        self._n += 1
        return self.tmp_path / f"{stem}-{self._n}"

    def source_args(self, bucket: str, endpoint: str) -> tuple[str, list[str]]:
        """The SOURCE argument and the options that say where it is."""
        return bucket, ["--endpoint-url", endpoint, "--force-path-style", "--region", "us-east-1"]

    def allow_warning(self, pattern: str) -> None:
        """A daemon.log WARNING line matching ``pattern`` is expected in this test."""
        self.allowed_warnings.append(re.compile(pattern))

    def __call__(self, *options: str, bucket: str | None = None, mountpoint: Path | None = None,
                 cache_dir: Path | None = None, endpoint: str | None = None, check: bool = True,
                 create_mountpoint: bool = True, timeout: float = 120.0) -> Mount:
        bucket = self.default_bucket if bucket is None else bucket
        if mountpoint is None:
            mountpoint = self.new_dir("mnt")
            if create_mountpoint:
                mountpoint.mkdir()
        if cache_dir is None:
            cache_dir = self.new_dir("cache")
        if cache_dir not in self.cache_dirs:
            self.cache_dirs.append(cache_dir)
        source, where = self.source_args(bucket, endpoint or self.endpoint)
        argv = ["mount", source, str(mountpoint), *where, "--cache-dir", str(cache_dir), *options]
        result = run_cli(self.env, *argv, timeout=timeout)
        m = Mount(bucket=bucket, mountpoint=mountpoint, cache_dir=cache_dir, env=self.env, result=result,
                  options=list(options))
        self.mounts.append(m)
        if result.returncode == 0:
            m.pid = m.status()["pid"]
        if check:
            assert result.returncode == 0, (
                f"mount failed ({result.returncode}): {result.stderr.strip()}\n{m.log_tail()}")
            assert m.is_mounted(), f"mount returned 0 but {mountpoint} is not mounted"
        return m

    # ------------------------------------------------------------ teardown

    def teardown(self) -> list[str]:
        problems: list[str] = []
        done: set[Path] = set()
        for m in reversed(self.mounts):
            if m.mountpoint in done:
                continue
            done.add(m.mountpoint)
            problems += self._teardown_one(m)
        # every daemon we saw must be gone (its log is complete only then)
        for m in self.mounts:
            if m.pid is not None and not wait_gone(m.pid, 30):
                problems.append(f"daemon {m.pid} for {m.mountpoint} still runs after unmount; killed it")
                self._kill(m.pid)
        return problems

    def _teardown_one(self, m: Mount) -> list[str]:
        if not is_mounted(m.mountpoint):
            return []
        try:
            r = m.unmount()
            if r.returncode == 0 and not is_mounted(m.mountpoint):
                return []
            why = f"unmount of {m.mountpoint} failed at teardown ({r.returncode}): {r.stderr.strip()}"
        except subprocess.TimeoutExpired:
            why = f"unmount of {m.mountpoint} hung at teardown"
        # forced cleanup: kill the daemon, detach the mount
        pid = None
        try:
            r = m.cli("status", str(m.mountpoint), "--json", timeout=15)
            if r.returncode == 0:
                pid = json.loads(r.stdout).get("pid")
        except (subprocess.TimeoutExpired, ValueError):
            pass
        for p in {pid, m.pid} - {None}:
            self._kill(p)
        subprocess.run(["fusermount3", "-u", "-z", str(m.mountpoint)], capture_output=True, timeout=30)
        return [why]

    @staticmethod
    def _kill(pid: int) -> None:
        # only a process that is a mountsync daemon (guards against pid reuse)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"mountsync" not in f.read():
                    return
            os.kill(pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            return
        wait_gone(pid, 10)

    def log_problems(self) -> list[str]:
        bad: list[str] = []
        for cache_dir in self.cache_dirs:
            log_file = cache_dir / "daemon.log"
            if not log_file.exists():
                continue
            for line in log_file.read_text(errors="replace").splitlines():
                unexpected_warning = " WARNING " in line and not any(p.search(line) for p in self.allowed_warnings)
                if " ERROR " in line or "Traceback" in line or unexpected_warning:
                    bad.append(f"{log_file}: {line}")
        return bad


@pytest.fixture
def mount(cli_env, moto_endpoint, bucket, tmp_path):
    """Factory: ``mount(*options, bucket=None, mountpoint=None, cache_dir=None, check=True)``."""
    require_fuse()
    factory = MountFactory(cli_env, moto_endpoint, bucket, tmp_path)
    yield factory
    _finish(factory)


def _finish(factory: MountFactory) -> None:
    """Unmount everything the test left mounted; fail on problems and unexpected log lines."""
    problems = factory.teardown()
    bad_lines = factory.log_problems()
    if problems or bad_lines:
        msg = "\n".join(problems)
        if bad_lines:
            msg += "\nunexpected lines in daemon.log:\n" + "\n".join(bad_lines[:30])
        pytest.fail(msg.strip(), pytrace=False)


class AzureMountFactory(MountFactory):
    """Mounts of containers of the test Azurite: ``az://devstoreaccount1/CONTAINER``."""

    def source_args(self, bucket: str, endpoint: str) -> tuple[str, list[str]]:
        return f"az://{AZURE_ACCOUNT}/{bucket}", ["--endpoint-url", endpoint]


@pytest.fixture
def azure_container(azurite):
    """A new, empty container of the test Azurite; its name."""
    from azure.storage.blob import BlobServiceClient

    name = new_container_name()
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(name)
    return name


@pytest.fixture
def azure_mount(cli_env, azurite, azure_container, tmp_path):
    """Factory like ``mount``, for az:// mounts of ``azure_container`` on Azurite."""
    require_fuse()
    factory = AzureMountFactory({**cli_env, **azurite.env()}, azurite.endpoint, azure_container, tmp_path)
    yield factory
    _finish(factory)


class GcsMountFactory(MountFactory):
    """Mounts of buckets of the test GCS emulator: ``gs://BUCKET`` (anonymous, as it needs)."""

    def source_args(self, bucket: str, endpoint: str) -> tuple[str, list[str]]:
        return f"gs://{bucket}", ["--endpoint-url", endpoint]


@pytest.fixture
def gcs_bucket(gcs_emulator):
    """A new, empty bucket of the test GCS emulator; its name."""
    return gcs_emulator.new_bucket()


@pytest.fixture
def gcs_mount(cli_env, gcs_emulator, gcs_bucket, tmp_path):
    """Factory like ``mount``, for gs:// mounts of ``gcs_bucket`` on the emulator."""
    require_fuse()
    env = {k: v for k, v in cli_env.items() if not k.startswith("GOOGLE_")}
    factory = GcsMountFactory(env, gcs_emulator.endpoint, gcs_bucket, tmp_path)
    factory.allow_warning(r"the server ignores conditional")  # the emulator's gap (gcs_emulator.py)
    yield factory
    _finish(factory)
