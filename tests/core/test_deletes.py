"""SPEC §6: deleting, and renaming (which deletes the old key), needs --allow-delete
for entries that exist in the bucket and that this cache dir did not create;
local-only entries are free."""

import errno

from mountsync.backend.memory import MemoryStore
from tests.support.rig import expect_errno, run_rig

# ------------------------------------------------------------ without --allow-delete


def test_without_allow_delete_objects_the_mount_did_not_create_are_protected(tmp_path):
    """Objects in the bucket before the mount (its own creations: test_own_creations.py)."""
    store = MemoryStore("b")
    store.put("remote-only", b"R")
    store.put("d/", b"")
    store.put("d/f", b"F")
    store.put("empty/", b"")
    store.put("g", b"G")

    async def body(rig):
        await rig.write_file("g", b"G")  # overwritten by us: it still existed before
        assert (await rig.sync()).ok
        before = store.objects()
        stats_before = dict(store.stats.requests)

        await expect_errno(errno.EPERM, rig.unlink("g"))
        await expect_errno(errno.EPERM, rig.unlink("d/f"))
        await expect_errno(errno.EPERM, rig.unlink("remote-only"))
        await expect_errno(errno.EPERM, rig.rmdir("empty"))
        await expect_errno(errno.EPERM, rig.rename("g", "g2"))
        await expect_errno(errno.EPERM, rig.rename("remote-only", "moved"))
        await expect_errno(errno.EPERM, rig.rename("d", "d2"))
        await expect_errno(errno.EPERM, rig.rename("empty", "empty2"))

        # everything is still visible, unchanged
        assert sorted(await rig.listdir("")) == ["d", "empty", "g", "remote-only"]
        assert await rig.read_file("g") == b"G"
        assert (await rig.sync()).ok
        assert store.objects() == before
        for op in ("delete", "delete_many", "copy"):
            assert store.stats.requests.get(op, 0) == stats_before.get(op, 0), op

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_without_allow_delete_local_only_entries_are_free(tmp_path):
    async def body(rig):
        await rig.write_file("tmp1", b"1")
        await rig.unlink("tmp1")
        await rig.mkdir("dd")
        await rig.write_file("dd/x", b"x")
        await rig.unlink("dd/x")
        await rig.rmdir("dd")
        await rig.write_file("a", b"A")
        await rig.rename("a", "b")
        await rig.mkdir("dir1")
        await rig.write_file("dir1/in", b"in")
        await rig.rename("dir1", "dir2")
        assert sorted(await rig.listdir("")) == ["b", "dir2"]
        assert await rig.read_file("b") == b"A"
        assert await rig.read_file("dir2/in") == b"in"
        res = await rig.sync()
        assert res.ok, res
        assert rig.store.objects() == {"b": b"A", "dir2/": b"", "dir2/in": b"in"}
        assert rig.store.stats.requests.get("delete", 0) == 0
        assert rig.store.stats.requests.get("copy", 0) == 0

    run_rig(body, tmp_path, write_back_delay=60)


def test_rmdir_of_nonempty_and_unlink_of_dir(tmp_path):
    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/f", b"")
        await expect_errno(errno.ENOTEMPTY, rig.rmdir("d"))
        await expect_errno(errno.EISDIR, rig.unlink("d"))
        await expect_errno(errno.ENOTDIR, rig.rmdir("d/f"))
        await expect_errno(errno.ENOENT, rig.unlink("nope"))

    run_rig(body, tmp_path, write_back_delay=60)


def test_atomic_save_over_uploaded_file_is_allowed(tmp_path):
    async def body(rig):
        await rig.write_file("doc.txt", b"old version")
        assert (await rig.sync()).ok
        old_etag = rig.store.etag_of("doc.txt")
        # the editor pattern: write a temp file, rename it over the original
        await rig.write_file(".doc.txt.tmp", b"new version")
        await rig.rename(".doc.txt.tmp", "doc.txt")
        assert await rig.listdir("") == ["doc.txt"]
        assert await rig.read_file("doc.txt") == b"new version"
        res = await rig.sync()
        assert res.ok, res
        assert rig.store.objects() == {"doc.txt": b"new version"}
        assert rig.store.etag_of("doc.txt") != old_etag
        assert rig.store.stats.requests.get("delete", 0) == 0

    run_rig(body, tmp_path, write_back_delay=60)


