"""Directory renames racing uploads and other writers (SPEC §6/§7, docs/SEMANTICS.md *Renames*).

A directory rename with --allow-delete moves every key below the directory: the
reconciler copies each and then deletes the old one. Uploads of entries below it must
neither be lost nor land under the old name, and another writer's version met on the
way must be kept, never deleted.
"""

from __future__ import annotations

import errno

import trio

from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from tests.support.rig import expect_errno, run_rig, wait_until

CONFLICT_LOG = r"conflict on "


async def _rename_while_gate_held(rig, gate, old: str, new: str) -> None:
    """Start ``rename(old, new)`` while ``gate`` holds a store call; release the call once
    the rename has either finished or is waiting for it; wait for the rename."""
    done = trio.Event()

    async def do_rename():
        await rig.rename(old, new)
        done.set()

    async with trio.open_nursery() as n:
        n.start_soon(do_rename)
        held = rig.stack.reconciler
        await wait_until(lambda: done.is_set() or bool(getattr(held, "held_paths", None)), timeout=10)
        gate.release()


def _assert_clean_entries_match_bucket(rig, inner: MemoryStore) -> None:
    """No journal entry is stamped with an ETag of bytes it does not hold."""
    objects = inner.objects()
    for e in rig.stack.journal.under(""):
        if e.kind != 0o100000 or e.pending:
            continue
        assert e.path in objects, f"clean entry {e.path!r} has no object"
        assert e.base_etag == inner.etag_of(e.path), f"{e.path!r} stamped with a foreign ETag"


def test_dir_rename_during_upload_of_changed_file_keeps_newest(tmp_path):
    """The issue's case: d/f v2 uploading during mv d e. Before the fix the bucket ended
    with e/f = v1, d/f deleted, and the journal called e/f clean with v1's ETag."""
    inner = MemoryStore("b")
    store = FaultyStore(inner)

    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/f", b"v1")
        assert (await rig.sync()).ok
        await rig.write_file("d/f", b"v2")
        gate = store.hold("put", "d/f")
        async with trio.open_nursery() as n:
            n.start_soon(rig.sync)
            assert await trio.to_thread.run_sync(gate.wait_held)
            await _rename_while_gate_held(rig, gate, "d", "e")
        res = await rig.sync()
        assert res.ok, res
        assert await rig.read_file("e/f") == b"v2"
        assert inner.objects() == {"e/": b"", "e/f": b"v2"}
        assert rig.status()["pending_files"] == 0
        _assert_clean_entries_match_bucket(rig, inner)

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)


def test_dir_rename_during_upload_of_new_file(tmp_path):
    """A new file d/g whose upload completes inside the rename's window (after the listing,
    before the journal move): before the fix it stayed at d/g, e/g was never uploaded, and
    sync reported success."""
    inner = MemoryStore("b")
    store = FaultyStore(inner)

    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/f", b"F")
        assert (await rig.sync()).ok
        await rig.write_file("d/g", b"G")
        g_id = rig.stack.journal.get("d/g").id
        put_gate = store.hold("put", "d/g")
        copy_gate = store.hold("copy", "e/f")
        async with trio.open_nursery() as n:
            n.start_soon(rig.sync)
            assert await trio.to_thread.run_sync(put_gate.wait_held)
            n.start_soon(rig.rename, "d", "e")
            await wait_until(lambda: copy_gate.held or bool(getattr(rig.stack.reconciler, "held_paths", None)))
            put_gate.release()  # the upload completes now: inside the rename's window
            await wait_until(lambda: not rig.stack.journal.get_by_id(g_id).pending)
            copy_gate.release()
        res = await rig.sync()
        assert res.ok, res
        assert sorted(await rig.listdir("e")) == ["f", "g"]
        assert inner.objects() == {"e/": b"", "e/f": b"F", "e/g": b"G"}
        _assert_clean_entries_match_bucket(rig, inner)

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)


