"""Directory renames are journaled like file renames (issue: renames that survive
outages): the call makes at most one LIST (none when the endpoint is away and the cache
has seen the whole subtree), every file below becomes a pending copy from its old key,
and the reconciler copies and then deletes, surviving outages, crashes and other writers."""

from __future__ import annotations

import errno
import stat

import trio

from mountsync.backend.base import TransientError
from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from tests.support.rig import expect_errno, run_rig

FILES = {f"data/f{i:03d}.bin": f"file {i} ".encode() * 40 for i in range(100)}
DEEP = {"data/sub/x": b"X" * 300, "data/sub/deeper/y": b"Y" * 7}


def _bucket(mem: MemoryStore, marker: bool = True) -> None:
    if marker:
        mem.put("data/", b"")
    for k, v in {**FILES, **DEEP}.items():
        mem.put(k, v)


def _moved(prefix: str, marker: bool = True) -> dict[str, bytes]:
    out = {prefix + k[len("data"):]: v for k, v in {**FILES, **DEEP}.items()}
    if marker:
        out[prefix + "/"] = b""
    return out


def _writes(mem: MemoryStore) -> dict[str, int]:
    return {op: mem.stats.requests.get(op, 0) for op in ("copy", "put", "delete")}


async def _sync_until_ok(rig, deadline: float = 120) -> None:
    with trio.fail_after(deadline):
        while not (await rig.sync(timeout=10)).ok:
            pass


async def _list_all(rig, path: str) -> None:
    """Look at every directory below ``path`` (what ``ls -R`` does)."""
    for name in await rig.listdir(path):
        child = f"{path}/{name}"
        if stat.S_ISDIR((await rig.stat(child)).mode):
            await _list_all(rig, child)


def test_dir_rename_with_the_endpoint_down_returns_at_once_and_lands_later(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    _bucket(mem)

    async def body(rig):
        await _list_all(rig, "data")  # the cache has seen the whole subtree
        assert await rig.read_file("data/f007.bin") == FILES["data/f007.bin"]  # one of them cached
        store.set_down(True)
        before = _writes(mem)
        await rig.rename("data", "moved")
        assert _writes(mem) == before
        assert sorted(await rig.listdir("")) == ["moved"]
        assert len(await rig.listdir("moved")) == 101
        assert sorted(await rig.listdir("moved/sub")) == ["deeper", "x"]
        assert await rig.read_file("moved/f007.bin") == FILES["data/f007.bin"]  # cached bytes
        assert rig.status()["pending_renames"] >= 100
        assert not (await rig.sync(timeout=1.5)).ok
        assert mem.objects() == {"data/": b"", **FILES, **DEEP}  # nothing happened yet
        store.set_down(False)
        assert await rig.read_file("moved/sub/deeper/y") == DEEP["data/sub/deeper/y"]  # from the old key
        await _sync_until_ok(rig)
        assert mem.objects() == _moved("moved")
        assert rig.stack.journal.tombstones() == []
        assert rig.status()["pending_renames"] == 0
        assert sorted(await rig.listdir("")) == ["moved"]

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=3600)


def test_dir_rename_online_makes_no_copy_in_the_call(tmp_path):
    mem = MemoryStore("b")
    _bucket(mem, marker=False)

    async def body(rig):
        await rig.listdir("")
        before = _writes(mem)
        await rig.rename("data", "moved")
        assert _writes(mem) == before  # one LIST (and HEADs for attributes) only
        assert sorted(await rig.listdir("")) == ["moved"]
        assert sorted(await rig.listdir("moved/sub")) == ["deeper", "x"]
        await _sync_until_ok(rig)
        assert mem.objects() == _moved("moved", marker=False)  # no marker appears
        assert sorted(await rig.listdir("")) == ["moved"]

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True)


def test_dir_rename_with_the_endpoint_down_and_an_unseen_subtree_fails_cleanly(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    _bucket(mem)

    async def body(rig):
        await rig.listdir("data")  # data/sub never listed: the cache cannot know what is below it
        store.set_down(True)
        await expect_errno(errno.EIO, rig.rename("data", "moved"))
        assert sorted(await rig.listdir("")) == ["data"]
        store.set_down(False)
        await _sync_until_ok(rig)
        assert mem.objects() == {"data/": b"", **FILES, **DEEP}

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=3600)


