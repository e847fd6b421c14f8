"""The file systems under comparison: a native directory and three FUSE clients of S3.

``System.mount(...)`` returns a ``Mounted`` handle: its ``path``, the daemon's
``pid`` (for VmHWM), ``unmount()`` (clean) and ``kill()`` (SIGKILL + lazy
unmount, for a sample that failed or for "crash with pending uploads"). Every
external command runs with a timeout; every wait polls with a deadline.

The S3 endpoint given to a mount is the bench proxy (``http://127.0.0.1:P``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path


class BenchError(Exception):
    """A sample could not be taken; the message goes into the table."""


def is_mounted(path: Path) -> bool:
    target = str(path)
    try:
        with open("/proc/self/mounts") as f:
            return any(line.split()[1] == target for line in f if len(line.split()) > 1)
    except OSError:
        return False


def wait_until(pred, timeout: float, what: str, interval: float = 0.05) -> float:
    """Poll ``pred`` until true; return the time it took. Raise BenchError at the deadline."""
    t0 = time.monotonic()
    while True:
        if pred():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def vm_hwm(pid: int | None) -> int | None:
    """Peak resident set size (bytes) of ``pid`` from /proc/PID/status, or None."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def find_pid(program: str, mountpoint: Path) -> int | None:
    """The process whose command line names ``program`` and ``mountpoint`` (a daemonised peer)."""
    want = str(mountpoint).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if args and os.path.basename(args[0].decode(errors="replace")) == program and want in args:
            return int(entry)
    return None


def run(argv: list[str], timeout: float, env: dict | None = None, cwd: Path | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{os.path.basename(argv[0])} {argv[1] if len(argv) > 1 else ''} "
                         f"timed out after {timeout:.0f} s") from exc
    if check and r.returncode != 0:
        last = (r.stderr.strip() or r.stdout.strip()).splitlines()[-1:] or ["(no output)"]
        raise BenchError(f"{' '.join(os.path.basename(a) for a in argv[:2])} exited {r.returncode}: "
                         f"{last[0][:160]}")
    return r


@dataclass
class Env:
    """Where things are: the S3 endpoint for mounts, the work dir, environments for children."""

    endpoint: str
    workdir: Path
    env: dict
    write_back_delay: float = 1.0


@dataclass
class Mounted:
    system: System
    path: Path
    cache_dir: Path | None
    pid: int | None = None
    extra: dict = field(default_factory=dict)

    def rss_peak(self) -> int | None:
        return vm_hwm(self.pid)

    def unmount(self, timeout: float = 60.0) -> None:
        self.system.unmount(self, timeout)

    def kill(self) -> None:
        self.system.kill(self)


class System:
    name = "?"
    program = "?"
    is_mount = True

    def __init__(self, env: Env) -> None:
        self.env = env

    def mount(self, bucket: str, mnt: Path, cache_dir: Path, *, prefix: str = "",
              options: list[str] | None = None, timeout: float = 60.0) -> Mounted:
        raise NotImplementedError

    def unmount(self, m: Mounted, timeout: float) -> None:
        if is_mounted(m.path):
            run(["fusermount3", "-u", str(m.path)], timeout=30, check=False)
        if m.pid is not None:
            try:
                wait_until(lambda: not pid_alive(m.pid), timeout, f"{self.name} to exit")
            except BenchError:
                self.kill(m)
                raise
        if is_mounted(m.path):
            self.kill(m)
            raise BenchError(f"{self.name}: still mounted after unmount")

    def kill(self, m: Mounted) -> None:
        pid = m.pid if m.pid is not None else find_pid(self.program, m.path)
        if pid is not None and pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                wait_until(lambda: not pid_alive(pid), 10, "killed daemon to exit")
            except BenchError:
                pass
        if is_mounted(m.path):
            run(["fusermount3", "-u", "-z", str(m.path)], timeout=30, check=False)


class Native(System):
    """A plain directory on the local disk (the kernel's page cache, no FUSE)."""

    name = "native"
    is_mount = False

    def mount(self, bucket: str, mnt: Path, cache_dir: Path, *, prefix: str = "",
              options: list[str] | None = None, timeout: float = 60.0) -> Mounted:
        mnt.mkdir(parents=True, exist_ok=True)
        return Mounted(self, mnt, None)

    def unmount(self, m: Mounted, timeout: float) -> None:
        shutil.rmtree(m.path, ignore_errors=True)

    def kill(self, m: Mounted) -> None:
        shutil.rmtree(m.path, ignore_errors=True)


