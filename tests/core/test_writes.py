"""SPEC §5 on the memory backend without FUSE: local writes, what the upload sends,
and when it is sent (write-back delay, swap files, changes during an upload)."""

import os
import stat

import trio

from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig, wait_until

# ------------------------------------------------------------ local semantics


def test_write_at_offsets_append_overwrite(tmp_path):
    async def body(rig):
        await rig.write_file("f", b"hello world")
        assert await rig.read_file("f") == b"hello world"
        # overwrite in the middle
        await rig.write_at("f", 6, b"WORLD")
        assert await rig.read_file("f") == b"hello WORLD"
        # append: O_APPEND writes land at the current size (the kernel passes that offset)
        size = (await rig.stat("f")).size
        assert size == 11
        await rig.write_at("f", size, b"!!", os.O_WRONLY | os.O_APPEND)
        assert await rig.read_file("f") == b"hello WORLD!!"
        # a write past the end leaves a hole of zeros
        await rig.write_at("f", 20, b"X")
        assert await rig.read_file("f") == b"hello WORLD!!" + b"\0" * 7 + b"X"
        assert (await rig.stat("f")).size == 21
        # O_TRUNC through create() on an existing name: overwrite the whole file
        p, name = await rig.parent_and_name("f")
        fh, attr = await rig.fs.create(p, name, stat.S_IFREG | 0o644, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0, 0)
        assert attr.size == 0
        await rig.fs.write(fh, 0, b"new")
        await rig.fs.release(fh)
        assert await rig.read_file("f") == b"new"

        res = await rig.sync()
        assert res.ok, res
        assert rig.store.objects()["f"] == b"new"

    run_rig(body, tmp_path, write_back_delay=60)


def test_read_write_same_handle(tmp_path):
    async def body(rig):
        await rig.write_file("f", b"")
        fh = await rig.open("f", os.O_RDWR)
        await rig.fs.write(fh, 0, b"abcdef")
        assert await rig.fs.read(fh, 2, 3) == b"cde"
        assert await rig.fs.read(fh, 4, 100) == b"ef"
        assert await rig.fs.read(fh, 6, 10) == b""
        await rig.fs.release(fh)

    run_rig(body, tmp_path, write_back_delay=60)


def test_truncate_shrink_and_extend(tmp_path):
    async def body(rig):
        await rig.write_file("t", b"0123456789")
        await rig.truncate("t", 4)
        assert (await rig.stat("t")).size == 4
        assert await rig.read_file("t") == b"0123"
        await rig.truncate("t", 8)
        assert (await rig.stat("t")).size == 8
        assert await rig.read_file("t") == b"0123\0\0\0\0"
        res = await rig.sync()
        assert res.ok, res
        assert rig.store.objects()["t"] == b"0123\0\0\0\0"
        # truncate of an uploaded file is uploaded again
        await rig.truncate("t", 2)
        res = await rig.sync()
        assert res.ok, res
        assert rig.store.objects()["t"] == b"01"
        await rig.truncate("t", 0)
        assert (await rig.sync()).ok
        assert rig.store.objects()["t"] == b""

    run_rig(body, tmp_path, write_back_delay=60)


def test_truncate_of_uncached_remote_object(tmp_path):
    store = MemoryStore("b")
    store.put("r", b"remote-bytes")

    async def body(rig):
        await rig.truncate("r", 6)
        assert await rig.read_file("r") == b"remote"
        assert (await rig.sync()).ok
        assert store.objects()["r"] == b"remote"

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_overwrite_of_remote_object_in_place(tmp_path):
    store = MemoryStore("b")
    store.put("r", b"aaaaaaaaaa", {"mode": str(stat.S_IFREG | 0o600), "uid": "5", "gid": "6", "mtime": "1000"})

    async def body(rig):
        await rig.write_at("r", 3, b"BBB")
        assert await rig.read_file("r") == b"aaaBBBaaaa"
        assert (await rig.sync()).ok
        assert store.objects()["r"] == b"aaaBBBaaaa"
        md = store.metadata_of("r")
        assert (md["mode"], md["uid"], md["gid"]) == (str(stat.S_IFREG | 0o600), "5", "6")
        assert int(md["mtime"]) > 1000  # written now

    run_rig(body, tmp_path, store, write_back_delay=60)


# ------------------------------------------------------------ what is uploaded