def test_chains_of_directory_and_file_renames_during_an_outage(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    _bucket(mem)

    async def body(rig):
        await _list_all(rig, "data")
        store.set_down(True)
        await rig.rename("data", "d2")
        await rig.rename("d2/f001.bin", "single")  # a file of the moved directory moves on
        await rig.write_file("d2/f002.bin", b"edited after the move")
        await rig.rename("d2", "d3")  # the directory again, its copies not done
        await rig.rename("d3/sub", "sub-out")
        store.set_down(False)
        await _sync_until_ok(rig)
        want = _moved("d3")
        want["single"] = want.pop("d3/f001.bin")
        want["d3/f002.bin"] = b"edited after the move"
        for k in [k for k in want if k.startswith("d3/sub/")]:
            want["sub-out/" + k[len("d3/sub/"):]] = want.pop(k)
        assert mem.objects() == want
        assert rig.stack.journal.tombstones() == []

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=3600)


def test_moved_away_and_back_before_the_copies_needs_no_request(tmp_path):
    mem = MemoryStore("b")
    _bucket(mem)

    async def body(rig):
        await _list_all(rig, "data")
        await rig.rename("data", "elsewhere")
        await rig.rename("elsewhere", "data")
        before = _writes(mem)
        await _sync_until_ok(rig)
        after = _writes(mem)
        assert after["copy"] == before["copy"] and after["delete"] == before["delete"]
        assert after["put"] - before["put"] <= 1  # the marker, put again
        assert mem.objects() == {"data/": b"", **FILES, **DEEP}

    run_rig(body, tmp_path, mem, write_back_delay=60, allow_delete=True, metadata_ttl=3600)


def test_crash_after_the_rename_and_between_copy_and_delete(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    _bucket(mem)

    async def body(rig):
        await _list_all(rig, "data")
        await rig.rename("data", "moved")
        rig.crash()  # recorded, nothing copied
        await rig.restart()
        assert sorted(await rig.listdir("")) == ["moved"]
        gate = store.hold("delete", "data/f050.bin")
        syncing = trio.CancelScope()

        async def sync_in_background():
            with syncing:
                await rig.sync()

        async with trio.open_nursery() as n:
            n.start_soon(sync_in_background)
            assert await trio.to_thread.run_sync(gate.wait_held, 1, 30)
            rig.crash()  # some copies and deletes done, one delete in flight
            syncing.cancel()
        gate.release()
        await rig.restart()
        assert sorted(await rig.listdir("")) == ["moved"]
        await _sync_until_ok(rig)
        assert mem.objects() == _moved("moved")

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=3600)


def test_another_writer_changes_a_moved_file_before_its_copy(tmp_path, allow_log):
    allow_log("conflict on ")
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    _bucket(mem)

    async def body(rig):
        await _list_all(rig, "data")
        assert await rig.read_file("data/f001.bin") == FILES["data/f001.bin"]  # cached
        store.set_down(True)
        await rig.rename("data", "moved")
        store.set_down(False)
        mem.put("data/f001.bin", b"theirs, cached file")
        mem.put("data/f002.bin", b"theirs, uncached file")
        await _sync_until_ok(rig)
        objects = mem.objects()
        # nothing anyone wrote is lost: their versions stay under the old names
        assert objects["data/f001.bin"] == b"theirs, cached file"
        assert objects["data/f002.bin"] == b"theirs, uncached file"
        assert objects["moved/f001.bin"] == FILES["data/f001.bin"]  # the cache held what was renamed
        assert "moved/f002.bin" not in objects  # its renamed bytes were gone: recorded as a conflict
        assert {c.path for c in rig.stack.journal.conflicts()} >= {"moved/f002.bin"}
        assert objects["moved/f003.bin"] == FILES["data/f003.bin"]
        assert await rig.read_file("data/f002.bin") == b"theirs, uncached file"

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=3600)


