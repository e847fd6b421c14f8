"""Start a Google Cloud Storage emulator for tests: ``gcp-storage-emulator`` from PyPI
(pinned in constraints.txt), in memory, on 127.0.0.1 at a free port.

What it lacks of GCS (found by the conformance suite, marked there as emulator gaps):
generation preconditions (``ifGenerationMatch``/``ifGenerationNotMatch``) are ignored on
uploads, copies, composes and deletes, and a conditional media download ignores them too.
The mount copes as it does with moto, which ignores some S3 conditions: the probe at the
first mount finds the server does not honour them and checks with a HEAD first.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import pytest


@dataclass
class GcsEmulator:
    process: subprocess.Popen
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(project="test", credentials=AnonymousCredentials(),
                              client_options={"api_endpoint": self.endpoint})

    def new_bucket(self) -> str:
        name = f"t{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(name)
        return name

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gcs_emulator(workdir: str, timeout: float = 60.0) -> GcsEmulator:
    for _attempt in range(3):
        port = _free_port()
        with open(f"{workdir}/gcs-emulator-{port}.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                                     "--port", str(port), "--in-memory"],
                                    stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return GcsEmulator(proc, port)
            except OSError:
                time.sleep(0.1)
        proc.kill()
        proc.wait()
    raise RuntimeError(f"the GCS emulator did not start (see {workdir}/gcs-emulator-*.log)")


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    server = start_gcs_emulator(str(tmp_path_factory.mktemp("gcs")))
    try:
        yield server
    finally:
        server.stop()
