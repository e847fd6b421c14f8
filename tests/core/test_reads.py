"""SPEC §4 reads and §3 listings on the memory backend; lookup counting of open files."""

import errno
import os
import random

import pytest

from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from mountsync.errors import FsError
from tests.support.rig import run_rig

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def big_blob():
    return random.Random(7).randbytes(32 * MiB)


def test_small_read_of_large_object_fetches_little(tmp_path, big_blob):
    store = MemoryStore("b")
    store.put("big.bin", big_blob)

    async def body(rig):
        assert (await rig.stat("big.bin")).size == 32 * MiB
        down0 = store.stats.bytes_down
        fh = await rig.open("big.bin")
        off = 20 * MiB
        got = await rig.fs.read(fh, off, 4096)
        await rig.fs.release(fh)
        assert got == big_blob[off:off + 4096]
        moved = store.stats.bytes_down - down0
        assert 4096 <= moved < 4 * MiB
        # read again: served from the cache, no new download
        fh = await rig.open("big.bin")
        assert await rig.fs.read(fh, off + 100, 1000) == big_blob[off + 100:off + 1100]
        await rig.fs.release(fh)
        assert store.stats.bytes_down - down0 == moved

    run_rig(body, tmp_path, store, metadata_ttl=60)


def test_sequential_read_of_whole_object(tmp_path, big_blob):
    store = MemoryStore("b")
    store.put("big.bin", big_blob)

    async def body(rig):
        fh = await rig.open("big.bin")
        chunks = []
        off = 0
        while True:
            c = await rig.fs.read(fh, off, 128 * 1024)
            if not c:
                break
            chunks.append(c)
            off += len(c)
        await rig.fs.release(fh)
        assert off == len(big_blob)
        assert b"".join(chunks) == big_blob
        # each byte fetched once, in far fewer requests than reads (read-ahead)
        assert store.stats.bytes_down == len(big_blob)
        assert store.stats.requests["get"] < 64

    run_rig(body, tmp_path, store, metadata_ttl=60)


def test_scattered_reads_then_full_read(tmp_path):
    blob = random.Random(3).randbytes(5 * MiB + 123)
    store = MemoryStore("b")
    store.put("f", blob)

    async def body(rig):
        fh = await rig.open("f")
        for off in (4 * MiB + 5, 17, 2 * MiB - 3, 5 * MiB):
            assert await rig.fs.read(fh, off, 1000) == blob[off:off + 1000]
        assert await rig.fs.read(fh, 0, len(blob) + 10) == blob
        assert await rig.fs.read(fh, len(blob), 10) == b""
        await rig.fs.release(fh)
        assert store.stats.bytes_down == len(blob)  # nothing fetched twice

    run_rig(body, tmp_path, store, metadata_ttl=60)


def test_remote_change_seen_on_open_after_ttl(tmp_path):
    store = MemoryStore("b")
    store.put("f", b"one")

    async def body(rig):
        assert await rig.read_file("f") == b"one"
        store.put("f", b"two, longer")
        assert await rig.read_file("f") == b"two, longer"

    run_rig(body, tmp_path, store, metadata_ttl=0)


# ------------------------------------------------------------ readdir


def test_readdir_of_3000_keys_complete_and_positions_stable(tmp_path):
    store = MemoryStore("b")
    names = sorted(f"file-{i:05d}" for i in range(2990)) + [f"sub{i}" for i in range(10)]
    for n in names[:2990]:
        store.put("big/" + n, b"x")
    for n in names[2990:]:
        store.put(f"big/{n}/inner", b"y")
    names.sort()

    async def body(rig):
        assert await rig.listdir("big") == names
        assert store.stats.requests["list"] >= 3  # paginated (1000 per page)

        ino = await rig.ino("big")
        dh = await rig.fs.opendir(ino)
        first = list(await rig.fs.readdir(dh, 0))
        assert [n for n, _a, _p in first] == names
        positions = [p for _n, _a, p in first]
        assert len(set(positions)) == len(positions)
        # the kernel stops after a buffer-full and continues from the last position it got
        mid = 1500
        cont_from = first[mid - 1][2]
        # the directory changes in between: positions of the open handle must not shift
        await rig.write_file("big/aaaa-new", b"")
        store.put("big/000-remote-new", b"")
        rest = list(await rig.fs.readdir(dh, cont_from))
        assert [n for n, _a, _p in rest] == names[mid:]
        got = [n for n, _a, _p in first[:mid]] + [n for n, _a, _p in rest]
        assert got == names  # complete, no duplicates, nothing skipped
        rig.fs.releasedir(dh)
        # a new handle sees the new entries
        assert set(await rig.listdir("big")) == set(names) | {"aaaa-new", "000-remote-new"}

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_listing_hides_invalid_keys_and_clash(tmp_path):
    store = MemoryStore("b")
    for k in ["ok", "d/./x", "d/../y", "a//b", "x" * 256, "clash", "clash/inner", "d/fine"]:
        store.put(k, b"v")

    async def body(rig):
        assert sorted(await rig.listdir("")) == ["a", "clash", "d", "ok"]
        assert await rig.listdir("d") == ["fine"]
        assert await rig.listdir("a") == []
        assert await rig.listdir("clash") == ["inner"]  # the directory wins
        assert await rig.read_file("clash/inner") == b"v"
        with pytest.raises(FsError) as ei:
            await rig.fs.lookup(1, "x" * 256)
        assert ei.value.errno == errno.ENAMETOOLONG

    run_rig(body, tmp_path, store)


