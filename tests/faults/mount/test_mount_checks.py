"""Mount-time checks against an endpoint that accepts connections but never
answers: ``mount`` fails with one line well before botocore's ordinary
read timeout and retries would (that took 61 s)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.support.fuse import require_fuse
from tests.support.mount_helpers import is_mounted, run_cli

pytestmark = [pytest.mark.fuse]


class SilentEndpoint:
    """A TCP listener on loopback that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for c in self.accepted:
            c.close()
        self.sock.close()


@pytest.fixture
def silent_endpoint():
    s = SilentEndpoint()
    yield s
    s.close()


def test_mount_against_an_endpoint_that_never_answers_fails_fast(cli_env, silent_endpoint, tmp_path):
    require_fuse()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    t0 = time.monotonic()
    r = run_cli(cli_env, "mount", "bkt", str(mnt), "--endpoint-url", f"http://127.0.0.1:{silent_endpoint.port}",
                "--force-path-style", "--region", "us-east-1", "--cache-dir", str(tmp_path / "cache"),
                timeout=120)
    elapsed = time.monotonic() - t0
    assert r.returncode != 0, r.stdout
    assert elapsed < 40, f"mount took {elapsed:.1f}s to give up on an endpoint that never answers"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert f"127.0.0.1:{silent_endpoint.port}" in lines[0] and "did not answer" in lines[0], lines[0]
    assert silent_endpoint.accepted, "mount never connected to the endpoint"
    assert not is_mounted(mnt)
