"""SPEC §7 on the memory backend: what each conflict strategy does with both versions."""

import os

import pytest

from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig

CONFLICT_LOG = r"conflict on"


async def _edit_under_other_writer(rig, store, path="dir/note.txt"):
    """Upload v1, edit locally to 'local-edit', then another writer puts v2 before the upload."""
    await rig.mkdir("dir")
    await rig.write_file(path, b"v1")
    assert (await rig.sync()).ok
    await rig.write_file(path, b"local-edit")
    store.put(path, b"remote-v2", {"mtime": "1"})  # another writer, old mtime


def _conflict_keys(store, path="dir/note"):
    return [k for k in store.objects() if k.startswith(path + ".conflict-")]


def test_keep_both_uploads_local_under_conflict_name(tmp_path, allow_log):
    allow_log(CONFLICT_LOG)
    store = MemoryStore("b")

    async def body(rig):
        await _edit_under_other_writer(rig, store)
        res = await rig.sync()
        assert res.ok, res
        objs = store.objects()
        assert objs["dir/note.txt"] == b"remote-v2"
        (ck,) = _conflict_keys(store)
        assert ck.endswith(".txt") and objs[ck] == b"local-edit"
        # the mount shows both: the original name is the bucket's version
        names = await rig.listdir("dir")
        assert "note.txt" in names and os.path.basename(ck) in names
        assert await rig.read_file("dir/note.txt") == b"remote-v2"
        assert await rig.read_file(ck) == b"local-edit"
        (c,) = rig.stack.journal.conflicts()
        assert c.path == "dir/note.txt" and c.kind == "modified" and c.local_to == f"bucket:{ck}"

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_local_wins_keeps_remote_in_recovery(tmp_path, allow_log):
    allow_log(CONFLICT_LOG)
    store = MemoryStore("b")

    async def body(rig):
        await _edit_under_other_writer(rig, store)
        assert (await rig.sync()).ok
        assert store.objects()["dir/note.txt"] == b"local-edit"
        assert _conflict_keys(store) == []
        (c,) = rig.stack.journal.conflicts()
        assert c.remote_to.startswith("recovery:")
        with open(c.remote_to[len("recovery:"):], "rb") as f:
            assert f.read() == b"remote-v2"

    run_rig(body, tmp_path, store, write_back_delay=60, conflict_strategy="local-wins")


def test_remote_wins_keeps_local_in_recovery(tmp_path, allow_log):
    allow_log(CONFLICT_LOG)
    store = MemoryStore("b")

    async def body(rig):
        await _edit_under_other_writer(rig, store)
        assert (await rig.sync()).ok
        assert store.objects()["dir/note.txt"] == b"remote-v2"
        assert await rig.read_file("dir/note.txt") == b"remote-v2"
        (c,) = rig.stack.journal.conflicts()
        with open(c.local_to[len("recovery:"):], "rb") as f:
            assert f.read() == b"local-edit"

    run_rig(body, tmp_path, store, write_back_delay=60, conflict_strategy="remote-wins")


@pytest.mark.parametrize("remote_mtime,winner", [("1", "local"), ("4000000000", "remote")])
def test_newest_wins_by_mtime(tmp_path, allow_log, remote_mtime, winner):
    allow_log(CONFLICT_LOG)
    store = MemoryStore("b")

    async def body(rig):
        await rig.write_file("f.txt", b"v1")
        assert (await rig.sync()).ok
        await rig.write_file("f.txt", b"local-edit")
        store.put("f.txt", b"remote-v2", {"mtime": remote_mtime})
        assert (await rig.sync()).ok
        (c,) = rig.stack.journal.conflicts()
        loser_file = (c.remote_to if winner == "local" else c.local_to)[len("recovery:"):]
        with open(loser_file, "rb") as f:
            loser = f.read()
        if winner == "local":
            assert store.objects()["f.txt"] == b"local-edit" and loser == b"remote-v2"
        else:
            assert store.objects()["f.txt"] == b"remote-v2" and loser == b"local-edit"

    run_rig(body, tmp_path, store, write_back_delay=60, conflict_strategy="newest-wins")


def test_manual_keeps_edit_pending_until_resolved(tmp_path, allow_log):
    allow_log(CONFLICT_LOG)
    store = MemoryStore("b")

    async def body(rig):
        await _edit_under_other_writer(rig, store)
        res = await rig.sync()
        assert not res.ok and "manual" in res.failed[0]
        assert store.objects()["dir/note.txt"] == b"remote-v2"
        assert await rig.read_file("dir/note.txt") == b"local-edit"  # still the local edit
        assert rig.stack.journal.open_conflict("dir/note.txt") is not None
        res = await rig.stack.reconciler.resolve("dir/note.txt", "both")
        assert res.ok, res
        (ck,) = _conflict_keys(store)
        assert store.objects()[ck] == b"local-edit"
        assert store.objects()["dir/note.txt"] == b"remote-v2"
        assert rig.stack.journal.open_conflict("dir/note.txt") is None

    run_rig(body, tmp_path, store, write_back_delay=60, conflict_strategy="manual")


