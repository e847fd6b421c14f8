"""What the daemon and the CLI trust on disk (docs/SECURITY.md).

- A cache dir (or a parent of it) that another user owns or may write to is
  refused with one line; nothing in a cache dir is followed if it is a
  symbolic link (the lock, the log, the journal, data files).
- The control client refuses a runtime dir or a socket that is not the
  caller's, including the /tmp fallback it tries when the daemon was started
  with another XDG_RUNTIME_DIR.

These tests chown to uid 65534 (nobody), so they need root.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest

from mountsync import control
from mountsync.errors import UserError
from mountsync.stack import lock_cache_dir, prepare_cache_dir

OTHER_UID = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to another uid")


def _private(path: Path) -> Path:
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


# ------------------------------------------------------------------ cache dir


@needs_root
def test_cache_dir_owned_by_another_user_is_refused(tmp_path):
    cache = _private(tmp_path / "cache")
    os.chown(cache, OTHER_UID, OTHER_UID)
    with pytest.raises(UserError, match=r"cache dir .*owned by uid 65534") as info:
        prepare_cache_dir(str(cache))
    assert "\n" not in str(info.value)


def test_cache_dir_writable_by_others_is_refused(tmp_path):
    cache = _private(tmp_path / "cache")
    cache.chmod(0o777)
    with pytest.raises(UserError, match=r"cache dir .*writable by other users") as info:
        prepare_cache_dir(str(cache))
    assert "\n" not in str(info.value)
    assert (cache.stat().st_mode & 0o777) == 0o777, "a refused dir is left as it was"


def test_group_writable_cache_dir_is_refused(tmp_path):
    cache = _private(tmp_path / "cache")
    cache.chmod(0o770)
    with pytest.raises(UserError, match="writable by other users"):
        prepare_cache_dir(str(cache))


def test_own_cache_dir_with_a_loose_read_mode_is_tightened(tmp_path):
    cache = _private(tmp_path / "cache")
    cache.chmod(0o755)
    prepare_cache_dir(str(cache))
    assert (cache.stat().st_mode & 0o777) == 0o700


@needs_root
def test_cache_dir_inside_a_parent_of_another_user_is_refused(tmp_path):
    parent = _private(tmp_path / "theirs")
    parent.chmod(0o755)
    os.chown(parent, OTHER_UID, OTHER_UID)
    with pytest.raises(UserError, match=r"theirs.* owned by uid 65534"):
        prepare_cache_dir(str(parent / "cache"))
    assert not (parent / "cache").exists()


def test_cache_dir_inside_a_world_writable_parent_is_refused(tmp_path):
    parent = _private(tmp_path / "open")
    parent.chmod(0o777)  # no sticky bit: anyone could rename our cache dir away
    with pytest.raises(UserError, match=r"open.* writable by other users"):
        prepare_cache_dir(str(parent / "cache"))


def test_sticky_world_writable_parent_is_fine(tmp_path):
    parent = _private(tmp_path / "tmp-like")
    parent.chmod(0o1777)
    cache = Path(prepare_cache_dir(str(parent / "cache")))
    assert cache.is_dir() and (cache.stat().st_mode & 0o777) == 0o700


def test_parents_created_for_the_cache_dir_are_private(tmp_path):
    old = os.umask(0)  # the mode of created parents must not depend on the umask
    try:
        cache = prepare_cache_dir(str(tmp_path / "a" / "b" / "cache"))
    finally:
        os.umask(old)
    for p in (tmp_path / "a", tmp_path / "a" / "b", Path(cache)):
        assert (p.stat().st_mode & 0o777) == 0o700, p


def test_cache_dir_reached_through_a_symlink_is_used_by_its_real_path(tmp_path):
    real = _private(tmp_path / "real")
    (tmp_path / "link").symlink_to(real)
    assert prepare_cache_dir(str(tmp_path / "link")) == str(real)


@pytest.mark.parametrize("name", ["lock", "daemon.log", "journal.db", "journal.db-wal", "journal.db-journal"])
def test_symlink_inside_the_cache_dir_is_refused_and_not_followed(tmp_path, name):
    cache = _private(tmp_path / "cache")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (cache / name).symlink_to(victim)
    with pytest.raises(UserError, match=rf"{name}.* symbolic link"):
        prepare_cache_dir(str(cache))
    assert victim.read_text() == "precious"


def test_lock_never_follows_a_symlink(tmp_path):
    cache = _private(tmp_path / "cache")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (cache / "lock").symlink_to(victim)
    with pytest.raises(UserError, match="symbolic link"):
        lock_cache_dir(str(cache))
    assert victim.read_text() == "precious"


# ------------------------------------------------------------ control client


class FakeDaemon:
    """A listening socket that answers every request with ``{"ok": true}`` and records it."""

    def __init__(self, path: str) -> None:
        self.requests: list[dict] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                buf = b""
                while b"\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                if buf:
                    self.requests.append(json.loads(buf.split(b"\n", 1)[0]))
                    conn.sendall(b'{"ok": true}\n')

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    """An explicit runtime dir (MOUNTSYNC_RUNTIME_DIR), private, and a fake daemon factory."""
    rt = _private(tmp_path / "rt")
    monkeypatch.setenv("MOUNTSYNC_RUNTIME_DIR", str(rt))
    daemons: list[FakeDaemon] = []

    def start(mountpoint: str) -> FakeDaemon:
        d = FakeDaemon(control.socket_path(mountpoint))
        daemons.append(d)
        return d

    yield rt, start
    for d in daemons:
        d.close()


def test_control_client_talks_to_its_own_daemon(runtime, tmp_path):
    _rt, start = runtime
    d = start(str(tmp_path / "mnt"))
    assert control.request(str(tmp_path / "mnt"), {"op": "ping"}) == {"ok": True}
    assert d.requests == [{"op": "ping"}]


@needs_root
def test_control_client_refuses_a_runtime_dir_of_another_user(runtime, tmp_path):
    rt, start = runtime
    d = start(str(tmp_path / "mnt"))
    os.chown(rt, OTHER_UID, OTHER_UID)
    with pytest.raises(UserError, match=r"runtime dir .*owned by uid 65534"):
        control.request(str(tmp_path / "mnt"), {"op": "sync"})
    assert d.requests == []


def test_control_client_refuses_a_runtime_dir_others_can_write(runtime, tmp_path):
    rt, start = runtime
    d = start(str(tmp_path / "mnt"))
    rt.chmod(0o777)
    with pytest.raises(UserError, match=r"runtime dir .*writable by other users"):
        control.request(str(tmp_path / "mnt"), {"op": "sync"})
    assert d.requests == []


@needs_root
def test_control_client_refuses_a_socket_of_another_user(runtime, tmp_path):
    _rt, start = runtime
    d = start(str(tmp_path / "mnt"))
    os.chown(control.socket_path(str(tmp_path / "mnt")), OTHER_UID, OTHER_UID, follow_symlinks=False)
    with pytest.raises(UserError, match=r"socket .*owned by uid 65534"):
        control.request(str(tmp_path / "mnt"), {"op": "sync"})
    assert d.requests == []


def test_control_client_refuses_a_symlinked_runtime_dir(tmp_path, monkeypatch):
    real = _private(tmp_path / "real")
    (tmp_path / "rt").symlink_to(real)
    monkeypatch.setenv("MOUNTSYNC_RUNTIME_DIR", str(tmp_path / "rt"))
    d = FakeDaemon(os.path.join(real, os.path.basename(control.socket_path(str(tmp_path / "mnt")))))
    try:
        with pytest.raises(UserError, match=r"runtime dir .*symbolic link"):
            control.request(str(tmp_path / "mnt"), {"op": "sync"})
        assert d.requests == []
    finally:
        d.close()


@pytest.fixture
def xdg_and_fallback(tmp_path, monkeypatch):
    """XDG_RUNTIME_DIR set for the client; the daemon used the /tmp fallback (redirected here)."""
    monkeypatch.delenv("MOUNTSYNC_RUNTIME_DIR", raising=False)
    xdg = _private(tmp_path / "xdg")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    fallback = _private(tmp_path / "fallback")
    monkeypatch.setattr(control, "fallback_runtime_dir", lambda: str(fallback))
    mnt = str(tmp_path / "mnt")
    name = os.path.basename(control.socket_path(mnt))
    d = FakeDaemon(str(fallback / name))
    yield fallback, mnt, d
    d.close()


def test_control_client_finds_a_daemon_in_the_tmp_fallback(xdg_and_fallback):
    _fallback, mnt, d = xdg_and_fallback
    assert control.request(mnt, {"op": "ping"}) == {"ok": True}
    assert d.requests == [{"op": "ping"}]


@needs_root
def test_control_client_refuses_a_tmp_fallback_of_another_user(xdg_and_fallback):
    fallback, mnt, d = xdg_and_fallback
    os.chown(fallback, OTHER_UID, OTHER_UID)
    with pytest.raises(UserError, match=r"runtime dir .*owned by uid 65534"):
        control.request(mnt, {"op": "sync"})
    assert d.requests == []


@needs_root
def test_a_log_file_of_another_user_is_not_written(tmp_path):
    from mountsync.trust import open_private

    theirs = tmp_path / "mountsync.log"
    theirs.write_text("")
    os.chown(theirs, OTHER_UID, OTHER_UID)
    with pytest.raises(UserError, match="belongs to uid 65534"):
        open_private(str(theirs), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    assert theirs.read_text() == ""
    os.close(open_private(os.devnull, os.O_WRONLY))  # a device is fine


def test_a_log_file_that_is_a_symlink_is_not_followed(tmp_path):
    from mountsync.trust import open_private

    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "log").symlink_to(victim)
    with pytest.raises(UserError, match="symbolic link"):
        open_private(str(tmp_path / "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    assert victim.read_text() == "precious"
