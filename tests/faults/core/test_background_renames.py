"""File renames are journaled and carried out by the reconciler (issue: renames that
survive outages): the call needs no endpoint, the new name shows the bytes at once,
and the copy and the conditional delete happen later, surviving outages and crashes."""

from __future__ import annotations

import trio

from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig

BODY = b"uploaded bytes " * 500


def _writes(mem: MemoryStore) -> dict[str, int]:
    return {op: mem.stats.requests.get(op, 0) for op in ("copy", "put", "delete")}


async def _sync_until_ok(rig, deadline: float = 60) -> None:
    with trio.fail_after(deadline):
        while not (await rig.sync(timeout=5)).ok:
            pass


def test_rename_with_the_endpoint_down_returns_at_once_and_lands_later(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    mem.put("theirs-uncached", BODY)

    async def body(rig):
        await rig.write_file("mine", b"mine " * 100)
        assert (await rig.sync()).ok
        await rig.listdir("")
        store.set_down(True)
        await rig.rename("mine", "mine-renamed")
        await rig.rename("theirs-uncached", "theirs-renamed")
        await rig.rename("mine-renamed", "mine-twice")  # a chain, still nothing in the bucket
        assert sorted(await rig.listdir("")) == ["mine-twice", "theirs-renamed"]
        assert await rig.read_file("mine-twice") == b"mine " * 100  # cached bytes
        res = await rig.sync(timeout=1.5)
        assert not res.ok
        assert set(mem.objects()) == {"mine", "theirs-uncached"}  # nothing happened yet
        store.set_down(False)
        assert await rig.read_file("theirs-renamed") == BODY  # fetched from the old key
        await _sync_until_ok(rig)
        assert mem.objects() == {"mine-twice": b"mine " * 100, "theirs-renamed": BODY}
        assert rig.stack.journal.tombstones() == []

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=3600)


def test_crash_between_the_copy_and_the_delete_loses_and_duplicates_nothing(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    mem.put("a", BODY)

    async def body(rig):
        await rig.listdir("")
        await rig.rename("a", "b")
        gate = store.hold("delete", "a")
        syncing = trio.CancelScope()

        async def sync_in_background():
            with syncing:
                await rig.sync()

        async with trio.open_nursery() as n:
            n.start_soon(sync_in_background)
            await trio.to_thread.run_sync(gate.wait_held, 1)  # the copy is done, the delete is held
            assert set(mem.objects()) == {"a", "b"}
            rig.crash()
            syncing.cancel()
        gate.release()
        await rig.restart()
        assert sorted(await rig.listdir("")) == ["b"]
        await _sync_until_ok(rig)
        assert mem.objects() == {"b": BODY}

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)


def test_crash_before_the_copy_keeps_the_rename(tmp_path):
    mem = MemoryStore("b")
    mem.put("a", BODY)

    async def body(rig):
        await rig.listdir("")
        await rig.rename("a", "b")
        await rig.restart()  # nothing was sent
        assert sorted(await rig.listdir("")) == ["b"]
        assert await rig.read_file("b") == BODY
        await _sync_until_ok(rig)
        assert mem.objects() == {"b": BODY}

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True)


def test_renamed_then_edited_uploads_the_edit_and_removes_the_old_key(tmp_path):
    mem = MemoryStore("b")
    mem.put("a", BODY)

    async def body(rig):
        await rig.listdir("")
        await rig.rename("a", "b")
        await rig.write_at("b", 0, b"EDITED")  # fetches the rest from the old key first
        await _sync_until_ok(rig)
        assert mem.objects() == {"b": b"EDITED" + BODY[6:]}
        assert mem.stats.requests.get("copy", 0) == 0  # the edit went up as a whole

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True)


def test_source_changed_by_another_writer_before_the_copy(tmp_path, allow_log):
    """The other writer's version is never deleted; the renamed bytes, cached, are uploaded."""
    allow_log(r"conflict on|changed in the bucket before its rename")
    mem = MemoryStore("b")
    mem.put("cached", BODY)
    mem.put("uncached", BODY)

    async def body(rig):
        assert await rig.read_file("cached") == BODY
        await rig.listdir("")
        await rig.rename("cached", "cached2")
        await rig.rename("uncached", "uncached2")
        mem.put("cached", b"other writer")
        mem.put("uncached", b"other writer too")
        await _sync_until_ok(rig)
        objects = mem.objects()
        assert objects["cached"] == b"other writer" and objects["uncached"] == b"other writer too"
        assert objects["cached2"] == BODY  # from the cache
        assert "uncached2" not in objects  # its bytes were replaced before the rename reached the bucket
        assert not await rig.exists("uncached2")
        assert await rig.read_file("uncached") == b"other writer too"
        kinds = sorted(c.kind for c in rig.stack.journal.conflicts())
        assert "rename-source-changed" in kinds

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True)