def test_attributes_never_seen_survive_a_move_during_an_outage(tmp_path):
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    mem.put("d/tool", b"#!/bin/sh\n", {"mode": str(0o100755), "uid": "1234", "gid": "99"})

    async def body(rig):
        await rig.listdir("d")  # listed, never stat'ed: its metadata is not known
        store.set_down(True)
        await rig.rename("d", "e")
        store.set_down(False)
        await _sync_until_ok(rig)
        assert mem.objects() == {"e/tool": b"#!/bin/sh\n"}
        head = mem.head("e/tool")
        assert head.metadata is not None and head.metadata.get("mode") == str(0o100755)
        st = await rig.stat("e/tool")
        assert (st.mode & 0o7777, st.uid, st.gid) == (0o755, 1234, 99)

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=3600)


def test_a_file_made_at_the_old_name_of_a_moved_directory(tmp_path):
    """Found by the mount model: a file (or symlink) made at the old name took over the
    moved directory's tombstone, so its marker was never deleted and the old directory
    came back after the move (and hid the new file: a directory wins its name)."""
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    _bucket(mem)

    async def body(rig):
        await _list_all(rig, "data")
        store.set_down(True)  # nothing of the move is carried out before the new file exists
        await rig.rename("data", "moved")
        await rig.write_file("data", b"a file now")
        await rig.symlink("data-link", "moved/f001.bin")
        store.set_down(False)
        await _sync_until_ok(rig)
        want = _moved("moved")
        want["data"] = b"a file now"
        assert {k: v for k, v in mem.objects().items() if k != "data-link"} == want
        assert sorted(await rig.listdir("")) == ["data", "data-link", "moved"]
        assert await rig.read_file("data") == b"a file now"

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=0)


def test_symlinks_known_only_from_the_bucket_move_as_symlinks(tmp_path):
    """A symlink another tool stored (s3fs convention: the body is the target, the mode
    says symlink) that the mount has looked at moves as a symlink, shown as one at once."""
    mem = MemoryStore("b")
    store = FaultyStore(mem)
    mem.put("d/link", b"../elsewhere/target", {"mode": str(0o120777)})
    mem.put("d/file", b"F")

    async def body(rig):
        await rig.listdir("d")
        assert await rig.readlink("d/link") == "../elsewhere/target"
        store.set_down(True)
        await rig.rename("d", "e")
        assert sorted(await rig.listdir("e")) == ["file", "link"]
        assert stat.S_ISLNK((await rig.stat("e/link")).mode)
        assert await rig.readlink("e/link") == "../elsewhere/target"
        store.set_down(False)
        assert sorted(await rig.listdir("e")) == ["file", "link"]  # listed again, nothing copied yet
        assert stat.S_ISLNK((await rig.stat("e/link")).mode)
        await _sync_until_ok(rig)
        assert mem.objects() == {"e/link": b"../elsewhere/target", "e/file": b"F"}
        assert int(mem.head("e/link").metadata["mode"]) & 0o170000 == 0o120000
        assert await rig.readlink("e/link") == "../elsewhere/target"

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=0)


def test_a_directory_marker_still_to_be_deleted_does_not_hide_the_file_now_at_its_name(tmp_path):
    """Found by the mount model under load: rmdir a/a, a file renamed to a/a, then mv a m
    while the marker 'a/a/' was not deleted yet: the listing's marker made the new file
    'a/a' look hidden by a directory, so it was left behind (with a WARNING)."""
    mem = MemoryStore("b")
    store = FaultyStore(mem)

    async def body(rig):
        await rig.mkdir("a")
        await rig.mkdir("a/a")
        await rig.write_file("c", b"C")
        assert (await rig.sync()).ok
        # the marker's delete keeps failing: it stays pending (not in flight, which a rename waits for)
        store.fail_next("delete", TransientError("503 SlowDown"), times=10_000, key="a/a/")
        await rig.rmdir("a/a")
        await rig.rename("c", "a/a")
        with trio.fail_after(60):
            while "a/a" not in mem.objects():  # the copy is made; the marker's delete still fails
                await rig.sync(timeout=1)
        assert "a/a/" in mem.objects()
        await rig.rename("a", "m")
        assert sorted(await rig.listdir("m")) == ["a"]
        store.clear()
        await _sync_until_ok(rig)
        assert mem.objects() == {"m/": b"", "m/a": b"C"}

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=3600)
