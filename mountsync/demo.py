"""``mountsync demo``: an embedded S3 server on loopback, a bucket, mounted, shown working.

The server is moto in server mode, in a child process bound to 127.0.0.1 (in
memory: everything is gone when the demo ends). The mount is a normal
``mountsync mount`` of that server, with a short write-back delay.

Stopping: Ctrl-C, SIGTERM, SIGHUP and SIGQUIT all take the same path
(``KeyboardInterrupt``): unmount (uploading what is pending), stop the daemon
and the moto server, remove the temp dir and the mount point the demo made.
A signal that arrives while the mount is being set up is held until that step
is over, so a mount that comes up is always taken down again. The children
run in their own sessions, so a terminal's Ctrl-C reaches only the demo,
which then stops them in order. Python children run isolated (mountsync.spawn).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import UserError
from .spawn import module_argv, mountsync_argv

DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_moto(port: int) -> subprocess.Popen:
    """Start moto's server on 127.0.0.1:port (in its own session); see ``wait_for_moto``."""
    return subprocess.Popen(module_argv("moto.server", "-H", "127.0.0.1", "-p", str(port)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def wait_for_moto(proc: subprocess.Popen, port: int) -> None:
    """Return once the server answers."""
    url = f"http://127.0.0.1:{port}/moto-api/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError("the embedded S3 server (moto) exited at start: is moto[server] installed? run make demo")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise UserError("the embedded S3 server (moto) did not answer within 30s")


def create_bucket(endpoint: str, bucket: str) -> None:
    from .backend.s3 import S3Store

    S3Store(bucket, endpoint_url=endpoint, region="us-east-1", force_path_style=True).create_bucket()


def _run(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    # own session: a terminal's Ctrl-C must not stop a mount or an unmount half-way
    return subprocess.run(mountsync_argv(*argv), env=env, text=True, capture_output=True,
                          stdin=subprocess.DEVNULL, start_new_session=True, check=False)


def _say(text: str) -> None:
    try:
        print(text, flush=True)
    except OSError:  # the terminal hung up (SIGHUP): keep cleaning up
        pass


class _StopSignals:
    """Every stop signal becomes ``KeyboardInterrupt``, as Ctrl-C does; inside
    ``deferred()`` it is only remembered and raised when the block ends."""

    def __init__(self) -> None:
        self.deferring = False
        self.pending: int | None = None

    def handler(self, signum: int, _frame: object) -> None:
        if self.deferring:
            self.pending = signum
            return
        raise KeyboardInterrupt

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self.handler)

    @staticmethod
    def ignore() -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
            if self.pending is not None:
                raise KeyboardInterrupt


@dataclass
class _Demo:
    """What the demo started, so that cleanup stops exactly that."""

    mountpoint: str
    env: dict
    made_mountpoint: bool = False
    workdir: str | None = None
    moto: subprocess.Popen | None = None
    mounted: bool = False
    daemon_pid: int | None = None

    def cleanup(self) -> None:
        from .daemon import detach_lazily, is_mounted

        if self.mounted or is_mounted(self.mountpoint):
            _say("\nunmounting (uploading anything pending first)...")
            r = _run(["unmount", self.mountpoint, "--timeout", "30"], self.env)
            if r.returncode != 0:
                _say(r.stderr.strip())
        if self.daemon_pid is not None and not _wait_exit(self.daemon_pid, 30):
            _say(f"the mount daemon (pid {self.daemon_pid}) did not stop; killing it")
            _kill(self.daemon_pid)
        if is_mounted(self.mountpoint):
            detach_lazily(self.mountpoint)
        if self.moto is not None:
            self.moto.terminate()
            try:
                self.moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.moto.kill()
                self.moto.wait()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        if self.made_mountpoint:
            try:
                os.rmdir(self.mountpoint)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _wait_exit(pid, 10)


def run_demo(mountpoint: str, debug: bool = False) -> int:
    import importlib.util

    if importlib.util.find_spec("moto") is None:
        raise UserError("the demo needs its embedded S3 server, which is not installed: "
                        "pip install 'mountsync[demo]' (or run make demo)")
    env = dict(os.environ, **DEMO_ENV)
    os.environ.update(DEMO_ENV)
    mountpoint = os.path.abspath(mountpoint)
    stops = _StopSignals()
    stops.install()
    demo = _Demo(mountpoint, env, made_mountpoint=not os.path.lexists(mountpoint))
    try:
        os.makedirs(mountpoint, exist_ok=True)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        demo.workdir = tempfile.mkdtemp(prefix="mountsync-demo-")
        with stops.deferred():  # whatever starts here is recorded before a stop is acted on
            demo.moto = launch_moto(port)
        wait_for_moto(demo.moto, port)
        create_bucket(endpoint, "demo")
        _say(f"embedded S3 server: {endpoint} (moto, in memory), bucket 'demo'")
        with stops.deferred():
            r = _run(["mount", "demo", mountpoint, "--endpoint-url", endpoint, "--force-path-style",
                      "--region", "us-east-1", "--cache-dir", os.path.join(demo.workdir, "cache"),
                      "--write-back-delay", "1", "--metadata-ttl", "1", "--allow-delete"]
                     + (["--debug"] if debug else []), env)
            demo.mounted = r.returncode == 0
            if demo.mounted:
                from . import control

                demo.daemon_pid = control.request(mountpoint, {"op": "ping"}).get("pid")
        if not demo.mounted:
            raise UserError((r.stderr.strip() or r.stdout.strip()).removeprefix("mountsync: "))
        _show(mountpoint, endpoint, env)
        _say(f"\nThe bucket is mounted at {mountpoint}: try it in another shell "
             f"(mountsync status {mountpoint}). Press Ctrl-C to unmount and stop.")
        try:
            while True:
                signal.pause()
        except KeyboardInterrupt:
            pass
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        stops.ignore()
        demo.cleanup()


def _show(mountpoint: str, endpoint: str, env: dict) -> None:
    """Write a few files, sync, list the bucket."""
    _say(f"mounted s3://demo at {mountpoint}\n")
    _say("$ echo 'hello from mountsync' > hello.txt; mkdir -p notes/2026; seq 1 1000 > notes/2026/numbers.txt")
    with open(os.path.join(mountpoint, "hello.txt"), "w") as f:
        f.write("hello from mountsync\n")
    os.makedirs(os.path.join(mountpoint, "notes", "2026"), exist_ok=True)
    with open(os.path.join(mountpoint, "notes", "2026", "numbers.txt"), "w") as f:
        f.write("".join(f"{i}\n" for i in range(1, 1001)))
    _say("$ ls -lR")
    _say(subprocess.run(["ls", "-lR"], cwd=mountpoint, capture_output=True, text=True, check=False).stdout)
    _say("$ mountsync sync " + mountpoint)
    r = _run(["sync", mountpoint, "--timeout", "60"], env)
    _say(r.stderr.strip() or "all changes are in the bucket")
    _say("\nobjects in the bucket now:")
    from .backend.s3 import S3Store

    store = S3Store("demo", endpoint_url=endpoint, region="us-east-1", force_path_style=True)
    token = None
    while True:
        page = store.list_page("", None, token)
        for o in page.objects:
            _say(f"  {o.size:8d}  {o.key}")
        token = page.next_token
        if not token:
            break
