"""The fault-injecting TCP proxy (tests/support/proxy.py) on its own.

A tiny local HTTP server (``Connection: close`` after each answer, like moto)
is the upstream for the raw tests; moto in a thread for the boto3 ones.
"""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
import time

import pytest

from tests.support.proxy import Proxy

MiB = 1024 * 1024


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_GET(self):
        self.server.requests.append(("GET", self.path))
        if self.path.startswith("/slow"):
            time.sleep(float(self.path.rsplit("/", 1)[1]))
        if self.path.startswith("/big/"):
            self._answer(b"x" * int(self.path.rsplit("/", 1)[1]))
            return
        self._answer(b"hello " + self.path.encode())

    def do_PUT(self):
        n = int(self.headers.get("Content-Length", 0))
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.send_response_only(100)
            self.end_headers()
        body = self.rfile.read(n)
        self.server.requests.append(("PUT", self.path))
        self._answer(f"got {len(body)}".encode())

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client the proxy reset: expected here, not worth a traceback


@pytest.fixture
def upstream():
    server = _Server(("127.0.0.1", 0), _Handler)
    server.requests = []
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()
    t.join(timeout=5)


@pytest.fixture
def proxy(upstream):
    p = Proxy(("127.0.0.1", upstream.server_address[1]))
    yield p
    p.close()


def request(port: int, method: str = "GET", path: str = "/x", body: bytes | None = None,
            headers: dict | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def test_forwards_and_counts_bytes(proxy, upstream):
    status, body = request(proxy.port, path="/abc")
    assert (status, body) == (200, b"hello /abc")
    status, body = request(proxy.port, "PUT", "/up", body=b"z" * 300_000)
    assert (status, body) == (200, b"got 300000")
    status, body = request(proxy.port, path="/big/2000000")
    assert status == 200 and len(body) == 2_000_000
    assert upstream.requests == [("GET", "/abc"), ("PUT", "/up"), ("GET", "/big/2000000")]
    assert proxy.wait_for(lambda p: p.stats()["open"] == 0, 5)
    st = proxy.stats()
    assert st["bytes_up"] > 300_000
    assert st["bytes_down"] > 2_000_000
    assert st["connections"] == st["forwarded"] == 3
    assert st["faults_total"] == 0


def test_503_is_a_well_formed_s3_error_and_does_not_reach_the_server(proxy, upstream):
    proxy.set_fault_rate(1.0, kinds=("503",))
    status, body = request(proxy.port, "PUT", "/k", body=b"b" * 200_000)
    assert status == 503
    assert b"<Error><Code>SlowDown</Code>" in body
    status, _ = request(proxy.port, path="/g")
    assert status == 503
    assert proxy.stats()["faults"] == {"503": 2, "reset": 0}
    assert upstream.requests == []
    proxy.set_fault_rate(0.0)
    assert request(proxy.port, path="/ok") == (200, b"hello /ok")


def test_503_with_expect_100_continue_is_answered_before_the_body(proxy, upstream):
    proxy.set_fault_rate(1.0, kinds=("503",))
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as s:
        s.sendall(b"PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n")
        data = b""
        while b"</Error>" not in data:
            chunk = s.recv(65536)
            assert chunk, f"connection closed before a full answer: {data!r}"
            data += chunk
    assert data.startswith(b"HTTP/1.1 503 Slow Down\r\n")
    assert b"<Code>SlowDown</Code>" in data
    assert upstream.requests == []


def test_reset_after_the_headers(proxy, upstream):
    proxy.set_fault_rate(1.0, kinds=("reset",))
    with pytest.raises(ConnectionResetError):
        request(proxy.port, path="/r")
    assert proxy.stats()["faults"] == {"503": 0, "reset": 1}
    assert upstream.requests == []


def test_fault_rate_is_a_rate_and_seeded(proxy, upstream):
    outcomes = []
    proxy.set_fault_rate(0.3, seed=42)
    for i in range(60):
        try:
            status, _ = request(proxy.port, path=f"/{i}")
            outcomes.append(status)
        except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
            outcomes.append("reset")
    st = proxy.stats()
    assert st["faults"]["503"] == outcomes.count(503)
    assert st["faults"]["reset"] == outcomes.count("reset")
    assert 5 <= st["faults_total"] <= 35, st
    assert outcomes.count(200) == len(upstream.requests) == 60 - st["faults_total"]
    # the same seed gives the same sequence of decisions
    first = [o == 200 for o in outcomes]
    proxy.set_fault_rate(0.3, seed=42)
    again = []
    for i in range(60):
        try:
            again.append(request(proxy.port, path=f"/{i}")[0] == 200)
        except (ConnectionResetError, http.client.RemoteDisconnected, BrokenPipeError):
            again.append(False)
    assert again == first


def test_cut_refuses_new_connections_closes_open_ones_and_restore_keeps_the_port(proxy, upstream):
    port = proxy.port
    box: dict = {}

    def slow():
        try:
            box["result"] = request(port, path="/slow/3", timeout=10)
        except Exception as exc:  # noqa: BLE001 - examined below
            box["error"] = exc

    t = threading.Thread(target=slow)
    t.start()
    assert proxy.wait_for(lambda p: p.stats()["open"] == 1 and upstream.requests, 5)
    t0 = time.monotonic()
    proxy.cut()
    t.join(timeout=10)
    assert "error" in box, box
    assert isinstance(box["error"], (ConnectionResetError, http.client.RemoteDisconnected)), box
    assert time.monotonic() - t0 < 2, "the open connection was not closed at the cut"
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            request(port, path="/during")
    assert proxy.stats()["killed_by_cut"] == 1

    proxy.restore()
    assert proxy.port == port
    assert request(port, path="/after") == (200, b"hello /after")
    # and once more
    proxy.cut()
    with pytest.raises(ConnectionRefusedError):
        request(port)
    proxy.restore()
    assert request(port, path="/again") == (200, b"hello /again")


def test_rate_limit_slows_transfers(proxy, upstream):
    proxy.set_rate_limit(2 * MiB)
    t0 = time.monotonic()
    status, body = request(proxy.port, path=f"/big/{2 * MiB}")
    elapsed = time.monotonic() - t0
    assert status == 200 and len(body) == 2 * MiB
    assert elapsed > 0.7, elapsed
    proxy.set_rate_limit(None)
    t0 = time.monotonic()
    request(proxy.port, path=f"/big/{2 * MiB}")
    assert time.monotonic() - t0 < 0.7


def test_close_stops_listening(upstream):
    p = Proxy(("127.0.0.1", upstream.server_address[1]))
    assert request(p.port)[0] == 200
    p.close()
    with pytest.raises(ConnectionRefusedError):
        request(p.port)
    p.close()  # idempotent


def test_upstream_down_is_a_reset(upstream):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    with Proxy(("127.0.0.1", dead_port)) as p, pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        request(p.port)


# ------------------------------------------------------------------ with boto3 and moto


@pytest.fixture(scope="module")
def moto():
    from tests.support.moto_server import start_threaded_moto

    server = start_threaded_moto()
    yield server
    server.stop()


def _client(endpoint: str, attempts: int):
    import boto3
    from botocore.config import Config

    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                 region_name="us-east-1").client(
        "s3", endpoint_url=endpoint,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": attempts, "mode": "standard"},
                      connect_timeout=5, read_timeout=20))


