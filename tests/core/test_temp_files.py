"""SPEC §6 and programs' temporary files: a file uploaded early (sync, --fsync-upload) while
still open for writing stays removable until its normal write-back time after close."""

import errno
import os

import pytest
import trio

from mountsync.backend.memory import MemoryStore
from mountsync.errors import FsError
from tests.support.rig import run_rig


def test_journal_uploaded_by_sync_while_open_can_still_be_removed(tmp_path):
    store = MemoryStore("b")

    async def body(rig):
        p, _ = await rig.parent_and_name("db-journal")
        fh, _ = await rig.fs.create(p, "db-journal", 0o100644, os.O_WRONLY | os.O_CREAT, 0, 0)
        await rig.fs.write(fh, 0, b"rollback data")
        assert (await rig.sync()).ok  # e.g. a 'mountsync sync' during a transaction
        assert store.objects() == {"db-journal": b"rollback data"}
        await rig.fs.release(fh)
        await rig.unlink("db-journal")  # the commit deletes its journal: no EPERM
        assert (await rig.sync()).ok
        assert store.objects() == {}  # and the early copy is gone from the bucket

    run_rig(body, tmp_path, store, write_back_delay=30)


def test_fsync_upload_of_open_file_then_unlink(tmp_path):
    store = MemoryStore("b")

    async def body(rig):
        p, _ = await rig.parent_and_name("j")
        fh, _ = await rig.fs.create(p, "j", 0o100644, os.O_WRONLY | os.O_CREAT, 0, 0)
        await rig.fs.write(fh, 0, b"x")
        await rig.fs.fsync(fh)
        assert store.objects() == {"j": b"x"}
        await rig.fs.release(fh)
        await rig.unlink("j")
        assert (await rig.sync()).ok
        assert store.objects() == {}

    run_rig(body, tmp_path, store, write_back_delay=30, fsync_upload=True)


def test_closed_file_uploaded_by_sync_stays_removable_as_our_creation(tmp_path):
    """Before the own-creations rule (SPEC §6) this was EPERM: the upload made it cloud data."""
    async def body(rig):
        await rig.write_file("f", b"closed before the sync")
        assert (await rig.sync()).ok
        await rig.unlink("f")
        assert (await rig.sync()).ok
        assert rig.store.objects() == {}

    run_rig(body, tmp_path, write_back_delay=30)


def test_early_uploaded_file_settles_and_stays_removable_as_our_creation(tmp_path):
    async def body(rig):
        p, _ = await rig.parent_and_name("t")
        fh, _ = await rig.fs.create(p, "t", 0o100644, os.O_WRONLY | os.O_CREAT, 0, 0)
        await rig.fs.write(fh, 0, b"x")
        assert (await rig.sync()).ok
        await rig.fs.release(fh)
        with trio.fail_after(10):
            while not rig.stack.journal.get("t").settled:
                await trio.sleep(0.05)
        await rig.unlink("t")
        assert (await rig.sync()).ok
        assert rig.store.objects() == {}

    run_rig(body, tmp_path, write_back_delay=0.3)


def test_file_that_existed_before_is_protected_after_an_early_upload(tmp_path):
    store = MemoryStore("b")
    store.put("t", b"before")

    async def body(rig):
        fh = await rig.open("t", os.O_WRONLY | os.O_TRUNC)
        await rig.fs.write(fh, 0, b"x")
        assert (await rig.sync()).ok
        await rig.fs.release(fh)
        with pytest.raises(FsError) as ei:
            await rig.unlink("t")
        assert ei.value.errno == errno.EPERM
        assert store.objects() == {"t": b"x"}

    run_rig(body, tmp_path, store, write_back_delay=30)
