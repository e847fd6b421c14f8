"""Edge cases next to the main §5/§6 paths: rename/unlink racing the reconciler,
--fsync-upload, --read-only, hard links."""

import errno
import os

import pytest
import trio

from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from mountsync.errors import FsError
from tests.support.rig import run_rig


def test_directory_rename_with_pending_edit_inside(tmp_path):
    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/a", b"uploaded")
        await rig.write_file("d/b", b"clean")
        assert (await rig.sync()).ok
        await rig.write_at("d/a", 0, b"EDITED--")
        await rig.rename("d", "e")
        assert await rig.read_file("e/a") == b"EDITED--"
        res = await rig.sync()
        assert res.ok, res
        assert rig.store.objects() == {"e/": b"", "e/a": b"EDITED--", "e/b": b"clean"}

    run_rig(body, tmp_path, write_back_delay=60, allow_delete=True)


def test_recreate_after_unlink_while_delete_in_flight(tmp_path):
    """create() over a path whose remote delete is in flight waits for that delete, so the
    new file's upload is based on what the bucket really holds (no false conflict)."""
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)

    async def body(rig):
        await rig.write_file("f", b"old")
        assert (await rig.sync()).ok
        gate = faulty.hold("delete", key="f", timeout=20)
        await rig.unlink("f")
        assert await trio.to_thread.run_sync(gate.wait_held, 1, 10.0)
        done = trio.Event()

        async def recreate():
            await rig.write_file("f", b"new")  # e.g. an editor saving without a temp file
            done.set()

        async with trio.open_nursery() as n:
            n.start_soon(recreate)
            await trio.sleep(0.2)
            assert not done.is_set()  # waits for the delete in flight
            gate.release()
        res = await rig.sync()
        assert res.ok, res
        assert mem.objects() == {"f": b"new"}
        assert await rig.read_file("f") == b"new"
        assert rig.stack.journal.conflicts() == []  # no conflict: only this mount touched "f"

    run_rig(body, tmp_path, faulty, write_back_delay=60, allow_delete=True)


def test_recreate_after_unlink_before_delete_ran(tmp_path):

    async def body(rig):
        await rig.write_file("f", b"old")
        assert (await rig.sync()).ok
        await rig.unlink("f")
        await rig.write_file("f", b"new")
        res = await rig.sync()
        assert res.ok, res
        assert rig.store.objects() == {"f": b"new"}
        assert await rig.read_file("f") == b"new"
        assert rig.stack.journal.conflicts() == []

    run_rig(body, tmp_path, write_back_delay=60, allow_delete=True)


def test_fsync_upload_waits_for_the_upload(tmp_path):
    async def body(rig):
        await rig.write_file("f", b"")
        fh = await rig.open("f", os.O_WRONLY)
        await rig.fs.write(fh, 0, b"durable")
        await rig.fs.fsync(fh)
        assert rig.store.objects() == {"f": b"durable"}  # uploaded before fsync returned, file still open
        await rig.fs.release(fh)

    run_rig(body, tmp_path, write_back_delay=60, fsync_upload=True)


def test_fsync_without_upload_flag_keeps_it_local(tmp_path):
    async def body(rig):
        await rig.write_file("f", b"")
        fh = await rig.open("f", os.O_WRONLY)
        await rig.fs.write(fh, 0, b"local")
        await rig.fs.fsync(fh)
        await rig.fs.release(fh)
        assert rig.store.objects() == {}
        await rig.restart()
        assert await rig.read_file("f") == b"local"

    run_rig(body, tmp_path, write_back_delay=60)


def test_read_only_mount_refuses_changes(tmp_path):
    store = MemoryStore("b")
    store.put("f", b"ro")

    async def body(rig):
        assert await rig.read_file("f") == b"ro"
        for coro in (rig.write_file("g", b"x"), rig.mkdir("d"), rig.truncate("f", 0),
                     rig.open("f", os.O_WRONLY), rig.chmod("f", 0o600), rig.symlink("l", "f"),
                     rig.unlink("f"), rig.rename("f", "h")):
            with pytest.raises(FsError) as ei:
                await coro
            assert ei.value.errno == errno.EROFS
        assert store.objects() == {"f": b"ro"}

    run_rig(body, tmp_path, store, read_only=True, allow_delete=True)


def test_hard_link_fails_clearly(tmp_path):
    async def body(rig):
        await rig.write_file("f", b"")
        with pytest.raises(FsError) as ei:
            await rig.fs.link(await rig.ino("f"), 1, "g")
        assert ei.value.errno in (errno.EPERM, errno.ENOTSUP)
        assert await rig.listdir("") == ["f"]

    run_rig(body, tmp_path, write_back_delay=60)


def test_name_checks(tmp_path):
    async def body(rig):
        with pytest.raises(FsError) as ei:
            await rig.write_file("x" * 256, b"")
        assert ei.value.errno == errno.ENAMETOOLONG
        await rig.write_file("y" * 255, b"ok")
        with pytest.raises(FsError) as ei:
            await rig.mkdir("y" * 255)
        assert ei.value.errno == errno.EEXIST
        assert (await rig.sync()).ok
        assert rig.store.objects() == {"y" * 255: b"ok"}

    run_rig(body, tmp_path, write_back_delay=60)