@pytest.mark.moto
def test_boto3_through_the_proxy(moto):
    from botocore.exceptions import ClientError, EndpointConnectionError

    with Proxy(moto.endpoint) as p:
        once = _client(p.endpoint, 1)
        once.create_bucket(Bucket="proxied")
        big = b"m" * (2 * MiB)  # botocore sends Expect: 100-continue for this body
        once.put_object(Bucket="proxied", Key="big", Body=big)
        assert once.get_object(Bucket="proxied", Key="big")["Body"].read() == big
        assert p.stats()["bytes_up"] > 2 * MiB and p.stats()["bytes_down"] > 2 * MiB

        p.set_fault_rate(1.0, kinds=("503",))
        with pytest.raises(ClientError) as info:
            once.put_object(Bucket="proxied", Key="big2", Body=big)
        assert info.value.response["Error"]["Code"] == "SlowDown"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503

        p.set_fault_rate(1.0, kinds=("reset",))
        with pytest.raises(Exception) as info:
            once.head_object(Bucket="proxied", Key="big")
        assert "reset" in str(info.value).lower() or "closed" in str(info.value).lower(), info.value

        p.cut()
        with pytest.raises(EndpointConnectionError):
            once.head_object(Bucket="proxied", Key="big")
        p.restore()
        p.set_fault_rate(0.3, seed=3)
        patient = _client(p.endpoint, 12)
        for i in range(12):
            patient.put_object(Bucket="proxied", Key=f"k{i}", Body=b"v%d" % i)
        assert p.stats()["faults_total"] >= 2
        p.set_fault_rate(0.0)
        keys = {o["Key"] for o in once.list_objects_v2(Bucket="proxied")["Contents"]}
        assert keys == {"big"} | {f"k{i}" for i in range(12)}
