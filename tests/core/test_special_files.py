"""FIFOs, sockets and device nodes (issue: special files): stored s3fs style as empty
objects whose ``x-amz-meta-mode`` carries the file type, with ``x-amz-meta-rdev`` for
devices; chmod/chown/utimens/rename/unlink work on them; they round-trip through a
fresh cache."""

import os
import stat

import pytest

from mountsync.backend.memory import MemoryStore
from mountsync.core.filesystem import SetAttr
from tests.support.rig import run_rig

KINDS = {"fifo": stat.S_IFIFO, "sock": stat.S_IFSOCK, "chr": stat.S_IFCHR, "blk": stat.S_IFBLK}
RDEV = {"chr": os.makedev(1, 3), "blk": os.makedev(7, 0)}


async def _mknod(rig, path: str, kind: int, perm: int, rdev: int = 0, uid: int = 0, gid: int = 0):
    p, name = await rig.parent_and_name(path)
    return await rig.fs.mknod(p, name, kind | perm, rdev, uid, gid)


def test_special_files_are_created_shown_and_uploaded_s3fs_style(tmp_path):
    store = MemoryStore("b")

    async def body(rig):
        for i, (name, kind) in enumerate(KINDS.items()):
            a = await _mknod(rig, name, kind, 0o640 + i, RDEV.get(name, 0), uid=1000 + i, gid=2000 + i)
            assert stat.S_IFMT(a.mode) == kind and stat.S_IMODE(a.mode) == 0o640 + i
            assert a.size == 0 and a.rdev == RDEV.get(name, 0)
        assert sorted(await rig.listdir("")) == sorted(KINDS)
        assert (await rig.sync()).ok
        assert store.objects() == dict.fromkeys(KINDS, b"")
        for i, (name, kind) in enumerate(KINDS.items()):
            meta = store.metadata_of(name)
            assert int(meta["mode"]) == kind | (0o640 + i), (name, meta)
            assert (meta["uid"], meta["gid"]) == (str(1000 + i), str(2000 + i))
            assert meta.get("rdev") == (str(RDEV[name]) if name in RDEV else None), (name, meta)

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_special_files_round_trip_through_a_fresh_cache(tmp_path):
    store = MemoryStore("b")
    seen = {}

    async def first(rig):
        await rig.mkdir("d")
        for name, kind in KINDS.items():
            await _mknod(rig, f"d/{name}", kind, 0o604, RDEV.get(name, 0), uid=7, gid=8)
            await rig.fs.setattr(await rig.ino(f"d/{name}"), SetAttr(mtime_ns=1_600_000_000_123_456_789))
        for name in KINDS:
            seen[name] = await rig.stat(f"d/{name}")
        assert (await rig.sync()).ok

    run_rig(first, tmp_path / "one", store, write_back_delay=60)

    async def fresh(rig):
        assert sorted(await rig.listdir("d")) == sorted(KINDS)
        for name, kind in KINDS.items():
            a = await rig.stat(f"d/{name}")
            b = seen[name]
            assert (a.mode, a.uid, a.gid, a.rdev, a.mtime_ns, a.size) == \
                (b.mode, b.uid, b.gid, b.rdev, b.mtime_ns, b.size), name
            assert stat.S_IFMT(a.mode) == kind

    run_rig(fresh, tmp_path / "two", store, write_back_delay=60)
    run_rig(fresh, tmp_path / "three", store, write_back_delay=60, metadata_ttl=3600)


def test_chmod_chown_utimens_rename_unlink_of_special_files(tmp_path):
    store = MemoryStore("b")

    async def body(rig):
        await _mknod(rig, "p", stat.S_IFIFO, 0o600)
        await _mknod(rig, "c", stat.S_IFCHR, 0o600, os.makedev(4, 64))
        assert (await rig.sync()).ok
        await rig.chmod("p", 0o644)
        await rig.fs.setattr(await rig.ino("p"), SetAttr(uid=12, gid=34, mtime_ns=1_500_000_000_000_000_000))
        assert (await rig.sync()).ok
        meta = store.metadata_of("p")
        assert int(meta["mode"]) == stat.S_IFIFO | 0o644
        assert (meta["uid"], meta["gid"], meta["mtime"]) == ("12", "34", "1500000000")
        await rig.rename("p", "p2")  # our own creation: no --allow-delete needed
        await rig.rename("c", "c2")
        a = await rig.stat("c2")
        assert stat.S_ISCHR(a.mode) and a.rdev == os.makedev(4, 64)
        assert (await rig.sync()).ok
        assert set(store.objects()) == {"p2", "c2"}
        assert int(store.metadata_of("c2")["rdev"]) == os.makedev(4, 64)
        await rig.unlink("p2")
        await rig.unlink("c2")
        assert (await rig.sync()).ok
        assert store.objects() == {}

    run_rig(body, tmp_path, store, write_back_delay=60)


@pytest.mark.parametrize("size", [0, 5])
def test_objects_written_by_s3fs_are_special_only_when_empty(tmp_path, size):
    store = MemoryStore("b")
    store.put("fifo", b"x" * size, {"mode": str(stat.S_IFIFO | 0o644), "uid": "3", "gid": "4", "mtime": "1000"})
    store.put("dev", b"x" * size, {"mode": str(stat.S_IFBLK | 0o660), "rdev": str(os.makedev(8, 1))})

    async def body(rig):
        fifo, dev = await rig.stat("fifo"), await rig.stat("dev")
        if size == 0:
            assert stat.S_ISFIFO(fifo.mode) and stat.S_IMODE(fifo.mode) == 0o644
            assert (fifo.uid, fifo.gid, fifo.mtime_ns) == (3, 4, 1000 * 10**9)
            assert stat.S_ISBLK(dev.mode) and dev.rdev == os.makedev(8, 1)
        else:  # a body: whatever the metadata says, it is a regular file with data
            assert stat.S_ISREG(fifo.mode) and fifo.size == size and fifo.rdev == 0
            assert stat.S_ISREG(dev.mode) and dev.rdev == 0
            assert await rig.read_file("fifo") == b"x" * size

    run_rig(body, tmp_path, store, write_back_delay=60)
