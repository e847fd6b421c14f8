"""Start and drive a moto S3 server for tests.

Two flavours:

- ``start_threaded_moto()`` runs ``moto.server.ThreadedMotoServer`` inside the
  test process (fast; good for backend tests). Port 0 is passed so the OS picks
  a free port with no race; the real port is read back from the server.
- ``start_moto_subprocess()`` runs moto's server (``python -m tests.support.moto_etag``:
  with the fix described there) in a separate
  process (needed when the code under test runs in another process too, e.g. a
  mount daemon, or when a test wants to kill/restart the server).

Both serve plain HTTP on 127.0.0.1. ``reset_moto(endpoint)`` wipes all state
(``POST /moto-api/reset``). ``use_test_aws_env()`` points the standard AWS
credential chain at dummy keys and at /dev/null config files so that no real
AWS configuration of the machine can leak into a test.

Nothing here holds module-global mutable state; each call returns its own
server handle.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, MutableMapping

from tests.support.moto_etag import fix_etag_race

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
# Variables that would override or add to the dummy credentials above.
_LEAKY_VARS = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


def apply_test_aws_env(env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Set the dummy AWS variables in ``env`` (default: ``os.environ``) and drop leaky ones.

    Also disables the EC2 instance-metadata lookup so a missing credential never
    stalls on a network timeout. Returns ``env``.
    """
    target = os.environ if env is None else env
    for name in _LEAKY_VARS:
        target.pop(name, None)
    target.update(TEST_ENV)
    target["AWS_EC2_METADATA_DISABLED"] = "true"
    return target


@contextlib.contextmanager
def use_test_aws_env() -> Iterator[None]:
    """Context manager form of ``apply_test_aws_env`` that restores ``os.environ`` after."""
    saved = dict(os.environ)
    apply_test_aws_env()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def free_port() -> int:
    """A TCP port that was free a moment ago (racy by nature; prefer port 0 where possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connection refused)."""
    return free_port()


# ------------------------------------------------------------ threaded server


class ThreadedMoto:
    """A running in-process moto server. ``endpoint`` is ``http://127.0.0.1:PORT``."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        fix_etag_race()
        # werkzeug logs every request (and moto's internal tracebacks) at INFO/ERROR.
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def reset(self) -> None:
        reset_moto(self.endpoint)

    def stop(self) -> None:
        self._server.stop()


def start_threaded_moto() -> ThreadedMoto:
    """Start moto in a thread of this process and wait until it answers."""
    server = ThreadedMoto()
    wait_until_up(server.endpoint, timeout=10.0)
    return server


# ---------------------------------------------------------- subprocess server


def start_moto_subprocess(timeout: float = 20.0) -> tuple[str, subprocess.Popen]:
    """Run ``python -m moto.server`` on a free port; return ``(endpoint, process)``.

    The caller owns the process: stop it with ``stop_moto_subprocess``. If the
    chosen port was taken between probing and binding, a new one is tried.
    """
    last_error: Exception | None = None
    for _attempt in range(3):
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        env = apply_test_aws_env(dict(os.environ))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.moto_etag", "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            wait_until_up(endpoint, timeout=timeout, proc=proc)
            return endpoint, proc
        except Exception as exc:  # noqa: BLE001 - port race or slow start: clean up and retry
            last_error = exc
            stop_moto_subprocess(proc)
    raise RuntimeError(f"moto server did not start: {last_error}")


def stop_moto_subprocess(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    """Terminate (then kill) the moto process started by ``start_moto_subprocess``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


# ------------------------------------------------------------------- helpers


def _ping(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1.0) as resp:
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500  # it answered
    except OSError:
        return False


def wait_until_up(
    endpoint: str, timeout: float = 20.0, proc: subprocess.Popen | None = None
) -> None:
    """Poll ``endpoint`` until it answers HTTP; raise if it does not in ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"moto server exited with status {proc.returncode}")
        if _ping(endpoint):
            return
        time.sleep(0.05)
    raise TimeoutError(f"moto server at {endpoint} did not answer within {timeout} s")


def reset_moto(endpoint: str) -> None:
    """Wipe every bucket and object on the moto server at ``endpoint``."""
    req = urllib.request.Request(f"{endpoint}/moto-api/reset", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=10.0) as resp:
        resp.read()


def make_boto3_client(endpoint: str):
    """A plain boto3 S3 client for tests: keys testing/testing, us-east-1, path-style.

    Tests use it to look at the bucket independently of the code under test.
    """
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    return session.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=16,
        ),
    )


def make_s3_store(endpoint: str, bucket: str, **kwargs):
    """An ``S3Store`` on ``endpoint`` (path-style, us-east-1); ``kwargs`` go to its constructor.

    Credentials come from the environment: call ``apply_test_aws_env()`` (or use
    ``use_test_aws_env()``) first.
    """
    from mountsync.backend.s3 import S3Store

    return S3Store(bucket, endpoint_url=endpoint, region="us-east-1", force_path_style=True, **kwargs)
