"""S3Store specifics: error mapping over real sockets, headers on the wire, no secrets."""

from __future__ import annotations

import base64
import errno
import hashlib
import http.server
import socket
import threading
import time

import botocore.exceptions as botocore_exceptions
import pytest

from mountsync.backend import s3 as S3
from mountsync.backend.base import (
    AccessDeniedError,
    ArchivedError,
    BucketNotFoundError,
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
    TransientError,
    UnreachableError,
)
from tests.support.moto_server import (
    closed_port,
    make_boto3_client,
    make_s3_store,
    reset_moto,
    start_moto_subprocess,
    stop_moto_subprocess,
)

# ------------------------------------------------------- fake endpoints


class _FixedResponder(http.server.BaseHTTPRequestHandler):
    """Answers every request with the server's (status, code) as an S3 error document."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        status, code = self.server.reply  # type: ignore[attr-defined]
        self.server.hits += 1  # type: ignore[attr-defined]
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>'
            b"<Error><Code>" + code.encode() + b"</Code><Message>fake</Message></Error>"
        )
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def fake_s3():
    """An HTTP endpoint whose answer the test sets: ``fake.reply = (status, code)``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FixedResponder)
    server.daemon_threads = True
    server.reply = (500, "InternalError")
    server.hits = 0
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_socket():
    """A listening socket that accepts connections and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def resetting_socket():
    """Accepts each connection, reads a little, then closes it without an answer."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    stop = threading.Event()

    def serve():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            try:
                conn.recv(65536)
            except OSError:
                pass
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(2)
    sock.close()


# ---------------------------------------------------------- connection errors


def test_unreachable_endpoint_fails_fast(aws_env):
    store = make_s3_store(f"http://127.0.0.1:{closed_port()}", "bucket", connect_timeout=1, read_timeout=1)
    t0 = time.monotonic()
    with pytest.raises(UnreachableError) as info:
        store.head("key")
    assert info.value.transient
    with pytest.raises(UnreachableError):
        store.check_bucket()
    assert time.monotonic() - t0 < 5
    assert store.stats.snapshot()["requests"] == {"head": 1, "check_bucket": 1}


