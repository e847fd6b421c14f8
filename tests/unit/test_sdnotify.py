"""systemd's readiness protocol (mountsync/sdnotify.py)."""

from __future__ import annotations

import socket

from mountsync.sdnotify import notify, status_line


def test_notify_sends_one_datagram_to_the_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        assert notify("READY=1\nSTATUS=mounted", {"NOTIFY_SOCKET": path})
        assert server.recv(4096) == b"READY=1\nSTATUS=mounted"


def test_notify_to_an_abstract_socket():
    name = f"mountsync-test-{id(object())}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        assert notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert server.recv(4096) == b"STOPPING=1"


def test_without_a_service_manager_nothing_is_sent(tmp_path):
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": "relative/path"})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})


def test_status_line():
    assert status_line({"pending_files": 0, "pending_deletes": []}) == "STATUS=mounted, nothing pending"
    st = {"pending_files": 3, "pending_bytes": 1200, "pending_renames": 1, "pending_deletes": [{}, {}],
          "endpoint_reachable": False, "errors": [{}]}
    assert status_line(st) == ("STATUS=pending: 3 upload(s) of 1200 bytes, 1 rename(s), 2 delete(s); "
                               "endpoint UNREACHABLE; 1 stopped (see mountsync status)")
