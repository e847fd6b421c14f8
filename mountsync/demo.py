"""``mountsync demo``: an embedded S3 server on loopback, a bucket, mounted, shown working.

The server is moto in server mode, in a child process bound to 127.0.0.1 (in
memory: everything is gone when the demo ends). The mount is a normal
``mountsync mount`` of that server, with a short write-back delay.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from .errors import UserError

DEMO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(port: int) -> subprocess.Popen:
    """Start moto's server on 127.0.0.1:port; returns once it answers."""
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/moto-api/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UserError("the embedded S3 server (moto) exited at start: is moto[server] installed? run make demo")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    proc.kill()
    raise UserError("the embedded S3 server (moto) did not answer within 30s")


def create_bucket(endpoint: str, bucket: str) -> None:
    from .backend.s3 import S3Store

    S3Store(bucket, endpoint_url=endpoint, region="us-east-1", force_path_style=True).create_bucket()


def _run(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mountsync", *argv], env=env, text=True,
                          capture_output=True)


def _say(text: str) -> None:
    print(text, flush=True)


def run_demo(mountpoint: str, debug: bool = False) -> int:
    env = dict(os.environ, **DEMO_ENV)
    os.environ.update(DEMO_ENV)
    mountpoint = os.path.abspath(mountpoint)
    os.makedirs(mountpoint, exist_ok=True)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    workdir = tempfile.mkdtemp(prefix="mountsync-demo-")
    moto = start_moto(port)
    mounted = False
    try:
        create_bucket(endpoint, "demo")
        _say(f"embedded S3 server: {endpoint} (moto, in memory), bucket 'demo'")
        r = _run(["mount", "demo", mountpoint, "--endpoint-url", endpoint, "--force-path-style",
                  "--region", "us-east-1", "--cache-dir", os.path.join(workdir, "cache"),
                  "--write-back-delay", "1", "--metadata-ttl", "1", "--allow-delete"]
                 + (["--debug"] if debug else []), env)
        if r.returncode != 0:
            raise UserError((r.stderr.strip() or r.stdout.strip()).removeprefix("mountsync: "))
        mounted = True
        _say(f"mounted s3://demo at {mountpoint}\n")
        _say("$ echo 'hello from mountsync' > hello.txt; mkdir -p notes/2026; seq 1 1000 > notes/2026/numbers.txt")
        with open(os.path.join(mountpoint, "hello.txt"), "w") as f:
            f.write("hello from mountsync\n")
        os.makedirs(os.path.join(mountpoint, "notes", "2026"), exist_ok=True)
        with open(os.path.join(mountpoint, "notes", "2026", "numbers.txt"), "w") as f:
            f.write("".join(f"{i}\n" for i in range(1, 1001)))
        _say("$ ls -lR")
        _say(subprocess.run(["ls", "-lR"], cwd=mountpoint, capture_output=True, text=True).stdout)
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
        _say(f"\nThe bucket is mounted at {mountpoint}: try it in another shell "
             f"(mountsync status {mountpoint}). Press Ctrl-C to unmount and stop.")
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if mounted:
            _say("\nunmounting (uploading anything pending first)...")
            r = _run(["unmount", mountpoint, "--timeout", "30"], env)
            if r.returncode != 0:
                _say(r.stderr.strip())
        moto.terminate()
        try:
            moto.wait(timeout=10)
        except subprocess.TimeoutExpired:
            moto.kill()
        shutil.rmtree(workdir, ignore_errors=True)
