"""A small threaded TCP proxy that sits between a real mount and the moto server.

moto (werkzeug) answers ``Connection: close`` and closes the connection after
every response, so one proxied connection is about one HTTP request: faults
decided per new connection are faults per request.

Controls (all thread-safe):

- ``cut()`` / ``restore()``: while cut, the listening socket is closed (a new
  connection is refused) and every open connection is closed with a reset.
  ``restore()`` listens again on the *same* port.
- ``set_fault_rate(rate, kinds=("503", "reset"), seed=None)``: each new
  connection, with probability ``rate``, gets one of ``kinds`` instead of being
  forwarded: ``"503"`` reads the request (headers, then the body per
  ``Content-Length`` or chunked encoding; with ``Expect: 100-continue`` the body
  is never asked for) and answers a well-formed S3 ``503 Slow Down`` error;
  ``"reset"`` reads the request headers and closes with ``SO_LINGER 0`` (RST).
- ``set_rate_limit(bytes_per_second)``: throttle the forwarded bytes (both
  directions share one token bucket); ``None`` removes the limit.
- Counters: ``bytes_up`` (client → server), ``bytes_down`` (server → client)
  (bytes read from one side to be passed to the other),
  ``connections`` (accepted while not cut), ``forwarded``, ``faults`` (per
  kind), ``killed_by_cut`` (open connections a ``cut()`` closed); ``stats()``
  returns them all; ``wait_for(predicate, timeout)`` polls them.
- ``close()``: stop listening, close every connection, join the threads.

Loopback only; every loop is bounded by a timeout or by the proxy closing.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable

POLL = 0.05  # seconds between checks of the stop/cut flags in blocking loops
MAX_HEADER = 64 * 1024
REQUEST_READ_TIMEOUT = 30.0  # a fault handler gives up on a client that sends nothing

SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
    b"<RequestId>PROXYFAULT0000001</RequestId><HostId>fault-injecting-proxy</HostId></Error>"
)


def _slow_down_response() -> bytes:
    head = (
        "HTTP/1.1 503 Slow Down\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(SLOW_DOWN_BODY)}\r\n"
        "x-amz-request-id: PROXYFAULT0000001\r\n"
        "Connection: close\r\n"
        "\r\n"
    )
    return head.encode("ascii") + SLOW_DOWN_BODY


def _reset_close(sock: socket.socket) -> None:
    """Close ``sock`` with an RST (SO_LINGER on, timeout 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Conn:
    """One accepted client connection and (when forwarded) its upstream socket."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.killed = threading.Event()  # cut/close: stop and reset
        self.done = threading.Event()

    def sockets(self) -> list[socket.socket]:
        return [s for s in (self.client, self.upstream) if s is not None]


class Proxy:
    """Forward ``127.0.0.1:<port>`` to ``target`` (``http://host:port`` or ``(host, port)``)."""

    def __init__(self, target: str | tuple[str, int], port: int = 0) -> None:
        if isinstance(target, str):
            hostport = target.split("://", 1)[-1].split("/", 1)[0]
            host, _, p = hostport.rpartition(":")
            target = (host or "127.0.0.1", int(p))
        if target[0] not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the test proxy forwards to loopback only, not {target[0]!r}")
        self.target = target
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._fault_rate = 0.0
        self._fault_kinds: tuple[str, ...] = ("503", "reset")
        self._rate_limit: float | None = None
        self._tokens = 0.0
        self._tokens_at = time.monotonic()
        self._conns: set[_Conn] = set()
        self._threads: list[threading.Thread] = []
        self.bytes_up = 0
        self.bytes_down = 0
        self.connections = 0
        self.forwarded = 0
        self.faults: dict[str, int] = {"503": 0, "reset": 0}
        self.killed_by_cut = 0
        self._cut = False
        self._closed = False
        self._listener: socket.socket | None = self._listen(port)
        self.port = self._listener.getsockname()[1]
        self._want_listening = threading.Event()
        self._want_listening.set()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"proxy-accept-{self.port}", daemon=True)
        self._acceptor.start()

    # ------------------------------------------------------------ public

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def is_cut(self) -> bool:
        return self._cut

    def cut(self) -> None:
        """Refuse new connections and reset every open one, until ``restore()``."""
        with self._lock:
            self._cut = True
            self._want_listening.clear()
            conns = list(self._conns)
        self._wait_listener(False)
        for c in conns:
            self._kill(c)
        with self._lock:
            self.killed_by_cut += len(conns)

    def restore(self) -> None:
        """Listen again, on the same port."""
        with self._lock:
            self._cut = False
            self._want_listening.set()
        self._wait_listener(True)

    def set_fault_rate(self, rate: float, kinds: Iterable[str] = ("503", "reset"), seed: int | None = None) -> None:
        kinds = tuple(kinds)
        unknown = set(kinds) - {"503", "reset"}
        if unknown or not kinds:
            raise ValueError(f"fault kinds must be among '503', 'reset': {kinds!r}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault rate must be in [0, 1]: {rate}")
        with self._lock:
            self._fault_rate = rate
            self._fault_kinds = kinds
            if seed is not None:
                self._rng.seed(seed)

    def set_rate_limit(self, bytes_per_second: float | None) -> None:
        with self._lock:
            self._rate_limit = bytes_per_second
            self._tokens = 0.0
            self._tokens_at = time.monotonic()

    def stats(self) -> dict:
        with self._lock:
            return {
                "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
                "connections": self.connections, "forwarded": self.forwarded,
                "faults": dict(self.faults), "faults_total": sum(self.faults.values()),
                "killed_by_cut": self.killed_by_cut, "open": len(self._conns), "cut": self._cut,
            }

    def wait_for(self, predicate: Callable[[Proxy], bool], timeout: float, interval: float = 0.02) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(interval)
        return predicate(self)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._want_listening.clear()
            conns = list(self._conns)
        for c in conns:
            self._kill(c)
        self._acceptor.join(timeout=10)
        for t in list(self._threads):
            t.join(timeout=5)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------ listening

    @staticmethod
    def _listen(port: int) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(128)
        s.settimeout(POLL)
        return s

    def _wait_listener(self, listening: bool, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (self._listener is not None) != listening:
            if time.monotonic() > deadline:
                raise RuntimeError(f"proxy on port {self.port} did not {'listen' if listening else 'stop listening'}"
                                   f" within {timeout}s")
            time.sleep(0.005)

    def _accept_loop(self) -> None:
        """The only thread that touches the listening socket."""
        while not self._closed:
            if not self._want_listening.is_set():
                if self._listener is not None:
                    self._listener.close()  # new connections are refused from now on
                    self._listener = None
                time.sleep(0.005)
                continue
            if self._listener is None:
                try:
                    self._listener = self._listen(self.port)
                except OSError:  # port briefly unavailable: try again (bounded by close())
                    time.sleep(0.05)
                    continue
            try:
                client, _addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                continue
            self._start_conn(client)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _start_conn(self, client: socket.socket) -> None:
        with self._lock:
            if self._cut or self._closed:
                fault = "closed"
            else:
                self.connections += 1
                fault = None
                if self._fault_rate > 0 and self._rng.random() < self._fault_rate:
                    fault = self._rng.choice(self._fault_kinds)
            if fault != "closed":
                conn = _Conn(client)
                self._conns.add(conn)
        if fault == "closed":
            _reset_close(client)
            return
        client.settimeout(POLL)
        t = threading.Thread(target=self._serve, args=(conn, fault), daemon=True,
                             name=f"proxy-{self.port}-{fault or 'fwd'}")
        with self._lock:
            self._threads = [x for x in self._threads if x.is_alive()]
            self._threads.append(t)
        t.start()

    def _kill(self, conn: _Conn) -> None:
        conn.killed.set()
        for s in conn.sockets():
            try:
                s.shutdown(socket.SHUT_RD)  # wakes a thread blocked in recv
            except OSError:
                pass

    def _forget(self, conn: _Conn) -> None:
        with self._lock:
            self._conns.discard(conn)
        conn.done.set()

    # ------------------------------------------------------------ one connection

    def _serve(self, conn: _Conn, fault: str | None) -> None:
        try:
            if fault is None:
                self._forward(conn)
            else:
                self._inject(conn, fault)
        except OSError:
            pass
        finally:
            for s in conn.sockets():
                if conn.killed.is_set():
                    _reset_close(s)
                else:
                    try:
                        s.close()
                    except OSError:
                        pass
            self._forget(conn)

    def _recv(self, conn: _Conn, sock: socket.socket, deadline: float | None = None) -> bytes | None:
        """One recv; ``b""`` at EOF, ``None`` when killed or past ``deadline``."""
        while not conn.killed.is_set() and not self._closed:
            if deadline is not None and time.monotonic() > deadline:
                return None
            try:
                return sock.recv(65536)
            except TimeoutError:
                continue
        return None

    def _send(self, conn: _Conn, sock: socket.socket, data: bytes) -> bool:
        view = memoryview(data)
        while view:
            if conn.killed.is_set() or self._closed:
                return False
            try:
                n = sock.send(view)
            except TimeoutError:
                continue
            view = view[n:]
        return True

    def _throttle(self, conn: _Conn, n: int) -> None:
        while not conn.killed.is_set() and not self._closed:
            with self._lock:
                limit = self._rate_limit
                if limit is None:
                    return
                now = time.monotonic()
                self._tokens = min(self._tokens + (now - self._tokens_at) * limit, max(limit * 0.1, 65536))
                self._tokens_at = now
                if self._tokens >= 0:
                    self._tokens -= n  # may go negative: later senders wait for it
                    return
                wait = -self._tokens / limit
            time.sleep(min(wait, POLL))

    def _forward(self, conn: _Conn) -> None:
        try:
            up = socket.create_connection(self.target, timeout=5)
        except OSError:
            conn.killed.set()  # the server is down: the client sees a reset
            return
        up.settimeout(POLL)
        conn.upstream = up
        if conn.killed.is_set():  # cut between accept and connect
            return
        with self._lock:
            self.forwarded += 1
        other = threading.Thread(target=self._pump, args=(conn, conn.client, up, "up"), daemon=True)
        other.start()
        self._pump(conn, up, conn.client, "down")
        # the server closed (moto does after each response): the exchange is over
        try:
            conn.client.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            up.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        other.join(timeout=10)

    def _pump(self, conn: _Conn, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            self._pump_until_eof(conn, src, dst, direction)
        except OSError:  # reset by either side: the whole exchange is over
            self._kill(conn)

    def _pump_until_eof(self, conn: _Conn, src: socket.socket, dst: socket.socket, direction: str) -> None:
        while True:
            data = self._recv(conn, src)
            if not data:
                break
            self._throttle(conn, len(data))
            # counted before it is passed on, so that whoever saw the bytes arrive
            # also sees them counted
            with self._lock:
                if direction == "up":
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
            if not self._send(conn, dst, data):
                break
        if not conn.killed.is_set():
            try:
                dst.shutdown(socket.SHUT_WR)  # pass the half-close on
            except OSError:
                pass

    # ------------------------------------------------------------ faults

    def _read_head(self, conn: _Conn) -> tuple[bytes, bytes] | None:
        """Read until the end of the request headers: (head, bytes after it)."""
        buf = b""
        deadline = time.monotonic() + REQUEST_READ_TIMEOUT
        while b"\r\n\r\n" not in buf:
            if len(buf) > MAX_HEADER:
                return None
            data = self._recv(conn, conn.client, deadline)
            if not data:
                return None
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        return head, rest

    def _inject(self, conn: _Conn, fault: str) -> None:
        got = self._read_head(conn)
        if got is None:
            return
        head, rest = got
        with self._lock:
            self.faults[fault] += 1
        if fault == "reset":
            conn.killed.set()  # _serve closes with SO_LINGER 0
            return
        headers = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        expect = headers.get(b"expect", b"").lower() == b"100-continue"
        if not expect:
            self._read_body(conn, headers, rest)
        self._send(conn, conn.client, _slow_down_response())
        try:
            conn.client.shutdown(socket.SHUT_WR)
        except OSError:
            return
        # let the client finish (or close) before we close: closing with unread
        # data would turn our clean answer into a reset
        deadline = time.monotonic() + 5.0
        while self._recv(conn, conn.client, deadline):
            pass

    def _read_body(self, conn: _Conn, headers: dict[bytes, bytes], rest: bytes) -> None:
        deadline = time.monotonic() + REQUEST_READ_TIMEOUT
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            buf = rest
            while not (buf.endswith(b"\r\n\r\n") and (buf.startswith(b"0\r\n") or b"\r\n0\r\n" in buf)):
                data = self._recv(conn, conn.client, deadline)
                if not data:
                    return
                buf = buf[-4096:] + data
            return
        remaining = int(headers.get(b"content-length", b"0") or 0) - len(rest)
        while remaining > 0:
            data = self._recv(conn, conn.client, deadline)
            if not data:
                return
            remaining -= len(data)
