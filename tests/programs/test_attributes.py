"""Attributes: cp --preserve=all keeps mode and times; attributes survive unmount and a fresh cache."""

from __future__ import annotations

import calendar
import os
import stat

import pytest

from tests.support.mount_helpers import get_bytes

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

# 2001-01-01 12:00:00.123456789 UTC
OLD_NS = calendar.timegm((2001, 1, 1, 12, 0, 0)) * 10**9 + 123_456_789
# touch -d with a sub-second part
TOUCH_DATE = "2011-02-03 04:05:06.789123456 UTC"
TOUCH_NS = calendar.timegm((2011, 2, 3, 4, 5, 6)) * 10**9 + 789_123_456
DIR_TOUCH_DATE = "2012-03-04 05:06:07.5 UTC"
DIR_TOUCH_NS = calendar.timegm((2012, 3, 4, 5, 6, 7)) * 10**9 + 500_000_000


def test_cp_preserve_all_keeps_mode_and_times(mount, run, tmp_path, s3, bucket):
    local = tmp_path / "local.txt"
    local.write_bytes(b"preserved\n")
    local.chmod(0o640)
    os.utime(local, ns=(OLD_NS, OLD_NS))
    m = mount()
    dst = m.path("copy.txt")
    run(["cp", "--preserve=all", local, dst])

    st = os.stat(dst)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert stat.S_ISREG(st.st_mode)
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert st.st_mtime_ns // 1000 == OLD_NS // 1000, f"mtime {st.st_mtime_ns} != {OLD_NS} (microseconds)"
    assert st.st_mtime_ns == OLD_NS, f"mtime {st.st_mtime_ns} != {OLD_NS} (nanoseconds)"
    assert dst.read_bytes() == b"preserved\n"

    m.sync()
    meta = s3.head_object(Bucket=bucket, Key="copy.txt")["Metadata"]
    assert int(meta["mode"]) == stat.S_IFREG | 0o640
    assert int(meta["mtime"]) == OLD_NS // 10**9
    assert get_bytes(s3, bucket, "copy.txt") == b"preserved\n"
    st = os.stat(dst)
    assert (stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (0o640, OLD_NS), "attributes changed by the upload"


def test_attributes_survive_unmount_and_fresh_cache(mount, run, s3, bucket):
    m = mount()
    d = m.path("attrs")
    d.mkdir()
    f = d / "secret.txt"
    f.write_bytes(b"only mine\n")
    f.chmod(0o600)
    run(["touch", "-d", TOUCH_DATE, f])
    sub = d / "private"
    sub.mkdir()
    sub.chmod(0o700)
    run(["touch", "-d", DIR_TOUCH_DATE, sub])
    (d / "rel-link").symlink_to("secret.txt")
    (d / "abs-link").symlink_to("/nonexistent/abs/target")

    def observe(root):
        out = {}
        for name in ("secret.txt", "private", "rel-link", "abs-link"):
            st = os.lstat(root / "attrs" / name)
            out[name] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                         st.st_mtime_ns if not stat.S_ISLNK(st.st_mode) else None,
                         os.readlink(root / "attrs" / name) if stat.S_ISLNK(st.st_mode) else None)
        return out

    before = observe(m.mountpoint)
    uid, gid = os.getuid(), os.getgid()
    assert before["secret.txt"] == (stat.S_IFREG, 0o600, uid, gid, TOUCH_NS, None)
    assert before["private"] == (stat.S_IFDIR, 0o700, uid, gid, DIR_TOUCH_NS, None)
    assert before["rel-link"][0::5] == (stat.S_IFLNK, "secret.txt")
    assert before["abs-link"][0::5] == (stat.S_IFLNK, "/nonexistent/abs/target")
    link_mtime = os.lstat(d / "rel-link").st_mtime_ns

    m.sync()
    r = m.unmount()
    assert r.returncode == 0, r.stderr
    assert not m.is_mounted()

    m2 = mount(mountpoint=m.mountpoint)  # a new, empty cache dir
    assert m2.cache_dir != m.cache_dir
    after = observe(m2.mountpoint)
    assert after == before
    assert os.lstat(m2.path("attrs/rel-link")).st_mtime_ns // 10**9 == link_mtime // 10**9
    assert m2.path("attrs/rel-link").read_bytes() == b"only mine\n"

    # the object metadata in the bucket (s3fs names)
    for key, mode, mtime_s in [("attrs/secret.txt", stat.S_IFREG | 0o600, TOUCH_NS // 10**9),
                               ("attrs/private/", stat.S_IFDIR | 0o700, DIR_TOUCH_NS // 10**9),
                               ("attrs/rel-link", stat.S_IFLNK | 0o777, link_mtime // 10**9)]:
        meta = s3.head_object(Bucket=bucket, Key=key)["Metadata"]
        assert {"mode", "uid", "gid", "mtime"} <= set(meta), f"{key}: metadata {meta}"
        assert (int(meta["mode"]), int(meta["uid"]), int(meta["gid"]), int(meta["mtime"])) == \
            (mode, uid, gid, mtime_s), f"{key}: metadata {meta}"
    assert get_bytes(s3, bucket, "attrs/rel-link") == b"secret.txt"  # s3fs: the body is the target
