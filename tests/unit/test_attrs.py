"""mountsync.attrs: s3fs/rclone compatible metadata (SPEC §5)."""

import stat

import pytest

from mountsync.attrs import Attrs, Defaults, from_metadata, kind_from_metadata, to_metadata

D = Defaults(uid=1000, gid=100, file_mode=0o640, dir_mode=0o750)


def test_to_metadata_s3fs_names_and_values():
    a = Attrs(mode=stat.S_IFREG | 0o644, uid=1001, gid=1002, mtime_ns=1_700_000_000_123_456_789)
    md = to_metadata(a)
    assert md["mode"] == str(0o100644) == "33188"
    assert md["uid"] == "1001"
    assert md["gid"] == "1002"
    assert md["mtime"] == "1700000000"  # whole seconds, as s3fs parses
    assert md["mtime-ns"] == "1700000000123456789"
    assert all(isinstance(v, str) for v in md.values())


@pytest.mark.parametrize("kind, perm", [(stat.S_IFREG, 0o600), (stat.S_IFDIR, 0o711), (stat.S_IFLNK, 0o777)])
def test_round_trip_with_subsecond_mtime(kind, perm):
    a = Attrs(mode=kind | perm, uid=7, gid=8, mtime_ns=1_650_000_000_987_654_321)
    back = from_metadata(to_metadata(a), kind, last_modified=1.0, defaults=D)
    assert back == a


def test_round_trip_whole_seconds_and_zero():
    a = Attrs(mode=stat.S_IFREG | 0o644, uid=0, gid=0, mtime_ns=1_600_000_000_000_000_000)
    assert from_metadata(to_metadata(a), stat.S_IFREG, 5.0, D) == a
    zero = Attrs(mode=stat.S_IFREG | 0o000, uid=0, gid=0, mtime_ns=0)
    assert from_metadata(to_metadata(zero), stat.S_IFREG, 5.0, D) == zero


def test_rclone_float_mtime():
    md = {"mtime": "1700000000.25"}
    a = from_metadata(md, stat.S_IFREG, 1.0, D)
    assert abs(a.mtime_ns - 1_700_000_000_250_000_000) < 1000  # within a microsecond
    assert a.mode == stat.S_IFREG | 0o640  # no mode → default
    assert (a.uid, a.gid) == (1000, 100)


def test_s3fs_integer_mtime_and_mode():
    md = {"mode": "33261", "uid": "33", "gid": "44", "mtime": "1600000000"}  # 0o100755
    a = from_metadata(md, stat.S_IFREG, 1.0, D)
    assert a == Attrs(mode=stat.S_IFREG | 0o755, uid=33, gid=44, mtime_ns=1_600_000_000 * 10**9)


def test_stale_mtime_ns_is_ignored_when_another_tool_rewrote_mtime():
    md = {"mtime": "1700000100", "mtime-ns": str(1_700_000_000_500_000_000)}
    assert from_metadata(md, stat.S_IFREG, 1.0, D).mtime_ns == 1_700_000_100 * 10**9
    md_ok = {"mtime": "1700000000", "mtime-ns": str(1_700_000_000_500_000_000)}
    assert from_metadata(md_ok, stat.S_IFREG, 1.0, D).mtime_ns == 1_700_000_000_500_000_000


def test_mtime_ns_alone_is_used():
    md = {"mtime-ns": "1234567890123456789"}
    assert from_metadata(md, stat.S_IFREG, 1.0, D).mtime_ns == 1234567890123456789


@pytest.mark.parametrize("meta", [None, {}])
def test_missing_metadata_gives_defaults(meta):
    f = from_metadata(meta, stat.S_IFREG, 1_600_000_000.5, D)
    assert f == Attrs(mode=stat.S_IFREG | 0o640, uid=1000, gid=100, mtime_ns=1_600_000_000_500_000_000)
    d = from_metadata(meta, stat.S_IFDIR, 1_600_000_000.0, D)
    assert d.mode == stat.S_IFDIR | 0o750
    lnk = from_metadata(meta, stat.S_IFLNK, 1_600_000_000.0, D)
    assert lnk.mode == stat.S_IFLNK | 0o777


def test_garbage_values_fall_back_to_defaults():
    md = {"mode": "rwx", "uid": "", "gid": "x", "mtime": "yesterday"}
    a = from_metadata(md, stat.S_IFREG, 42.0, D)
    assert a == Attrs(mode=stat.S_IFREG | 0o640, uid=1000, gid=100, mtime_ns=42 * 10**9)


def test_type_bits_of_stored_mode_follow_kind():
    # a directory's mode written on a file object: the kind given wins, permissions are kept
    md = {"mode": str(stat.S_IFDIR | 0o700)}
    assert from_metadata(md, stat.S_IFREG, 1.0, D).mode == stat.S_IFREG | 0o700


def test_symlink_detection():
    assert kind_from_metadata({"mode": str(stat.S_IFLNK | 0o777)}) == stat.S_IFLNK
    assert kind_from_metadata({"mode": "41471"}) == stat.S_IFLNK  # s3fs: 0o120777
    assert kind_from_metadata({"mode": str(stat.S_IFREG | 0o644)}) == stat.S_IFREG
    assert kind_from_metadata({"mode": str(stat.S_IFDIR | 0o755)}) == stat.S_IFREG
    assert kind_from_metadata({}) == stat.S_IFREG
    assert kind_from_metadata(None) == stat.S_IFREG
    assert kind_from_metadata({"mode": "junk"}) == stat.S_IFREG


@pytest.mark.parametrize("text, ns", [
    ("1700000000.25", 1_700_000_000_250_000_000),
    ("1700000000.123456789", 1_700_000_000_123_456_789),
])
def test_rclone_float_mtime_is_exact(text, ns):
    assert from_metadata({"mtime": text}, stat.S_IFREG, 1.0, D).mtime_ns == ns
