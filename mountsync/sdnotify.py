"""systemd's readiness protocol (sd_notify(3)): one datagram to ``$NOTIFY_SOCKET``.

With ``Type=notify`` (packaging/mountsync.service) systemd waits for ``READY=1`` before
it counts the mount as started, so units ordered after it find the files there; the
``STATUS=`` line (``systemctl status``) shows what is pending, updated while the mount
runs; ``STOPPING=1`` when an unmount begins. Without ``$NOTIFY_SOCKET`` nothing is sent.
``status_line`` is pure; ``notify`` is the one I/O call.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("mountsync")


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` (``KEY=value`` lines) to the service manager; False if there is none
    or it cannot be reached (logged at DEBUG: a mount never fails over it)."""
    addr = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if addr.startswith("@"):
        addr = "\0" + addr[1:]  # an abstract socket
    elif not addr.startswith("/"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(addr)
            s.sendall(state.encode("utf-8", "replace"))
    except OSError as exc:
        log.debug("could not notify the service manager at %r: %s", addr, exc)
        return False
    return True


def status_line(st: dict) -> str:
    """``STATUS=...`` from a ``status`` reply: what is pending and whether the endpoint answers."""
    files, renames = st.get("pending_files", 0), st.get("pending_renames", 0)
    deletes = len(st.get("pending_deletes", []))
    endpoint = "" if st.get("endpoint_reachable", True) else "; endpoint UNREACHABLE"
    errors = f"; {len(st['errors'])} stopped (see mountsync status)" if st.get("errors") else ""
    if not (files or renames or deletes):
        return f"STATUS=mounted, nothing pending{endpoint}{errors}"
    return (f"STATUS=pending: {files} upload(s) of {st.get('pending_bytes', 0)} bytes, {renames} rename(s), "
            f"{deletes} delete(s){endpoint}{errors}")
