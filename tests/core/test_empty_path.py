"""No journal entry ever has an empty or invalid path (issue: after s3fs-fuse's suite,
``unmount`` failed with ``PutObject '': Invalid length for parameter Key``).

The empty path came from changing the attributes of the mount's root (chmod/chown/
touch of the mountpoint): the root got a journal entry, queued for upload under the
key ``""``. The root's attributes are kept in memory for the mount's lifetime; the
journal refuses any entry whose path is not a valid key."""

from __future__ import annotations

import errno
import stat

import pytest

from mountsync.backend.memory import MemoryStore
from mountsync.cache.journal import Entry, Journal
from mountsync.core.filesystem import ROOT_INO, SetAttr
from mountsync.errors import FsError
from tests.support.rig import run_rig


@pytest.mark.parametrize("change", [SetAttr(mode=0o777), SetAttr(uid=1000, gid=1000),
                                    SetAttr(mtime_ns=1_000_000_000)], ids=["chmod", "chown", "touch"])
def test_root_attributes_change_in_memory_only(tmp_path, change):
    store = MemoryStore("b")

    async def body(rig):
        a = await rig.fs.setattr(ROOT_INO, change)
        if change.mode is not None:
            assert stat.S_IMODE(a.mode) == 0o777
        if change.uid is not None:
            assert (a.uid, a.gid) == (1000, 1000)
        if change.mtime_ns is not None:
            assert a.mtime_ns == 1_000_000_000
        assert rig.stack.journal.get("") is None
        await rig.write_file("f", b"x")
        result = await rig.sync()
        assert result.ok, result
        assert store.objects() == {"f": b"x"}
        assert rig.status()["errors"] == []

    run_rig(body, tmp_path, store)


def test_names_of_the_suspect_tests_keep_their_keys(tmp_path):
    """The other suspects of the issue: a name with a carriage return, a file below a
    directory whose name is also a file object, renames, sparse writes."""
    store = MemoryStore("b")
    store.put("dir", b"")  # an object `dir` without a trailing slash...
    store.put("dir/old", b"o")  # ...and keys below it: the directory is shown

    async def body(rig):
        await rig.write_file("cr\r", b"c")
        await rig.write_file("dir/f", b"d")
        await rig.write_at("dir/f", 16 * 1024, b"s")  # sparse: a hole, then a byte
        await rig.rename("dir/f", "dir/g")
        await rig.rename("cr\r", "dir/cr\r")
        result = await rig.sync()
        assert result.ok, result
        assert sorted(store.objects()) == ["dir", "dir/cr\r", "dir/g", "dir/old"]
        assert store.objects()["dir/g"] == b"d" + bytes(16 * 1024 - 1) + b"s"
        paths = [e.path for e in rig.stack.journal.under("")]
        assert "" not in paths and all(p for p in paths)

    run_rig(body, tmp_path, store, allow_delete=True)


@pytest.mark.parametrize("path", ["", "a//b", "a/", "/a", "a/./b", "a/../b", "x\x00y"])
def test_journal_refuses_an_entry_without_a_valid_key(tmp_path, path, allow_log):
    allow_log(r"refusing a cache entry for path")
    j = Journal(str(tmp_path / "j.db"))
    try:
        e = Entry(path=path, kind=stat.S_IFREG, mode=0o644, uid=0, gid=0, mtime_ns=0)
        with pytest.raises(FsError) as ei:
            j.save(e)
        assert ei.value.errno == errno.EINVAL
        assert e.id is None and j.under("") == []
        good = j.save(Entry(path="a", kind=stat.S_IFREG, mode=0o644, uid=0, gid=0, mtime_ns=0))
        with pytest.raises(FsError):
            j.rename_subtree("a", path)
        assert j.get("a") is not None and j.get("a").id == good.id
    finally:
        j.close()