def test_read_timeout_is_transient_not_unreachable(aws_env, silent_socket):
    store = make_s3_store(silent_socket, "bucket", connect_timeout=1, read_timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(TransientError) as info:
        store.get("key")
    assert not isinstance(info.value, UnreachableError)
    assert time.monotonic() - t0 < 5


def test_connection_closed_is_transient(aws_env, resetting_socket):
    store = make_s3_store(resetting_socket, "bucket", connect_timeout=1, read_timeout=2)
    with pytest.raises(TransientError) as info:
        store.put("key", b"data")
    assert not isinstance(info.value, UnreachableError)


# ---------------------------------------------------------- HTTP error mapping


@pytest.mark.parametrize(
    "status, code, exc_type",
    [
        (403, "AccessDenied", AccessDeniedError),
        (403, "InvalidAccessKeyId", AccessDeniedError),
        (403, "SignatureDoesNotMatch", AccessDeniedError),
        (404, "NoSuchKey", NotFoundError),
        (404, "NoSuchBucket", BucketNotFoundError),
        (412, "PreconditionFailed", PreconditionFailedError),
        (503, "SlowDown", TransientError),
        (500, "InternalError", TransientError),
        (400, "RequestTimeout", TransientError),
        (409, "ConditionalRequestConflict", TransientError),
        (400, "InvalidArgument", InvalidRequestError),
        (400, "EntityTooSmall", InvalidRequestError),
    ],
)
def test_error_mapping_over_http(aws_env, fake_s3, status, code, exc_type):
    fake_s3.reply = (status, code)
    store = make_s3_store(fake_s3.endpoint, "bucket")
    with pytest.raises(exc_type) as info:
        store.get("key")
    assert type(info.value) is exc_type
    assert info.value.code == code
    assert info.value.transient == (exc_type is TransientError)
    # botocore may retry a transient error once (total_max_attempts=2), never a permanent one.
    assert 1 <= fake_s3.hits <= 2 if info.value.transient else fake_s3.hits == 1


def test_botocore_retries_a_503_exactly_once(aws_env, fake_s3):
    fake_s3.reply = (503, "SlowDown")
    with pytest.raises(TransientError):
        make_s3_store(fake_s3.endpoint, "bucket").put("k", b"v")
    assert fake_s3.hits == 2


@pytest.mark.parametrize(
    "status, exc_type",
    [(404, BucketNotFoundError), (403, AccessDeniedError), (503, TransientError)],
)
def test_check_bucket_distinguishes_failures(aws_env, fake_s3, status, exc_type):
    fake_s3.reply = (status, "")  # HEAD answers carry no error document
    with pytest.raises(exc_type):
        make_s3_store(fake_s3.endpoint, "bucket").check_bucket()


def test_map_error_of_client_errors_and_core_errors():
    def client_error(status, code):
        return botocore_exceptions.ClientError(
            {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
        )

    assert isinstance(S3.map_error(client_error(404, "404")), NotFoundError)
    assert isinstance(S3.map_error(client_error(502, "")), TransientError)
    assert isinstance(S3.map_error(client_error(418, "Teapot")), InvalidRequestError)
    err = botocore_exceptions.EndpointConnectionError(endpoint_url="http://x")
    assert isinstance(S3.map_error(err), UnreachableError)
    err = botocore_exceptions.ConnectTimeoutError(endpoint_url="http://x")
    assert isinstance(S3.map_error(err), UnreachableError)
    err = botocore_exceptions.ReadTimeoutError(endpoint_url="http://x")
    mapped = S3.map_error(err)
    assert isinstance(mapped, TransientError) and not isinstance(mapped, UnreachableError)
    from urllib3.exceptions import ProtocolError

    assert type(S3.map_error(ProtocolError("Connection reset by peer"))) is TransientError
    assert isinstance(S3.map_error(botocore_exceptions.NoCredentialsError()), AccessDeniedError)
    archived = S3.map_error(botocore_exceptions.ClientError(
        {"Error": {"Code": "InvalidObjectState", "Message": "m", "StorageClass": "DEEP_ARCHIVE"},
         "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject"))
    assert isinstance(archived, ArchivedError) and archived.storage_class == "DEEP_ARCHIVE"
    assert archived.errno == errno.EACCES


# ----------------------------------------------------------------- no secrets


def test_describe_has_no_credentials(aws_env):
    store = make_s3_store("http://user:hunter2@127.0.0.1:9000/", "my-bucket")
    text = store.describe()
    assert text == "s3://my-bucket at http://127.0.0.1:9000/"
    assert "hunter2" not in text and "testing" not in text


# --------------------------------------------------------- against moto


@pytest.fixture
def moto_store(moto_server, moto_client):
    bucket = "wire-test"
    moto_client.create_bucket(Bucket=bucket)
    yield make_s3_store(moto_server.endpoint, bucket)
    moto_server.reset()


def _capture(store):
    sent = []

    def record(request, **_):
        sent.append((request.method, request.url, dict(request.headers), request.body))

    store._client.meta.events.register("before-send.s3", record)
    return sent


def _b64md5(data: bytes) -> bytes:
    return base64.b64encode(hashlib.md5(data).digest())


@pytest.mark.moto
def test_uploads_carry_content_md5_and_no_chunked_encoding(moto_store):
    sent = _capture(moto_store)
    moto_store.put("small", b"abc")
    upload_id = moto_store.create_multipart("mp")
    moto_store.upload_part("mp", upload_id, 1, b"part-one")
    moto_store.put("big", b"z" * (2 << 20))
    moto_store.delete_many(["small", "big"])

    put_small, _create, part, put_big, delete_many = sent
    for (_, _, headers, _), body in ((put_small, b"abc"), (part, b"part-one"), (put_big, b"z" * (2 << 20))):
        assert headers["Content-MD5"] == _b64md5(body)
        assert not any(k.lower().startswith("x-amz-checksum") for k in headers)
        assert "aws-chunked" not in str(headers.get("Content-Encoding", b""))
    assert "Expect" not in put_small[2]  # small bodies skip the 100-continue round trip
    assert put_big[2]["Expect"] == b"100-continue"
    method, url, headers, body = delete_many
    assert method == "POST" and url.endswith("?delete")
    assert headers["Content-MD5"] == _b64md5(body)


@pytest.mark.moto
def test_missing_bucket_on_object_calls(moto_server):
    store = make_s3_store(moto_server.endpoint, "no-such-bucket-here")
    with pytest.raises(BucketNotFoundError):
        store.get("k")
    with pytest.raises(BucketNotFoundError):
        store.put("k", b"v")


@pytest.mark.moto
def test_write_options_reach_the_server(moto_server, moto_client):
    moto_client.create_bucket(Bucket="opts")
    store = make_s3_store(moto_server.endpoint, "opts", storage_class="STANDARD_IA", sse="AES256")
    try:
        store.put("k", b"v")
        upload_id = store.create_multipart("m")
        store.abort_multipart("m", upload_id)
        head = moto_client.head_object(Bucket="opts", Key="k")
        assert head["StorageClass"] == "STANDARD_IA"
        assert head["ServerSideEncryption"] == "AES256"
    finally:
        moto_server.reset()


@pytest.mark.moto
def test_no_sign_request_is_anonymous(moto_server, moto_client):
    moto_client.create_bucket(Bucket="public")
    moto_client.put_object(Bucket="public", Key="open", Body=b"for all", ACL="public-read")
    moto_client.put_object(Bucket="public", Key="closed", Body=b"secret")
    store = make_s3_store(moto_server.endpoint, "public", no_sign_request=True)
    try:
        sent = _capture(store)
        assert store.get("open") == b"for all"
        with pytest.raises(AccessDeniedError):  # moto enforces ACLs for anonymous requests
            store.get("closed")
        assert len(sent) == 2
        assert all("Authorization" not in headers for _, _, headers, _ in sent)
    finally:
        moto_server.reset()


# ------------------------------------------------------- test support itself


@pytest.mark.moto
def test_moto_subprocess_helper_starts_resets_and_stops(aws_env):
    endpoint, proc = start_moto_subprocess()
    try:
        assert proc.poll() is None
        client = make_boto3_client(endpoint)
        client.create_bucket(Bucket="sub-bucket")
        store = make_s3_store(endpoint, "sub-bucket")
        store.put("k", b"v")
        assert store.get("k") == b"v"
        reset_moto(endpoint)
        with pytest.raises(BucketNotFoundError):
            store.check_bucket()
    finally:
        stop_moto_subprocess(proc)
    assert proc.poll() is not None
    with pytest.raises(UnreachableError):
        make_s3_store(endpoint, "sub-bucket", connect_timeout=1).head("k")
