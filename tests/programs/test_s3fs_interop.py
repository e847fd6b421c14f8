"""Interoperability with Debian's s3fs: attributes written by one are read right by the other (SPEC §5)."""

from __future__ import annotations

import calendar
import os
import stat

import pytest

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

UTIME_NS = calendar.timegm((2003, 4, 5, 6, 7, 8)) * 10**9 + 250_000_000
DIR_UTIME_NS = calendar.timegm((2004, 5, 6, 7, 8, 9)) * 10**9
TOUCH_DATE = "2005-06-07 08:09:10 UTC"
TOUCH_S = calendar.timegm((2005, 6, 7, 8, 9, 10))
DIR_TOUCH_DATE = "2006-07-08 09:10:11 UTC"
DIR_TOUCH_S = calendar.timegm((2006, 7, 8, 9, 10, 11))


def _view(root, names):
    """{name: (type, permission bits, mtime seconds or None for links, link target or content)}"""
    out = {}
    for name in names:
        p = root / name
        st = os.lstat(p)
        if stat.S_ISLNK(st.st_mode):
            out[name] = ("link", None, None, os.readlink(p))
        elif stat.S_ISDIR(st.st_mode):
            out[name] = ("dir", stat.S_IMODE(st.st_mode), int(st.st_mtime), sorted(os.listdir(p)))
        else:
            out[name] = ("file", stat.S_IMODE(st.st_mode), int(st.st_mtime), p.read_bytes())
    return out


NAMES = ["t/r640.txt", "t/x755.sh", "t/link", "t/abs-link", "t/empty", "t/sub", "t/sub/inner.txt"]


def test_written_by_mountsync_read_by_s3fs(mount, s3fs_mount, bucket):
    m = mount()
    t = m.path("t")
    t.mkdir()
    (t / "r640.txt").write_bytes(b"read me\n")
    (t / "r640.txt").chmod(0o640)
    os.utime(t / "r640.txt", ns=(UTIME_NS, UTIME_NS))
    (t / "x755.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (t / "x755.sh").chmod(0o755)
    (t / "link").symlink_to("r640.txt")
    (t / "abs-link").symlink_to("/some/where/else")
    (t / "empty").mkdir()
    (t / "empty").chmod(0o750)
    (t / "sub").mkdir()
    (t / "sub" / "inner.txt").write_bytes(b"inner\n")
    (t / "sub").chmod(0o700)
    os.utime(t / "sub", ns=(DIR_UTIME_NS, DIR_UTIME_NS))
    ours = _view(m.mountpoint, NAMES)
    assert ours["t/r640.txt"] == ("file", 0o640, UTIME_NS // 10**9, b"read me\n")
    assert ours["t/sub"][:3] == ("dir", 0o700, DIR_UTIME_NS // 10**9)
    m.sync()

    s3fs = s3fs_mount(bucket)
    theirs = _view(s3fs, NAMES)
    assert theirs == ours
    assert (s3fs / "t" / "link").read_bytes() == b"read me\n"


def test_written_by_s3fs_read_by_mountsync(mount, s3fs_mount, bucket, run):
    s3fs = s3fs_mount(bucket)
    t = s3fs / "t"
    t.mkdir()
    (t / "r640.txt").write_bytes(b"read me\n")
    run(["chmod", "640", t / "r640.txt"])
    run(["touch", "-d", TOUCH_DATE, t / "r640.txt"])
    (t / "x755.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    run(["chmod", "755", t / "x755.sh"])
    run(["ln", "-s", "r640.txt", t / "link"])
    run(["ln", "-s", "/some/where/else", t / "abs-link"])
    run(["mkdir", "-m", "750", t / "empty"])
    (t / "sub").mkdir()
    (t / "sub" / "inner.txt").write_bytes(b"inner\n")
    run(["chmod", "700", t / "sub"])
    run(["touch", "-d", DIR_TOUCH_DATE, t / "sub"])
    theirs = _view(s3fs, NAMES)
    assert theirs["t/r640.txt"] == ("file", 0o640, TOUCH_S, b"read me\n")
    assert theirs["t/sub"][:3] == ("dir", 0o700, DIR_TOUCH_S)
    s3fs_mount.unmount(s3fs)  # s3fs has uploaded everything by now; unmounting makes sure

    m = mount()  # fresh cache dir
    ours = _view(m.mountpoint, NAMES)
    assert ours == theirs
    assert m.path("t/link").read_bytes() == b"read me\n"
    assert stat.S_IMODE(os.stat(m.path("t/empty")).st_mode) == 0o750

    # and a metadata-only change made through mountsync (a server-side self-copy) reaches s3fs
    run(["chmod", "600", m.path("t/r640.txt")])
    run(["touch", "-d", "2007-08-09 10:11:12 UTC", m.path("t/r640.txt")])
    m.sync()
    again = s3fs_mount(bucket)
    assert _view(again, ["t/r640.txt"])["t/r640.txt"] == \
        ("file", 0o600, calendar.timegm((2007, 8, 9, 10, 11, 12)), b"read me\n")