def test_sync_uploads_identical_bytes_keys_and_s3fs_metadata(tmp_path):
    payload = os.urandom(300_000)

    async def body(rig):
        await rig.mkdir("a")
        await rig.mkdir("a/b")
        p, name = await rig.parent_and_name("a/b/c.bin")
        fh, _ = await rig.fs.create(p, name, stat.S_IFREG | 0o640, os.O_WRONLY | os.O_CREAT, 1234, 5678)
        for off in range(0, len(payload), 128 * 1024):
            await rig.fs.write(fh, off, payload[off:off + 128 * 1024])
        await rig.fs.release(fh)
        attr = await rig.stat("a/b/c.bin")
        res = await rig.sync()
        assert res.ok, res
        objs = rig.store.objects()
        assert set(objs) == {"a/", "a/b/", "a/b/c.bin"}
        assert objs["a/b/c.bin"] == payload
        assert objs["a/"] == b"" and objs["a/b/"] == b""
        md = rig.store.metadata_of("a/b/c.bin")
        assert md["mode"] == str(stat.S_IFREG | 0o640)
        assert md["uid"] == "1234"
        assert md["gid"] == "5678"
        assert md["mtime"] == str(attr.mtime_ns // 10**9)
        dmd = rig.store.metadata_of("a/")
        assert stat.S_ISDIR(int(dmd["mode"]))
        assert stat.S_IMODE(int(dmd["mode"])) == 0o755

    run_rig(body, tmp_path, write_back_delay=60)


def test_keys_carry_the_mount_prefix(tmp_path):
    store = MemoryStore("b")
    store.put("other/x", b"not ours")

    async def body(rig):
        assert await rig.listdir("") == []
        await rig.mkdir("d")
        await rig.write_file("d/f", b"data")
        assert (await rig.sync()).ok
        objs = store.objects()
        assert objs["pre/d/f"] == b"data"
        assert objs["pre/d/"] == b""
        assert objs["other/x"] == b"not ours"
        assert set(objs) == {"pre/d/f", "pre/d/", "other/x"}

    run_rig(body, tmp_path, store, prefix="pre", write_back_delay=60)


def test_mkdir_persists_a_marker(tmp_path):
    async def body(rig):
        await rig.mkdir("empty")
        assert (await rig.sync()).ok
        assert rig.store.objects() == {"empty/": b""}
        # a fresh mount (fresh cache) still shows the empty directory
        await rig.restart(cache_dir=str(tmp_path / "cache2"))
        assert await rig.listdir("") == ["empty"]
        assert stat.S_ISDIR((await rig.stat("empty")).mode)
        assert await rig.listdir("empty") == []

    run_rig(body, tmp_path, write_back_delay=60)


# ------------------------------------------------------------ when it is uploaded


def test_swap_file_removed_before_upload_never_reaches_bucket(tmp_path):
    async def body(rig):
        await rig.write_file("keep", b"k")
        await rig.write_file(".swp", b"swap contents")
        await rig.unlink(".swp")
        assert not await rig.exists(".swp")
        res = await rig.sync()
        assert res.ok, res
        assert ".swp" not in rig.store.objects()
        assert rig.store.objects() == {"keep": b"k"}
        assert rig.store.stats.requests.get("put") == 1  # only "keep"
        assert rig.store.stats.requests.get("delete", 0) == 0

    run_rig(body, tmp_path, write_back_delay=60)


def test_swap_file_within_real_delay_window(tmp_path):
    async def body(rig):
        await rig.write_file(".f.swp", b"x" * 1000)
        await rig.unlink(".f.swp")
        await trio.sleep(1.2)  # simulated: well past the 0.3 s delay
        assert await rig.settled()  # what the reconciler started at 0.3 (if anything) has finished
        assert rig.store.objects() == {}
        assert rig.store.stats.requests.get("put", 0) == 0

    run_rig(body, tmp_path, write_back_delay=0.3, mock_clock=True)


def test_upload_waits_for_write_back_delay(tmp_path):
    async def body(rig):
        t0 = trio.current_time()
        await rig.write_file("late", b"content")
        assert "late" not in rig.store.objects()  # close returned before any upload
        await trio.sleep(0.1)
        assert "late" not in rig.store.objects()
        assert await wait_until(lambda: "late" in rig.store.objects(), timeout=30)
        assert trio.current_time() - t0 >= 0.5  # simulated time: not before the delay
        assert rig.store.objects()["late"] == b"content"

    run_rig(body, tmp_path, write_back_delay=0.5, mock_clock=True)


def test_no_upload_while_open_for_writing(tmp_path):
    async def body(rig):
        await rig.write_file("f", b"")
        fh = await rig.open("f", os.O_WRONLY)
        await rig.fs.write(fh, 0, b"part1")
        await trio.sleep(0.6)  # simulated: beyond the delay, but the file is still open
        assert await rig.settled()  # an upload started at 0.2 (the defect) would have finished
        assert "f" not in rig.store.objects()
        await rig.fs.write(fh, 5, b"part2")
        await rig.fs.release(fh)
        assert await wait_until(lambda: rig.store.objects().get("f") == b"part1part2", timeout=30)
        assert rig.store.stats.requests.get("put") == 1  # one upload of the final state

    run_rig(body, tmp_path, write_back_delay=0.2, mock_clock=True)


def test_file_changed_during_upload_is_uploaded_again(tmp_path):
    mem = MemoryStore("b")
    faulty = FaultyStore(mem)
    gate = faulty.hold("put", key="f", timeout=20)

    async def body(rig):
        await rig.write_file("f", b"version-1")
        # the upload of version 1 starts after the 0 s delay and blocks inside PUT
        assert await trio.to_thread.run_sync(gate.wait_held, 1, 10.0)
        await rig.write_at("f", 9, b"+more")
        assert await rig.read_file("f") == b"version-1+more"
        gate.release()
        res = await rig.sync()
        assert res.ok, res
        assert mem.objects()["f"] == b"version-1+more"
        puts = [c for c in faulty.calls_to("put") if c.key == "f"]
        assert [c.outcome for c in puts] == ["ok", "ok"]
        e = rig.stack.journal.get("f")
        assert not e.pending and e.base_etag == mem.etag_of("f")

    run_rig(body, tmp_path, faulty, write_back_delay=0)
