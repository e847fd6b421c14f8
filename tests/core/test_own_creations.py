"""SPEC §6, the own-creations rule: without --allow-delete, objects this cache dir
created (and nobody changed since) may be removed and renamed; everything else in
the bucket stays protected (EPERM). The journal remembers the creations, so the
rule survives restarts with the same cache dir; a fresh cache dir protects all."""

import errno

from mountsync.backend.memory import MemoryStore
from tests.support.rig import expect_errno, run_rig


def _deletes(store: MemoryStore) -> int:
    return store.stats.requests.get("delete", 0) + store.stats.requests.get("delete_many", 0)


def test_own_uploaded_files_and_dirs_can_be_removed(tmp_path):
    store = MemoryStore("b")
    store.put("theirs", b"T")

    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/f", b"F")
        await rig.mkdir("empty")
        await rig.write_file("g", b"G")
        await rig.symlink("l", "g")
        assert (await rig.sync()).ok
        assert set(store.objects()) == {"theirs", "d/", "d/f", "empty/", "g", "l"}

        await rig.unlink("g")
        await rig.unlink("l")
        await rig.unlink("d/f")
        await rig.rmdir("d")
        await rig.rmdir("empty")
        await expect_errno(errno.EPERM, rig.unlink("theirs"))
        await expect_errno(errno.EPERM, rig.rename("theirs", "mine"))
        assert (await rig.sync()).ok
        assert store.objects() == {"theirs": b"T"}
        assert await rig.listdir("") == ["theirs"]

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_own_uploaded_file_and_dir_can_be_renamed_and_renamed_again(tmp_path):
    async def body(rig):
        await rig.write_file("a", b"A")
        await rig.mkdir("d")
        await rig.write_file("d/x", b"X")
        await rig.mkdir("d/sub")
        await rig.write_file("d/sub/y", b"Y")
        assert (await rig.sync()).ok

        await rig.rename("a", "b")
        await rig.rename("b", "c")  # the copy made by the first rename is ours too
        await rig.rename("d", "e")
        await rig.rename("e", "f")
        assert (await rig.sync()).ok
        assert rig.store.objects() == {"c": b"A", "f/": b"", "f/x": b"X", "f/sub/": b"", "f/sub/y": b"Y"}
        await rig.unlink("f/sub/y")
        await rig.rmdir("f/sub")
        assert (await rig.sync()).ok
        assert rig.store.objects() == {"c": b"A", "f/": b"", "f/x": b"X"}

    run_rig(body, tmp_path, write_back_delay=60)


def test_a_directory_holding_another_writers_object_cannot_be_renamed(tmp_path):
    store = MemoryStore("b")

    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/mine", b"M")
        assert (await rig.sync()).ok
        store.put("d/theirs", b"T")
        copies = store.stats.requests.get("copy", 0)
        await expect_errno(errno.EPERM, rig.rename("d", "e"))
        assert store.stats.requests.get("copy", 0) == copies  # refused before anything is copied
        assert sorted(await rig.listdir("d")) == ["mine", "theirs"]
        await rig.unlink("d/mine")  # ours alone may still go
        assert (await rig.sync()).ok
        assert store.objects() == {"d/": b"", "d/theirs": b"T"}

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_another_writers_change_to_our_creation_protects_it(tmp_path):
    store = MemoryStore("b")

    async def body(rig):
        await rig.write_file("f", b"ours")
        await rig.write_file("g", b"ours too")
        assert (await rig.sync()).ok
        store.put("f", b"theirs")  # the mount sees it (metadata TTL 0)
        assert await rig.read_file("f") == b"theirs"
        await expect_errno(errno.EPERM, rig.unlink("f"))
        await expect_errno(errno.EPERM, rig.rename("f", "f2"))
        # g is edited by us again: still ours, with the new ETag
        await rig.write_file("g", b"edited")
        assert (await rig.sync()).ok
        await rig.rename("g", "g2")
        assert (await rig.sync()).ok
        assert store.objects() == {"f": b"theirs", "g2": b"edited"}

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_change_not_yet_seen_keeps_the_other_version_when_we_delete(tmp_path, allow_log):
    """The delete is conditional on the ETag we wrote: a version the mount has not seen
    yet survives, and the path shows it again."""
    allow_log(r"conflict on 'f': deleted here but changed in the bucket")
    store = MemoryStore("b")

    async def body(rig):
        await rig.write_file("f", b"ours")
        assert (await rig.sync()).ok
        await rig.listdir("")
        store.put("f", b"theirs")  # not listed before the unlink below
        node = rig.fs.tree.at("f")
        e = rig.fs.tree.entry(node)
        assert rig.fs.tree.ours(node, e)
        await rig.unlink("f")
        assert (await rig.sync()).ok
        assert store.objects() == {"f": b"theirs"}
        assert await rig.read_file("f") == b"theirs"
        await expect_errno(errno.EPERM, rig.unlink("f"))

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=3600)


def test_own_creations_survive_a_restart_but_not_a_fresh_cache_dir(tmp_path):
    store = MemoryStore("b")

    async def first(rig):
        await rig.write_file("a", b"A")
        await rig.write_file("b", b"B")
        await rig.mkdir("d")
        await rig.write_file("d/c", b"C")
        assert (await rig.sync()).ok
        await rig.restart()
        await rig.unlink("a")  # same cache dir after a restart: still ours
        assert (await rig.sync()).ok
        assert set(store.objects()) == {"b", "d/", "d/c"}

    run_rig(first, tmp_path / "one", store, write_back_delay=60)

    async def fresh(rig):
        deletes = _deletes(store)
        await expect_errno(errno.EPERM, rig.unlink("b"))
        await expect_errno(errno.EPERM, rig.unlink("d/c"))
        await expect_errno(errno.EPERM, rig.rename("d", "e"))
        assert (await rig.sync()).ok
        assert _deletes(store) == deletes
        assert set(store.objects()) == {"b", "d/", "d/c"}

    run_rig(fresh, tmp_path / "two", store, write_back_delay=60)


def test_overwriting_an_existing_object_does_not_make_it_ours(tmp_path):
    """An object that existed before the mount stays protected after we edit it."""
    store = MemoryStore("b")
    store.put("old", b"before")

    async def body(rig):
        await rig.write_file("old", b"after")
        assert (await rig.sync()).ok
        assert store.objects() == {"old": b"after"}
        await expect_errno(errno.EPERM, rig.unlink("old"))
        await expect_errno(errno.EPERM, rig.rename("old", "new"))
        # an atomic save (local file renamed over it) is still allowed
        await rig.write_file("old.tmp", b"saved")
        await rig.rename("old.tmp", "old")
        assert (await rig.sync()).ok
        assert store.objects() == {"old": b"saved"}
        await expect_errno(errno.EPERM, rig.unlink("old"))

    run_rig(body, tmp_path, store, write_back_delay=60)
