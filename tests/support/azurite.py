"""Start Azurite (the Azure Storage emulator, npm package ``azurite``) for tests.

``make test`` installs it with npm into ``.tools/`` (the version pinned in the Makefile);
``find_azurite()`` looks there, then on PATH, then at ``$AZURITE_BLOB``. Outside CI a
missing Azurite skips the Azure tests; with CI=true it fails them (the conformance suite
must run on every backend).

The server keeps everything in memory, listens on 127.0.0.1 at a free port, and uses the
emulator's well-known development account (its key is public, in Azure's documentation).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass

import pytest

from tests.support.local_server import start_on_free_port, stop
from tests.support.moto_server import REPO_ROOT

ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
               "KBHBeksoGMGw==")


def find_azurite() -> str | None:
    candidates = [os.environ.get("AZURITE_BLOB", ""),
                  os.path.join(REPO_ROOT, ".tools", "node_modules", ".bin", "azurite-blob"),
                  shutil.which("azurite-blob") or ""]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def require_azurite() -> str:
    path = find_azurite()
    if path is None:
        message = "Azurite is not installed (make test installs it into .tools/ with npm)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class Azurite:
    process: subprocess.Popen
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.endpoint};")

    def env(self) -> dict[str, str]:
        """The environment a mount (or an AzureStore) needs to reach this server."""
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def stop(self) -> None:
        stop(self.process)


def start_azurite(binary: str, workdir: str) -> Azurite:
    """Azurite's blob service on a free port, answering before this returns."""
    proc, port = start_on_free_port(
        lambda port: [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
                      "--skipApiVersionCheck", "--disableProductStyleUrl", "--silent"], workdir, "azurite")
    return Azurite(proc, port)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    """A running Azurite blob service for the session (its containers are the tests' own)."""
    server = start_azurite(require_azurite(), str(tmp_path_factory.mktemp("azurite")))
    try:
        yield server
    finally:
        server.stop()


def new_container_name() -> str:
    return f"t{uuid.uuid4().hex[:20]}"
