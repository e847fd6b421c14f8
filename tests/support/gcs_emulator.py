"""Start a Google Cloud Storage emulator for tests: ``gcp-storage-emulator`` from PyPI
(pinned in constraints.txt), in memory, on 127.0.0.1 at a free port.

What it lacks of GCS (found by the conformance suite, marked there as emulator gaps):
generation preconditions (``ifGenerationMatch``/``ifGenerationNotMatch``) are ignored on
uploads, copies, composes and deletes, and a conditional media download ignores them too.
The mount copes as it does with moto, which ignores some S3 conditions: the probe at the
first mount finds the server does not honour them and checks with a HEAD first.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import dataclass

import pytest

from tests.support.local_server import start_on_free_port, stop


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
        stop(self.process)


def start_gcs_emulator(workdir: str) -> GcsEmulator:
    proc, port = start_on_free_port(
        lambda port: [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                      "--port", str(port), "--in-memory"], workdir, "gcs-emulator")
    return GcsEmulator(proc, port)


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory):
    server = start_gcs_emulator(str(tmp_path_factory.mktemp("gcs")))
    try:
        yield server
    finally:
        server.stop()
