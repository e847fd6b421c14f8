"""Criterion 8 (mount failures are one clear line) and smoke tests of status and sync."""

from __future__ import annotations

import time

import pytest

from tests.support.moto_server import closed_port
from tests.support.mount_helpers import is_mounted, run_cli

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def _one_line_failure(m, elapsed: float) -> str:
    r = m.result
    assert r.returncode != 0, f"mount succeeded: {r.stdout}"
    assert elapsed < 15, f"mount took {elapsed:.1f}s to fail"
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}: {r.stderr!r}"
    assert not is_mounted(m.mountpoint)
    return lines[0]


def _timed(mount, *args, **kwargs):
    t0 = time.monotonic()
    m = mount(*args, check=False, timeout=60, **kwargs)
    return m, time.monotonic() - t0


def test_mount_missing_bucket_fails_with_one_line(mount):
    m, elapsed = _timed(mount, bucket="no-such-bucket-here")
    line = _one_line_failure(m, elapsed)
    assert "no-such-bucket-here" in line and "does not exist" in line, line


def test_mount_unreachable_endpoint_fails_with_one_line(mount):
    port = closed_port()
    m, elapsed = _timed(mount, endpoint=f"http://127.0.0.1:{port}")
    line = _one_line_failure(m, elapsed)
    assert str(port) in line and "unreachable" in line, line


def test_mount_missing_mountpoint_fails_with_one_line(mount, tmp_path):
    missing = tmp_path / "does-not-exist"
    m, elapsed = _timed(mount, mountpoint=missing)
    line = _one_line_failure(m, elapsed)
    assert str(missing) in line and "does not exist" in line, line


def test_status_smoke(mount):
    m = mount()
    r = m.cli("status", str(m.mountpoint))
    assert r.returncode == 0, r.stderr
    assert "pending" in r.stdout
    st = m.status()
    for key in ("pending_files", "pending_bytes", "pending", "pending_deletes", "errors",
                "endpoint_reachable", "backend", "pid", "cache_dir"):
        assert key in st, key
    assert st["endpoint_reachable"] is True
    assert st["cache_dir"] == str(m.cache_dir)


def test_sync_on_a_path_that_is_not_a_mount(cli_env, tmp_path):
    r = run_cli(cli_env, "sync", str(tmp_path), timeout=60)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert str(tmp_path) in r.stderr


def test_the_log_says_where_it_is_and_what_went_up(mount):
    """Issue (user experience): no line per upload, and the log's place documented nowhere."""
    m = mount()
    st = m.status()
    assert st["log_file"] == str(m.cache_dir / "daemon.log")
    assert f"log:       {m.cache_dir / 'daemon.log'}" in m.cli("status", str(m.mountpoint)).stdout
    m.path("report.txt").write_bytes(b"x" * 5000)
    m.sync()
    log_text = (m.cache_dir / "daemon.log").read_text()
    assert "INFO mountsync.reconciler: uploaded 'report.txt': 4.9 KiB in " in log_text, log_text[-2000:]


def test_log_format_json_is_one_object_per_line(mount):
    import json

    m = mount("--log-format", "json")
    m.path("a.bin").write_bytes(b"a" * 10)
    m.sync()
    records = [json.loads(line) for line in (m.cache_dir / "daemon.log").read_text().splitlines() if line]
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    up = [r for r in records if r.get("event") == "upload"]
    assert [(r["key"], r["bytes"], r["attempt"]) for r in up] == [("a.bin", 10, 1)], up


def test_a_storage_class_the_server_refuses_fails_the_mount_with_one_line(mount, s3, bucket):
    """Issue (user experience): --storage-class FROZEN mounted, then every upload stopped."""
    m = mount("--storage-class", "FROZEN", check=False, timeout=60)
    r = m.result
    assert r.returncode != 0 and "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert "refused a test write" in lines[0] and "--storage-class FROZEN" in lines[0], lines[0]
    assert not is_mounted(m.mountpoint)
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # nothing left behind
    ok = mount("--storage-class", "STANDARD_IA")
    ok.path("f").write_bytes(b"x")
    ok.sync()
    assert s3.head_object(Bucket=bucket, Key="f")["StorageClass"] == "STANDARD_IA"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["f"]


def test_systemd_type_notify_gets_ready_status_and_stopping(mount, tmp_path):
    """Issue (user experience): the unit was Type=simple; the daemon now speaks sd_notify."""
    import socket

    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(60)
        mount.env["NOTIFY_SOCKET"] = path
        try:
            m = mount("--write-back-delay", "3600")
        finally:
            del mount.env["NOTIFY_SOCKET"]
        first = server.recv(4096).decode()
        assert first.startswith("READY=1\nSTATUS=mounted, nothing pending"), first
        m.path("pending.txt").write_bytes(b"p" * 100)
        msg = ""
        while "pending: 1 upload(s) of 100 bytes" not in msg:
            msg = server.recv(4096).decode()  # a STATUS= line whenever the counts change
        r = m.cli("unmount", str(m.mountpoint))
        assert r.returncode == 0, r.stderr
        while not msg.startswith("STOPPING=1"):
            msg = server.recv(4096).decode()


def test_sync_reports_progress_and_quiet_does_not(mount, s3, bucket):
    m = mount("--write-back-delay", "3600")
    for i in range(20):
        m.path(f"f{i:02d}").write_bytes(b"x" * 200_000)
    r = m.cli("sync", str(m.mountpoint), "--quiet")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    for i in range(20, 40):
        m.path(f"f{i:02d}").write_bytes(b"y" * 200_000)
    r = m.cli("sync", str(m.mountpoint))
    assert r.returncode == 0, r.stderr
    # not a terminal: plain lines, one every few seconds while it runs (maybe none if it is quick)
    assert all(line.startswith("sync: ") for line in r.stderr.splitlines()), r.stderr
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 40


def test_sync_on_a_terminal_draws_a_progress_bar(mount, s3, bucket):
    """The issue's acceptance: progress output captured from a pty."""
    import os
    import pty
    import subprocess
    import sys

    m = mount("--write-back-delay", "3600")
    for i in range(10):
        m.path(f"t{i}").write_bytes(b"z" * 300_000)
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "mountsync", "sync", str(m.mountpoint)], env=m.env,
                                stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal)
        os.close(terminal)
        terminal = -1
        out = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=120) == 0, out
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    text = out.decode(errors="replace")
    assert "sync:   0%" in text and "sync: 100%" in text and "10/10 files" in text and "B/s" in text, text
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 10


def test_an_archived_object_gives_eacces_one_log_line_and_shows_in_status(mount, s3, bucket):
    """Issue (user experience): objects in GLACIER showed as files and cat gave a bare EIO."""
    mount.allow_warning(r"cannot read 'cold\.bin': its object is in storage class GLACIER")
    s3.put_object(Bucket=bucket, Key="cold.bin", Body=b"frozen bytes", StorageClass="GLACIER")
    s3.put_object(Bucket=bucket, Key="warm.bin", Body=b"warm bytes")
    m = mount()
    assert m.path("warm.bin").read_bytes() == b"warm bytes"
    for _ in range(2):
        with pytest.raises(PermissionError):
            m.path("cold.bin").read_bytes()
    log_lines = [line for line in m.log_file.read_text().splitlines() if "storage class GLACIER" in line]
    assert len(log_lines) == 1 and "restore-object" in log_lines[0], log_lines
    assert m.status()["archived"] == [{"path": "cold.bin", "storage_class": "GLACIER"}]