class Mountsync(System):
    name = "mountsync"
    program = "mountsync"

    def cli(self, *args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess:
        return run([sys.executable, "-m", "mountsync", *args], timeout=timeout, env=self.env.env, check=check)

    def mount(self, bucket: str, mnt: Path, cache_dir: Path, *, prefix: str = "",
              options: list[str] | None = None, timeout: float = 60.0) -> Mounted:
        mnt.mkdir(parents=True, exist_ok=True)
        target = f"{bucket}/{prefix}" if prefix else bucket
        opts = options if options is not None else ["--write-back-delay", f"{self.env.write_back_delay:g}"]
        self.cli("mount", target, str(mnt), "--endpoint-url", self.env.endpoint, "--force-path-style",
                 "--region", "us-east-1", "--cache-dir", str(cache_dir), *opts, timeout=timeout)
        m = Mounted(self, mnt, cache_dir)
        m.pid = self.status(m).get("pid")
        return m

    def status(self, m: Mounted) -> dict:
        r = self.cli("status", str(m.path), "--json", timeout=60)
        return json.loads(r.stdout)

    def unmount(self, m: Mounted, timeout: float) -> None:
        if is_mounted(m.path):
            r = self.cli("unmount", str(m.path), "--timeout", f"{timeout:g}", timeout=timeout + 30, check=False)
            if r.returncode not in (0, 3):
                self.kill(m)
                raise BenchError(f"mountsync unmount exited {r.returncode}: {r.stderr.strip()[:160]}")
        super().unmount(m, 30)


class Rclone(System):
    """``rclone mount`` with the full VFS cache and a 1 s write-back."""

    name = "rclone"
    program = "rclone"

    def _config(self) -> Path:
        conf = self.env.workdir / "rclone.conf"
        if not conf.exists():
            conf.write_text(
                "[remote]\ntype = s3\nprovider = Other\naccess_key_id = testing\n"
                "secret_access_key = testing\n"
                f"endpoint = {self.env.endpoint}\nregion = us-east-1\nforce_path_style = true\n")
        return conf

    def mount(self, bucket: str, mnt: Path, cache_dir: Path, *, prefix: str = "",
              options: list[str] | None = None, timeout: float = 60.0) -> Mounted:
        mnt.mkdir(parents=True, exist_ok=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in self.env.env.items() if k != "AWS_CA_BUNDLE"}
        remote = f"remote:{bucket}/{prefix}" if prefix else f"remote:{bucket}"
        opts = options if options is not None else ["--vfs-write-back", f"{self.env.write_back_delay:g}s"]
        argv = ["rclone", "--config", str(self._config()), "mount", remote, str(mnt),
                "--vfs-cache-mode", "full", "--cache-dir", str(cache_dir), "--daemon",
                "--log-file", str(cache_dir.parent / f"{cache_dir.name}.rclone.log"), *opts]
        # --daemon keeps the caller's stdout/stderr open: never capture them
        try:
            rc = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=timeout, check=False).returncode
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"rclone mount timed out after {timeout:.0f} s") from exc
        if rc != 0:
            raise BenchError(f"rclone mount exited {rc} (see {argv[argv.index('--log-file') + 1]})")
        wait_until(lambda: is_mounted(mnt), timeout, "rclone to mount")
        return Mounted(self, mnt, cache_dir, pid=find_pid("rclone", mnt))


class S3fs(System):
    """``s3fs`` with a local cache dir (it uploads on close)."""

    name = "s3fs"
    program = "s3fs"

    def mount(self, bucket: str, mnt: Path, cache_dir: Path, *, prefix: str = "",
              options: list[str] | None = None, timeout: float = 60.0) -> Mounted:
        mnt.mkdir(parents=True, exist_ok=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        passwd = self.env.workdir / "s3fs.passwd"
        if not passwd.exists():
            passwd.write_text("testing:testing\n")
            passwd.chmod(0o600)
        target = f"{bucket}:/{prefix.rstrip('/')}" if prefix else bucket
        argv = ["s3fs", target, str(mnt), "-o", f"url={self.env.endpoint}", "-o", "use_path_request_style",
                "-o", "endpoint=us-east-1", "-o", f"passwd_file={passwd}", "-o", f"use_cache={cache_dir}",
                *(options or [])]
        run(argv, timeout=timeout, env=self.env.env)
        wait_until(lambda: is_mounted(mnt), timeout, "s3fs to mount")
        return Mounted(self, mnt, cache_dir, pid=find_pid("s3fs", mnt))


def versions(env: Env) -> dict[str, str]:
    """One line of version for each program (``?`` when it cannot be asked)."""
    out: dict[str, str] = {}
    probes = {
        "rclone": ["rclone", "version"],
        "s3fs": ["s3fs", "--version"],
        "fio": ["fio", "--version"],
        "fusermount3": ["fusermount3", "--version"],
    }
    for name, argv in probes.items():
        try:
            e = {k: v for k, v in env.env.items() if k != "AWS_CA_BUNDLE"}
            r = subprocess.run(argv, env=e, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL,
                               check=False)
            text = (r.stdout.strip() or r.stderr.strip()).splitlines()
            out[name] = text[0].strip() if text else "?"
        except (OSError, subprocess.TimeoutExpired):
            out[name] = "not installed"
    return out


ALL_SYSTEMS = {cls.name: cls for cls in (Native, Mountsync, Rclone, S3fs)}
