"""The daemon's end of the control channel (``mountsync.control`` is the client's end).

``serve`` accepts one JSON request line per connection on the mount's private
socket and answers with one JSON line; it runs on the daemon's trio loop. It is
kept apart from ``control`` so that the CLI, which only sends requests, does not
import trio (a tenth of a second of start-up on the path of every ``mountsync
mount`` and ``status``).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Awaitable, Callable

import trio

from .control import ensure_private_dir

Handler = Callable[[dict], Awaitable[dict]]


async def serve(path: str, handler: Handler, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Accept control connections until cancelled."""
    ensure_private_dir(os.path.dirname(path))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        await sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    listener = trio.SocketListener(sock)

    async def one(stream: trio.SocketStream) -> None:
        async with stream:
            buf = b""
            while b"\n" not in buf:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buf += chunk
            try:
                request = json.loads(buf.split(b"\n", 1)[0])
                reply = await handler(request)
            except Exception as exc:  # noqa: BLE001 - a bad request must not kill the daemon
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            try:
                await stream.send_all(json.dumps(reply).encode() + b"\n")
            except trio.BrokenResourceError:
                pass

    try:
        task_status.started()
        await trio.serve_listeners(one, [listener])
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