def test_dir_rename_keeps_other_writers_update_between_copy_and_delete(tmp_path, allow_log):
    """Another writer replaces d/f after the rename copied it: the delete of the old key is
    conditional on the copied ETag, so the other writer's version stays (and is reported)."""
    allow_log(CONFLICT_LOG)
    inner = MemoryStore("b")
    store = FaultyStore(inner)

    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/f", b"v1")
        assert (await rig.sync()).ok
        gate = store.hold("copy", "e/f", when="after")

        async def other_writer():
            assert await trio.to_thread.run_sync(gate.wait_held)
            inner.put("d/f", b"other")
            gate.release()

        await rig.rename("d", "e")  # the copy is the reconciler's, later
        async with trio.open_nursery() as n:
            n.start_soon(other_writer)
            res = await rig.sync()
        assert res.ok, res
        objects = inner.objects()
        assert objects["e/f"] == b"v1"
        assert objects["d/f"] == b"other"
        assert await rig.read_file("d/f") == b"other"
        assert any(c.path == "d/f" for c in rig.stack.journal.conflicts())

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)


def test_dir_rename_copies_the_version_in_the_bucket_not_the_stale_cache(tmp_path):
    """Another writer replaced d/f (clean in the cache) before mv d e: e/f is their version,
    and the journal does not call the stale cached bytes clean under e/f's ETag."""
    inner = MemoryStore("b")

    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/f", b"v1")
        assert (await rig.sync()).ok
        assert await rig.read_file("d/f") == b"v1"
        inner.put("d/f", b"other-v2")
        await rig.rename("d", "e")
        res = await rig.sync()
        assert res.ok, res
        assert inner.objects() == {"e/": b"", "e/f": b"other-v2"}
        assert await rig.read_file("e/f") == b"other-v2"
        _assert_clean_entries_match_bucket(rig, inner)

    run_rig(body, tmp_path, inner, write_back_delay=60, allow_delete=True, metadata_ttl=60)


def test_dir_rename_over_empty_dir_with_marker(tmp_path):
    """mv d e over an empty directory e (a marker in the bucket): no conflict copy of the
    marker, and e's marker is not deleted after the rename replaced it."""
    inner = MemoryStore("b")

    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/f", b"F")
        await rig.mkdir("e")
        assert (await rig.sync()).ok
        await rig.rename("d", "e")
        assert (await rig.sync()).ok
        assert inner.objects() == {"e/": b"", "e/f": b"F"}
        assert rig.stack.journal.conflicts() == []
        assert await rig.listdir("") == ["e"]

    run_rig(body, tmp_path, inner, write_back_delay=60, allow_delete=True)


def test_rename_of_never_uploaded_dir_moves_keys_another_writer_put_below_it(tmp_path):
    """mkdir d (its marker not uploaded yet), another writer puts d/o1, the mount has not seen
    it, then mv d e: the bucket is asked, so d/o1 moves with the directory (found by the
    mount-vs-directory model: before, d/o1 stayed behind, hidden by the cached listing)."""
    inner = MemoryStore("b")

    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/f", b"F")
        assert sorted(await rig.listdir("d")) == ["f"]  # listed before the other writer's put
        inner.put("d/o1", b"other")
        await rig.rename("d", "e")
        res = await rig.sync()
        assert res.ok, res
        assert sorted(await rig.listdir("e")) == ["f", "o1"]
        assert inner.objects() == {"e/": b"", "e/f": b"F", "e/o1": b"other"}

    run_rig(body, tmp_path, inner, write_back_delay=60, metadata_ttl=3600, negative_metadata_ttl=3600,
            allow_delete=True)


def test_rename_of_never_uploaded_dir_with_another_writers_key_needs_allow_delete(tmp_path, allow_log):
    """The same without --allow-delete: moving d/o1 would delete an object this mount did not
    create, so the rename is refused and the bucket keeps it."""
    inner = MemoryStore("b")

    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/f", b"F")
        assert sorted(await rig.listdir("d")) == ["f"]
        inner.put("d/o1", b"other")
        await expect_errno(errno.EPERM, rig.rename("d", "e"))
        assert inner.objects()["d/o1"] == b"other"

    run_rig(body, tmp_path, inner, write_back_delay=60, metadata_ttl=3600, negative_metadata_ttl=3600)
