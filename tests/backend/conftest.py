"""Fixtures for the backend suite: one ``store`` fixture over every implementation.

``store`` is parametrized over ``memory`` (MemoryStore) and ``s3`` (S3Store
against a session-scoped in-process moto server, marked ``moto``). Each test
gets an empty bucket of its own; moto is reset after each s3 test so no state
leaks between tests. ``kind`` tells a test which implementation it runs on, for
the few places where moto deviates from S3 (documented at the use site).
"""

from __future__ import annotations

import logging
import sys
import uuid
from pathlib import Path

import pytest

# The repository root must be importable (for ``mountsync`` and ``tests.support``)
# however pytest was invoked.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from mountsync.backend.memory import MemoryStore  # noqa: E402
from tests.support.moto_server import (  # noqa: E402
    make_boto3_client,
    start_threaded_moto,
    use_test_aws_env,
)

STORE_KINDS = ["memory", pytest.param("s3", marks=pytest.mark.moto)]


@pytest.fixture(scope="session")
def moto_server():
    """A running moto server for the session, with dummy AWS credentials in the env."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request
    with use_test_aws_env():
        server = start_threaded_moto()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def moto_client(moto_server):
    return make_boto3_client(moto_server.endpoint)


def _new_bucket_name() -> str:
    return f"test-{uuid.uuid4().hex[:20]}"


def make_s3_store(endpoint: str, bucket: str, **kwargs):
    from mountsync.backend.s3 import S3Store

    return S3Store(
        bucket,
        endpoint_url=endpoint,
        region="us-east-1",
        force_path_style=True,
        **kwargs,
    )


@pytest.fixture(params=STORE_KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def store(kind, request):
    """An empty bucket behind the implementation named by ``kind``."""
    if kind == "memory":
        yield MemoryStore("test-bucket")
        return
    server = request.getfixturevalue("moto_server")
    client = request.getfixturevalue("moto_client")
    bucket = _new_bucket_name()
    client.create_bucket(Bucket=bucket)
    try:
        yield make_s3_store(server.endpoint, bucket)
    finally:
        server.reset()


@pytest.fixture
def missing_bucket_store(kind, request):
    """A store whose bucket does not exist."""
    if kind == "memory":
        return MemoryStore("no-such-bucket", bucket_exists=False)
    server = request.getfixturevalue("moto_server")
    return make_s3_store(server.endpoint, _new_bucket_name())
