"""The private control channel between the CLI and a running daemon.

One Unix stream socket per mount, in a per-user runtime directory (mode 0700,
socket 0600), named by a hash of the mountpoint's real path so the CLI finds
it from the mountpoint alone. Protocol: the client sends one JSON object on
one line (``{"op": "sync", ...}``), the daemon answers with one JSON line.

The runtime dir is ``$MOUNTSYNC_RUNTIME_DIR``, else ``$XDG_RUNTIME_DIR/mountsync``,
else ``/tmp/mountsync-UID``. A client whose XDG_RUNTIME_DIR differs from the
daemon's (an fstab mount has none; a login shell has one) also looks in the
/tmp fallback. The client trusts a socket only in a real directory of its own
user with mode 0700, and only if the socket is its user's too: another user
could have made ``/tmp/mountsync-0`` first and answer root's ``sync`` with a
lie (docs/SECURITY.md).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import stat

from .errors import UserError
from .trust import check_private_dir


def fallback_runtime_dir() -> str:
    return f"/tmp/mountsync-{os.geteuid()}"


def runtime_dirs() -> list[str]:
    """Where a socket may be, in order; the daemon uses the first."""
    explicit = os.environ.get("MOUNTSYNC_RUNTIME_DIR")
    if explicit:
        return [explicit]
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isdir(xdg):
        return [os.path.join(xdg, "mountsync"), fallback_runtime_dir()]
    return [fallback_runtime_dir()]


def runtime_dir() -> str:
    return runtime_dirs()[0]


def ensure_private_dir(path: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise UserError(f"runtime dir {path} is not a directory owned by you; remove it or set MOUNTSYNC_RUNTIME_DIR")
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(path, 0o700)


def socket_name(mountpoint: str) -> str:
    # resolve the parent only: stat-ing the mountpoint itself would ask the
    # (possibly not yet serving) filesystem
    mountpoint = os.path.abspath(mountpoint).rstrip("/") or "/"
    head, tail = os.path.split(mountpoint)
    real = os.path.join(os.path.realpath(head), tail)
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return f"{digest}.sock"


def socket_path(mountpoint: str) -> str:
    """Where the daemon for ``mountpoint`` listens."""
    return os.path.join(runtime_dir(), socket_name(mountpoint))


def find_socket(mountpoint: str) -> str:
    """The socket of the daemon serving ``mountpoint``, checked to be the caller's own.

    Raises ``UserError`` when there is none, or when the first one found is in a
    runtime dir that is not the caller's private directory or is not the caller's."""
    name = socket_name(mountpoint)
    for directory in runtime_dirs():
        path = os.path.join(directory, name)
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            check_private_dir(directory, "runtime dir")  # explains an unreadable dir of someone else
            raise UserError(f"cannot look for the mountsync daemon in {directory}: {exc.strerror}") from None
        check_private_dir(directory, "runtime dir")
        if not stat.S_ISSOCK(st.st_mode):
            raise UserError(f"{path} is not a socket: remove it")
        if st.st_uid != os.geteuid():
            raise UserError(f"control socket {path} is owned by uid {st.st_uid}, not by you: it is not your "
                            f"daemon's; remove it and mount again")
        return path
    raise UserError(f"{mountpoint} is not a mountsync mount (no daemon found); check the path or mount it")


def has_socket(mountpoint: str) -> bool:
    """Whether a daemon socket for ``mountpoint`` exists (not checked further: ``request`` does)."""
    name = socket_name(mountpoint)
    return any(os.path.exists(os.path.join(d, name)) for d in runtime_dirs())


def request(mountpoint: str, message: dict, timeout: float | None = 30.0) -> dict:
    """Send one request to the daemon serving ``mountpoint`` and return its answer."""
    path = find_socket(mountpoint)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except FileNotFoundError:
        raise UserError(
            f"{mountpoint} is not a mountsync mount (no daemon found); check the path or mount it"
        ) from None
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            raise UserError(f"the mountsync daemon for {mountpoint} is not running; mount it again to resume") from None
        raise UserError(f"cannot reach the mountsync daemon for {mountpoint}: {exc.strerror}") from None
    try:
        s.sendall(json.dumps(message).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise UserError(f"the mountsync daemon for {mountpoint} closed the connection; see its log")
            buf += chunk
        return json.loads(buf.split(b"\n", 1)[0])
    except TimeoutError:
        raise UserError(f"the mountsync daemon for {mountpoint} did not answer within {timeout:.0f}s") from None
    finally:
        s.close()
