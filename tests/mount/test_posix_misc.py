"""POSIX details on a real mount: appends, mmap, open files, sparse files, locks, statfs, links, xattrs."""

from __future__ import annotations

import errno
import fcntl
import mmap
import multiprocessing
import os
import subprocess

import pytest

from tests.support.mount_helpers import get_bytes

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def _appender(path: str, tag: bytes, n: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        for i in range(n):
            os.write(fd, tag + b"%04d\n" % i)
    finally:
        os.close(fd)


def test_concurrent_appenders_lose_nothing(mount, s3, bucket):
    m = mount("--write-back-delay", "60")
    path = str(m.path("log.txt"))
    open(path, "wb").close()
    procs = [multiprocessing.Process(target=_appender, args=(path, tag, 300)) for tag in (b"A", b"B", b"C")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open(path, "rb") as f:
        lines = f.read().splitlines()
    assert len(lines) == 900
    for tag in (b"A", b"B", b"C"):
        mine = [ln for ln in lines if ln.startswith(tag)]
        assert mine == [tag + b"%04d" % i for i in range(300)]
    m.sync()
    with open(path, "rb") as f:
        assert get_bytes(s3, bucket, "log.txt") == f.read()


def test_shared_mmap_writes_persist(mount, s3, bucket):
    m = mount("--write-back-delay", "60")
    path = m.path("mapped.bin")
    path.write_bytes(b"\0" * 8192)
    with open(path, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 8192, mmap.MAP_SHARED)
        mm[100:105] = b"hello"
        mm[8000:8003] = b"end"
        mm.flush()
        mm.close()
    expected = bytearray(8192)
    expected[100:105] = b"hello"
    expected[8000:8003] = b"end"
    assert path.read_bytes() == bytes(expected)
    m.sync()
    assert get_bytes(s3, bucket, "mapped.bin") == bytes(expected)


def test_open_file_survives_unlink_and_rename(mount):
    m = mount("--write-back-delay", "60")
    a = m.path("a.txt")
    a.write_bytes(b"first")
    with open(a, "r+b") as f:
        os.rename(a, m.path("b.txt"))
        f.seek(0, 2)
        f.write(b"+more")
        f.flush()
        assert m.path("b.txt").read_bytes() == b"first+more"
        os.unlink(m.path("b.txt"))
        f.seek(0)
        assert f.read() == b"first+more"  # still readable through the handle
    assert not m.path("b.txt").exists() and not a.exists()


def test_sparse_file_keeps_its_size_and_holes_read_as_zeros(mount, s3, bucket):
    m = mount("--write-back-delay", "60")
    path = m.path("sparse.bin")
    with open(path, "wb") as f:
        f.seek(5 * 1024 * 1024)
        f.write(b"tail")
    assert os.stat(path).st_size == 5 * 1024 * 1024 + 4
    with open(path, "rb") as f:
        f.seek(1024 * 1024)
        assert f.read(4096) == b"\0" * 4096
    m.sync()
    body = get_bytes(s3, bucket, "sparse.bin")
    assert len(body) == 5 * 1024 * 1024 + 4 and body.endswith(b"tail") and body[:1024] == b"\0" * 1024


def test_flock_and_fcntl_locks_work_within_the_mount(mount):
    m = mount()
    path = m.path("lock")
    path.write_bytes(b"")
    with open(path, "rb") as f1, open(path, "rb") as f2:
        fcntl.flock(f1, fcntl.LOCK_EX)
        with pytest.raises(BlockingIOError):
            fcntl.flock(f2, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(f1, fcntl.LOCK_UN)
        fcntl.flock(f2, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(path, "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # POSIX record lock
        fcntl.lockf(f, fcntl.LOCK_UN)


def test_statfs_reports_usable_numbers(mount):
    m = mount()
    st = os.statvfs(m.mountpoint)
    assert st.f_bsize > 0 and st.f_blocks > 0 and st.f_bavail > 0
    assert st.f_namemax == 255


def test_hard_link_fails_with_a_clear_errno(mount):
    m = mount()
    m.path("f").write_bytes(b"x")
    with pytest.raises(OSError) as ei:
        os.link(m.path("f"), m.path("g"))
    assert ei.value.errno in (errno.EPERM, errno.ENOTSUP)


def test_user_xattrs_are_not_supported(mount):
    m = mount()
    m.path("f").write_bytes(b"x")
    with pytest.raises(OSError) as ei:
        os.setxattr(m.path("f"), "user.test", b"v")
    assert ei.value.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)
    assert os.listxattr(m.path("f")) == []


def test_getxattr_is_not_supported_so_writes_need_no_xattr_request(mount):
    """The kernel asks for ``security.capability`` before each write unless the filesystem
    answered getxattr with ENOSYS once (then every getxattr fails with ENOTSUP): one
    FUSE round trip fewer per write (performance issue)."""
    m = mount()
    m.path("f").write_bytes(b"x")
    for name in ("user.test", "security.capability"):
        with pytest.raises(OSError) as ei:
            os.getxattr(m.path("f"), name)
        assert ei.value.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)
    m.path("f").write_bytes(b"still writable")
    assert m.path("f").read_bytes() == b"still writable"


def _mount_flags(mountpoint) -> set[str]:
    """The kernel's per-mount flags of ``mountpoint`` (field 6 of /proc/self/mountinfo)."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == str(mountpoint):
                return set(fields[5].split(","))
    raise AssertionError(f"{mountpoint} is not in /proc/self/mountinfo")


def test_noexec_nosuid_nodev_are_the_kernels_mount_flags(mount):
    """Issue (user experience): the mount helper dropped noexec; now a flag of its own."""
    plain = mount()
    script = plain.path("run.sh")
    script.write_bytes(b"#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    assert subprocess.run([str(script)]).returncode == 0
    assert "noexec" not in _mount_flags(plain.mountpoint)  # (libfuse sets nosuid, nodev by default)

    m = mount("--noexec", "--nosuid", "--nodev")
    assert {"noexec", "nosuid", "nodev"} <= _mount_flags(m.mountpoint)
    script = m.path("run.sh")
    script.write_bytes(b"#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    with pytest.raises(PermissionError):
        subprocess.run([str(script)])