def test_atomic_save_over_remote_only_object(tmp_path):
    store = MemoryStore("b")
    store.put("cfg", b"remote")

    async def body(rig):
        await rig.write_file("cfg.new", b"local")
        await rig.rename("cfg.new", "cfg")
        assert await rig.read_file("cfg") == b"local"
        assert (await rig.sync()).ok
        assert store.objects() == {"cfg": b"local"}

    run_rig(body, tmp_path, store, write_back_delay=60)


# ------------------------------------------------------------ with --allow-delete


def test_with_allow_delete_unlink_and_rmdir_reach_bucket(tmp_path):
    store = MemoryStore("b")
    store.put("remote-only", b"R")
    store.put("rd/", b"")

    async def body(rig):
        await rig.write_file("f", b"F")
        await rig.mkdir("d")
        assert (await rig.sync()).ok
        assert set(store.objects()) == {"remote-only", "rd/", "f", "d/"}
        await rig.unlink("f")
        await rig.unlink("remote-only")
        await rig.rmdir("d")
        await rig.rmdir("rd")
        assert await rig.listdir("") == []  # hidden at once
        res = await rig.sync()
        assert res.ok, res
        assert store.objects() == {}
        assert rig.stack.journal.tombstones() == []
        assert await rig.listdir("") == []

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)


def test_with_allow_delete_rename_clean_file_is_copy_plus_delete(tmp_path):
    """The rename itself makes no request; the reconciler copies, then deletes."""
    async def body(rig):
        await rig.write_file("a", b"payload")
        assert (await rig.sync()).ok
        md = rig.store.metadata_of("a")
        before = dict(rig.store.stats.requests)
        await rig.rename("a", "b")
        for op in ("copy", "put", "delete"):  # the call writes nothing (it lists: metadata TTL 0)
            assert rig.store.stats.requests.get(op, 0) == before.get(op, 0), op
        assert await rig.listdir("") == ["b"]
        assert await rig.read_file("b") == b"payload"
        res = await rig.sync()
        assert res.ok, res
        assert rig.store.stats.requests.get("copy", 0) == 1
        assert rig.store.stats.requests.get("put", 0) == before["put"]  # no re-upload of the bytes
        assert rig.store.objects() == {"b": b"payload"}
        assert rig.store.metadata_of("b") == md
        assert rig.stack.journal.tombstones() == []

    run_rig(body, tmp_path, write_back_delay=60, allow_delete=True)


def test_with_allow_delete_rename_dirty_uploaded_file(tmp_path):
    async def body(rig):
        await rig.write_file("a", b"v1")
        assert (await rig.sync()).ok
        await rig.write_at("a", 2, b"-v2")
        await rig.rename("a", "b")
        res = await rig.sync()
        assert res.ok, res
        assert rig.store.objects() == {"b": b"v1-v2"}

    run_rig(body, tmp_path, write_back_delay=60, allow_delete=True)


def test_with_allow_delete_directory_rename_moves_every_key(tmp_path):
    store = MemoryStore("b")
    for k, v in {"dir/": b"", "dir/a": b"A", "dir/sub/b": b"B", "dir/sub/deeper/c": b"C",
                 "dirx/keep": b"K"}.items():
        store.put(k, v)

    async def body(rig):
        assert await rig.read_file("dir/sub/b") == b"B"  # something cached below it
        await rig.write_file("dir/local", b"L")  # and something only local
        await rig.rename("dir", "moved")
        assert sorted(await rig.listdir("")) == ["dirx", "moved"]
        assert sorted(await rig.listdir("moved")) == ["a", "local", "sub"]
        assert await rig.read_file("moved/sub/deeper/c") == b"C"
        assert await rig.read_file("moved/sub/b") == b"B"
        res = await rig.sync()
        assert res.ok, res
        assert store.objects() == {"moved/": b"", "moved/a": b"A", "moved/sub/b": b"B",
                                   "moved/sub/deeper/c": b"C", "moved/local": b"L", "dirx/keep": b"K"}

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)