def test_own_creation_renamed_without_allow_delete_while_down(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)

    async def body(rig):
        await rig.write_file("ckpt", b"step 1")
        assert (await rig.sync()).ok
        store.set_down(True)
        await rig.rename("ckpt", "ckpt.old")
        await rig.write_file("ckpt", b"step 2")
        store.set_down(False)
        await _sync_until_ok(rig)
        assert mem.objects() == {"ckpt.old": b"step 1", "ckpt": b"step 2"}
        await rig.unlink("ckpt.old")  # the copy is ours too
        await _sync_until_ok(rig)
        assert mem.objects() == {"ckpt": b"step 2"}

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=3600)


def test_status_shows_pending_renames_and_sync_waits_for_them(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    mem.put("a", BODY)

    async def body(rig):
        await rig.listdir("")
        store.set_down(True)
        await rig.rename("a", "b")
        st = rig.status()
        assert st["pending_renames"] == 1
        assert [p["renamed_from"] for p in st["pending"]] == ["a"]
        assert [d["path"] for d in st["pending_deletes"]] == ["a"]
        assert not (await rig.sync(timeout=1.5)).ok  # waits for the copy and the delete
        store.set_down(False)
        await _sync_until_ok(rig)
        st = rig.status()
        assert st["pending_renames"] == 0 and st["pending_deletes"] == []

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=3600)


def test_directory_renames_carry_pending_file_renames_along(tmp_path):
    """A file renamed into a directory, and one renamed out of it, both with their copies
    still to do and no bytes cached; then the directory is renamed."""
    mem = MemoryStore("b")
    mem.put("top", b"TOP" * 100)
    mem.put("d/inner", b"INNER" * 100)
    mem.put("d/stays", b"STAYS")

    async def body(rig):
        await rig.listdir("")
        await rig.listdir("d")
        await rig.rename("top", "d/top")  # into d: copy from "top" pending
        await rig.rename("d/inner", "out")  # out of d: copy from "d/inner" pending
        await rig.rename("d", "e")  # the directory moves in the call
        assert sorted(await rig.listdir("e")) == ["stays", "top"]
        assert await rig.read_file("e/top") == b"TOP" * 100
        assert await rig.read_file("out") == b"INNER" * 100
        await _sync_until_ok(rig)
        assert mem.objects() == {"e/top": b"TOP" * 100, "e/stays": b"STAYS", "out": b"INNER" * 100}

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True)


def test_a_new_file_at_the_old_name_waits_for_the_copy(tmp_path):
    mem = MemoryStore("b")
    mem.put("a", BODY)

    async def body(rig):
        await rig.listdir("")
        await rig.rename("a", "b")
        await rig.write_file("a", b"new a")  # its upload replaces the object "b" is copied from
        await _sync_until_ok(rig)
        assert mem.objects() == {"a": b"new a", "b": BODY}

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True)


def test_an_unseen_version_at_the_new_name_is_kept_unless_it_is_the_same_bytes(tmp_path, allow_log):
    allow_log(r"conflict on 'b'")
    mem = MemoryStore("b")
    mem.put("a", BODY)
    mem.put("x", b"x")

    async def body(rig):
        await rig.listdir("")
        await rig.rename("a", "b")
        await rig.rename("x", "y")
        mem.put("b", b"another writer's b")  # never shown by the mount
        mem.put("y", b"x")  # the same bytes as the file renamed there
        await _sync_until_ok(rig)
        objects = mem.objects()
        assert objects["b"] == BODY and objects["y"] == b"x"
        kept = {k: v for k, v in objects.items() if ".conflict-" in k}
        assert list(kept.values()) == [b"another writer's b"], kept

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True, metadata_ttl=3600)


