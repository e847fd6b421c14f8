"""Attributes of files and directories survive a mount with a fresh cache dir (memory backend)."""

import stat

from mountsync.backend.memory import MemoryStore
from mountsync.core.filesystem import SetAttr
from tests.support.rig import run_rig


def test_dir_and_file_attributes_from_metadata_with_fresh_cache(tmp_path):
    store = MemoryStore("b")
    mtime = 1_000_000_000_123_456_789

    async def write(rig):
        await rig.mkdir("d")
        await rig.chmod("d", 0o700)
        await rig.write_file("d/f", b"x")
        await rig.fs.setattr(await rig.ino("d/f"), SetAttr(mode=0o600, mtime_ns=mtime))
        assert (await rig.sync()).ok

    run_rig(write, tmp_path / "one", store)
    assert store.metadata_of("d/")["mode"] == str(stat.S_IFDIR | 0o700)

    async def read(rig):
        d = await rig.fs.lookup(1, "d")
        assert stat.S_IMODE(d.mode) == 0o700 and stat.S_ISDIR(d.mode)
        f = await rig.fs.lookup(d.ino, "f")
        assert stat.S_IMODE(f.mode) == 0o600
        assert f.mtime_ns == mtime

    run_rig(read, tmp_path / "two", store)  # a fresh cache dir
