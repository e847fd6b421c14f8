"""Special files on a real mount: FIFOs and Unix sockets work between processes, device
nodes keep their rdev, everything round-trips through a fresh cache and interoperates
with s3fs in both directions (x-amz-meta-mode carries the file type; x-amz-meta-rdev the
device number, which Debian's s3fs does not keep)."""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

CHR = os.makedev(1, 7)
BLK = os.makedev(7, 3)


def _make_specials(root) -> None:
    os.mkfifo(root / "fifo", 0o640)
    os.mknod(root / "chr", stat.S_IFCHR | 0o600, CHR)
    os.mknod(root / "blk", stat.S_IFBLK | 0o660, BLK)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "sock"))
    s.close()
    os.chown(root / "fifo", 1234, 5678)
    os.utime(root / "chr", ns=(1_400_000_000 * 10**9, 1_400_000_000 * 10**9), follow_symlinks=False)


def _view(root) -> dict[str, tuple]:
    out = {}
    for name in ("fifo", "chr", "blk", "sock"):
        st = os.lstat(root / name)
        out[name] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                     st.st_rdev if name in ("chr", "blk") else 0, int(st.st_mtime))
    return out


def test_fifo_and_socket_work_between_processes(mount):
    m = mount()
    fifo = m.path("pipe")
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c",
                               f"open({str(fifo)!r}, 'w').write('through the fifo\\n')"])
    with open(fifo) as f:
        assert f.read() == "through the fifo\n"
    assert writer.wait(timeout=60) == 0

    path = str(m.path("srv.sock"))
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    client = subprocess.Popen([sys.executable, "-c",
                               "import socket; c = socket.socket(socket.AF_UNIX); "
                               f"c.connect({path!r}); c.sendall(b'hello over the socket')"])
    conn, _ = srv.accept()
    data = b""
    while chunk := conn.recv(100):
        data += chunk
    assert data == b"hello over the socket"
    assert client.wait(timeout=60) == 0
    conn.close()
    srv.close()
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    os.unlink(path)
    os.unlink(fifo)
    m.sync()
    assert os.listdir(m.mountpoint) == []


def test_special_files_round_trip_through_a_fresh_cache(mount):
    m = mount()
    d = m.path("dev")
    d.mkdir()
    _make_specials(d)
    want = _view(d)
    assert want["chr"][4] == CHR and want["blk"][4] == BLK and want["fifo"][2:4] == (1234, 5678)
    m.sync()
    assert m.unmount().returncode == 0
    fresh = mount(mountpoint=m.mountpoint)
    assert _view(fresh.path("dev")) == want


def _without_rdev(view: dict[str, tuple]) -> dict[str, tuple]:
    return {name: v[:4] + v[5:] for name, v in view.items()}


def test_special_files_written_by_mountsync_read_by_s3fs(mount, s3fs_mount, bucket, s3):
    m = mount()
    d = m.path("dev")
    d.mkdir()
    _make_specials(d)
    want = _view(d)
    m.sync()
    assert s3.head_object(Bucket=bucket, Key="dev/chr")["Metadata"]["rdev"] == str(CHR)
    s3fs = s3fs_mount(bucket)
    # Debian's s3fs keeps no device numbers (it neither writes nor reads x-amz-meta-rdev):
    # type, mode, owner and mtime are what it can show
    assert _without_rdev(_view(s3fs / "dev")) == _without_rdev(want)


def test_special_files_written_by_s3fs_read_by_mountsync(mount, s3fs_mount, bucket):
    s3fs = s3fs_mount(bucket)
    d = s3fs / "dev"
    d.mkdir()
    _make_specials(d)
    want = _view(d)
    s3fs_mount.unmount(s3fs)
    m = mount()
    assert _view(m.path("dev")) == want


def test_hard_links_are_refused_for_every_file_type(mount):
    m = mount()
    m.path("f").write_bytes(b"x")
    m.path("d").mkdir()
    os.symlink("f", m.path("l"))
    _make_specials(m.mountpoint)
    for name in ("f", "l", "fifo", "chr", "blk", "sock"):
        with pytest.raises(OSError) as info:
            os.link(m.path(name), m.path(f"{name}.link"), follow_symlinks=False)
        assert info.value.errno == errno.EPERM, name
    assert not [n for n in os.listdir(m.mountpoint) if n.endswith(".link")]