def test_an_uncached_file_renamed_twice_keeps_its_bytes(tmp_path):
    """Found with directory renames: the second rename of a file whose copy was still
    pending took it for a local file and uploaded its (never fetched) bytes: zeros."""
    mem = MemoryStore("b")
    mem.put("theirs", BODY)

    async def body(rig):
        await rig.listdir("")
        await rig.rename("theirs", "once")
        await rig.rename("once", "twice")
        await _sync_until_ok(rig)
        assert mem.objects() == {"twice": BODY}

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True)


MiB = 1 << 20
BIG = b"".join(bytes([i]) * MiB for i in range(20))  # over the (lowered) copy limit


def test_a_file_over_the_copy_limit_is_copied_in_parts(tmp_path):
    """Objects too large for one CopyObject (5 GiB on S3; lowered here to 8 MiB) are
    copied with UploadPartCopy, the parts conditional on the renamed version."""
    mem = MemoryStore("b")
    mem.put("big", BIG, {"mode": str(0o100600)})

    async def body(rig):
        rig.stack.uploader.s.copy_limit = 8 * MiB
        await rig.listdir("")
        await rig.rename("big", "big-renamed")
        await _sync_until_ok(rig)
        assert mem.objects() == {"big-renamed": BIG}
        assert mem.stats.requests.get("upload_part_copy") == 3 and not mem.stats.requests.get("copy")
        assert mem.list_multipart_uploads() == []
        assert (await rig.stat("big-renamed")).mode & 0o777 == 0o600

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True)


def test_a_crash_during_a_copy_in_parts_leaves_no_upload_behind(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    mem.put("big", BIG)

    async def body(rig):
        rig.stack.uploader.s.copy_limit = 8 * MiB
        await rig.listdir("")
        await rig.rename("big", "big-renamed")
        gate = store.hold("upload_part_copy", first=1)
        syncing = trio.CancelScope()

        async def sync_in_background():
            with syncing:
                await rig.sync()

        async with trio.open_nursery() as n:
            n.start_soon(sync_in_background)
            assert await trio.to_thread.run_sync(gate.wait_held, 1, 30)
            assert len(mem.list_multipart_uploads()) == 1
            rig.crash()
            syncing.cancel()
        gate.release()
        await rig.restart()
        rig.stack.uploader.s.copy_limit = 8 * MiB
        await _sync_until_ok(rig)
        assert mem.objects() == {"big-renamed": BIG}
        assert mem.list_multipart_uploads() == []

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)


def test_another_writer_replaces_a_big_file_before_its_copy_in_parts(tmp_path, allow_log):
    allow_log("conflict on ")
    mem = MemoryStore("b")
    mem.put("big", BIG)

    async def body(rig):
        rig.stack.uploader.s.copy_limit = 8 * MiB
        await rig.listdir("")
        await rig.rename("big", "big-renamed")
        mem.put("big", b"theirs")
        await _sync_until_ok(rig)
        assert mem.objects() == {"big": b"theirs"}  # their version kept; the uncached rename undone
        assert any(c.path == "big-renamed" for c in rig.stack.journal.conflicts())
        assert mem.list_multipart_uploads() == []

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True)


def test_a_symlink_made_where_a_renamed_file_was(tmp_path):
    """Found by the mount model: a symlink made at the old name of a file whose rename was
    not copied yet did not take over its key (a pending delete of a file, not of a
    symlink), so its upload met the old object and made a conflict copy."""
    mem = MemoryStore("b")
    mem.put("f", BODY)

    async def body(rig):
        await rig.listdir("")
        await rig.rename("f", "g")
        await rig.symlink("f", "g")
        await _sync_until_ok(rig)
        assert mem.objects().keys() == {"f", "g"} and mem.objects()["g"] == BODY
        assert await rig.readlink("f") == "g"
        assert rig.stack.journal.conflicts() == []

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True)


def test_renamed_over_another_pending_rename(tmp_path):
    """mv a b; mv c b, both before any copy (endpoint down): b ends as c's bytes; a's
    bytes are gone as a local rename over them would make them (b replaced), and no old
    key stays."""
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    mem.put("a", b"A" * 1000)
    mem.put("c", b"C" * 1000)

    async def body(rig):
        await rig.listdir("")
        store.set_down(True)
        await rig.rename("a", "b")
        await rig.rename("c", "b")
        assert sorted(await rig.listdir("")) == ["b"]
        store.set_down(False)
        assert await rig.read_file("b") == b"C" * 1000
        await _sync_until_ok(rig)
        assert mem.objects() == {"b": b"C" * 1000}
        assert rig.stack.journal.conflicts() == []

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=3600)