def test_remote_delete_under_local_edit_keeps_the_edit(tmp_path, allow_log):
    allow_log(CONFLICT_LOG)
    store = MemoryStore("b")

    async def body(rig):
        await rig.write_file("f.txt", b"v1")
        assert (await rig.sync()).ok
        await rig.write_file("f.txt", b"local-edit")
        store.delete("f.txt")
        assert (await rig.sync()).ok
        assert store.objects()["f.txt"] == b"local-edit"
        (c,) = rig.stack.journal.conflicts()
        assert c.kind == "deleted-remotely"

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_local_delete_of_changed_remote_is_refused_and_reappears(tmp_path, allow_log):
    allow_log(CONFLICT_LOG)
    store = MemoryStore("b")

    async def body(rig):
        await rig.write_file("f.txt", b"v1")
        assert (await rig.sync()).ok
        await rig.unlink("f.txt")
        store.put("f.txt", b"remote-v2")  # before the reconciler runs the delete
        assert (await rig.sync()).ok
        assert store.objects()["f.txt"] == b"remote-v2"
        assert "f.txt" in await rig.listdir("")
        (c,) = rig.stack.journal.conflicts()
        assert c.kind == "delete-refused"

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)


def test_server_ignoring_conditions_is_detected_and_head_checked(tmp_path, allow_log):
    """A store that ignores If-Match/If-None-Match: the probe notices, uploads check with HEAD."""
    allow_log(CONFLICT_LOG)
    allow_log("ignores conditional writes")

    class IgnoringStore(MemoryStore):
        def put(self, key, body, metadata=None, *, if_match=None, if_none_match=False):
            return super().put(key, body, metadata)

    store = IgnoringStore("b")

    async def body(rig):
        assert rig.stack.uploader.conditional_writes is False
        await rig.write_file("f.txt", b"v1")
        assert (await rig.sync()).ok
        await rig.write_file("f.txt", b"local-edit")
        store.put("f.txt", b"remote-v2")
        assert (await rig.sync()).ok
        assert store.objects()["f.txt"] == b"remote-v2"
        (ck,) = [k for k in store.objects() if k.startswith("f.conflict-")]
        assert store.objects()[ck] == b"local-edit"
        assert not any(k.startswith(".mountsync-probe") for k in store.objects())

    run_rig(body, tmp_path, store, write_back_delay=60, conditional_writes="auto")


def test_multipart_upload_conflict_is_caught_even_if_complete_ignores_if_match(tmp_path, allow_log):
    """moto (and some servers) ignore If-Match on CompleteMultipartUpload: a HEAD just
    before completing still catches another writer's change."""
    allow_log(CONFLICT_LOG)

    class IgnoresCompleteIfMatch(MemoryStore):
        def complete_multipart(self, key, upload_id, parts, *, if_match=None, if_none_match=False):
            return super().complete_multipart(key, upload_id, parts, if_none_match=if_none_match)

    store = IgnoresCompleteIfMatch("b")
    big = b"L" * (3 * 1024 * 1024)

    async def body(rig):
        await rig.write_file("big.bin", b"v1")
        assert (await rig.sync()).ok
        await rig.write_file("big.bin", big)
        store.put("big.bin", b"remote-v2")
        assert (await rig.sync()).ok
        assert store.objects()["big.bin"] == b"remote-v2"
        (ck,) = [k for k in store.objects() if k.startswith("big.conflict-")]
        assert store.objects()[ck] == big
        assert store.list_multipart_uploads() == []

    run_rig(body, tmp_path, store, write_back_delay=60, multipart_threshold=1024 * 1024,
            part_size=512 * 1024)


@pytest.mark.parametrize("strategy", ["remote-wins", "keep-both"])
def test_bucket_version_taken_over_a_local_creation_stays_protected(tmp_path, allow_log, strategy):
    """A file created here loses to another writer's object of the same name (the bucket's
    version now shows under the name): without --allow-delete, unlink of it must be EPERM and
    the other writer's object must stay (SPEC §6). Before the fix the entry kept its
    'created here' (unsettled) state, unlink succeeded and deleted the other writer's object."""
    import errno

    from tests.support.rig import expect_errno

    allow_log(CONFLICT_LOG)
    store = MemoryStore("b")

    async def body(rig):
        await rig.write_file("new.txt", b"mine")
        store.put("new.txt", b"theirs")  # another writer, before our first upload
        assert (await rig.sync()).ok
        assert await rig.read_file("new.txt") == b"theirs"
        await expect_errno(errno.EPERM, rig.unlink("new.txt"))
        assert (await rig.sync()).ok
        assert store.objects()["new.txt"] == b"theirs"

    run_rig(body, tmp_path, store, write_back_delay=60, conflict_strategy=strategy)