# ------------------------------------------------------------ lookup counting


def test_local_file_unlinked_while_open_stays_readable(tmp_path):
    async def body(rig):
        p, name = await rig.parent_and_name("f")
        fh_w, attr = await rig.fs.create(p, name, 0o100644, os.O_WRONLY | os.O_CREAT, 0, 0)  # +1 lookup
        ino = attr.ino
        await rig.fs.write(fh_w, 0, b"still here")
        await rig.fs.release(fh_w)
        await rig.fs.lookup(1, "f")  # +1 lookup
        fh = await rig.open("f")
        await rig.unlink("f")
        assert not await rig.exists("f")
        assert "f" not in await rig.listdir("")
        assert await rig.fs.read(fh, 0, 100) == b"still here"
        assert (await rig.fs.getattr(ino)).size == 10
        await rig.fs.release(fh)
        assert (await rig.fs.getattr(ino)).size == 10  # still known to the kernel
        rig.fs.forget(ino, 1)
        assert (await rig.fs.getattr(ino)).size == 10  # one reference left
        rig.fs.forget(ino, 1)
        with pytest.raises(FsError) as ei:
            await rig.fs.getattr(ino)
        assert ei.value.errno == errno.ENOENT
        assert (await rig.sync()).ok
        assert rig.store.objects() == {}
        assert rig.stack.journal.under("") == []

    run_rig(body, tmp_path, write_back_delay=60)


def test_uploaded_file_unlinked_while_open_with_allow_delete(tmp_path):
    async def body(rig):
        await rig.write_file("f", b"uploaded bytes")
        assert (await rig.sync()).ok
        fh = await rig.open("f")
        await rig.unlink("f")
        assert await rig.listdir("") == []  # hidden at once
        assert (await rig.sync()).ok
        assert rig.store.objects() == {"f": b"uploaded bytes"}  # the delete waits for the last close
        assert await rig.fs.read(fh, 0, 100) == b"uploaded bytes"
        await rig.fs.release(fh)
        assert (await rig.sync()).ok
        assert rig.store.objects() == {}  # gone from the bucket
        assert await rig.listdir("") == []

    run_rig(body, tmp_path, write_back_delay=60, allow_delete=True)


def test_uncached_remote_file_unlinked_while_open_stays_readable(tmp_path):
    store = MemoryStore("b")
    store.put("r", b"never read before")

    async def body(rig):
        fh = await rig.open("r")
        await rig.unlink("r")
        assert (await rig.sync()).ok  # the remote delete waits for the last close
        assert await rig.fs.read(fh, 0, 100) == b"never read before"
        await rig.fs.release(fh)
        assert (await rig.sync()).ok
        assert store.objects() == {}

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)


def test_read_through_handle_of_unlinked_file_does_not_resurrect_it(tmp_path):
    mem = MemoryStore("b")
    mem.put("r", b"never read before")
    faulty = FaultyStore(mem)
    gate = faulty.hold("delete", timeout=20)  # the remote delete waits until the read is done

    async def body(rig):
        fh = await rig.open("r")
        await rig.unlink("r")
        assert await rig.listdir("") == []
        assert await rig.fs.read(fh, 0, 100) == b"never read before"
        await rig.fs.release(fh)
        gate.release()
        assert (await rig.sync()).ok
        assert mem.objects() == {}
        assert rig.stack.journal.get("r") is None
        assert await rig.listdir("") == []
        await rig.restart()
        assert await rig.listdir("") == []

    run_rig(body, tmp_path, faulty, write_back_delay=60, allow_delete=True)
