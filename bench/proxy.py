"""A loopback TCP proxy that delays every request and counts the bytes of the answers.

It forwards ``127.0.0.1:<port>`` to the moto server. Before forwarding the first
bytes of a request it sleeps ``delay`` seconds: the first bytes of a connection,
and the first client bytes after the server has answered (a keep-alive
connection's next request). That models the round trip to a real endpoint
without touching bandwidth. ``bytes_down`` counts every byte the server sent to
the clients (headers included), ``requests`` the requests forwarded.

``block()`` makes it refuse new connections (accept, then reset) and reset the
open ones until ``unblock()``: the harness uses it to keep uploads pending.

Threads: one acceptor, two per connection (one each way). Counters are guarded
by ``_lock``. Every blocking call has a timeout so ``close()`` ends all threads.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time

POLL = 0.2


class DelayProxy:
    def __init__(self, target_port: int, delay: float = 0.0) -> None:
        self.target = ("127.0.0.1", target_port)
        self.delay = delay
        self._lock = threading.Lock()
        self.bytes_down = 0
        self.bytes_up = 0
        self.requests = 0
        self._blocked = False
        self._closed = False
        self._conns: set[socket.socket] = set()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self._listener.settimeout(POLL)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name="bench-proxy", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def counters(self) -> tuple[int, int]:
        """``(bytes_down, requests)`` so far."""
        with self._lock:
            return self.bytes_down, self.requests

    def block(self) -> None:
        with self._lock:
            self._blocked = True
            conns = list(self._conns)
        for s in conns:
            _reset(s)

    def unblock(self) -> None:
        with self._lock:
            self._blocked = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = list(self._conns)
        for s in conns:
            _reset(s)
        self._thread.join(timeout=5)
        self._listener.close()

    # ------------------------------------------------------------------ internals

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            with self._lock:
                blocked = self._blocked
            if blocked:
                _reset(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            up = socket.create_connection(self.target, timeout=10)
        except OSError:
            _reset(client)
            return
        for s in (client, up):
            s.settimeout(60)  # sends block at most this long; recv waits in select()
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._conns.update((client, up))
        # "answered" is set by the down pump when server bytes flow; the up pump
        # delays the next request's first bytes when it sees it set.
        state = {"answered": True}
        t = threading.Thread(target=self._pump, args=(client, up, True, state), daemon=True)
        t.start()
        self._pump(up, client, False, state)
        t.join(timeout=30)
        with self._lock:
            self._conns.discard(client)
            self._conns.discard(up)
        for s in (client, up):
            try:
                s.close()
            except OSError:
                pass

    def _pump(self, src: socket.socket, dst: socket.socket, upward: bool, state: dict) -> None:
        idle_limit = time.monotonic() + 600  # a connection idle this long is dropped
        while not self._closed:
            try:
                ready, _, _ = select.select([src], [], [], POLL)
                if not ready:
                    if time.monotonic() > idle_limit:
                        break
                    continue
                data = src.recv(262144)
            except (OSError, ValueError):
                break
            if not data:
                break
            idle_limit = time.monotonic() + 600
            if upward:
                if state["answered"]:
                    state["answered"] = False
                    with self._lock:
                        self.requests += 1
                    if self.delay:
                        time.sleep(self.delay)
                with self._lock:
                    self.bytes_up += len(data)
            else:
                state["answered"] = True
                with self._lock:
                    self.bytes_down += len(data)
            try:
                dst.sendall(data)
            except OSError:
                break
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
