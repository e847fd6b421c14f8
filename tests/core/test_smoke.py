

from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig


def test_write_sync_read_back(tmp_path):
    store = MemoryStore("b")

    async def body(rig):
        await rig.mkdir("d")
        await rig.write_file("d/a.txt", b"hello")
        assert await rig.read_file("d/a.txt") == b"hello"
        res = await rig.sync()
        assert res.ok, res
        assert store.objects()["d/a.txt"] == b"hello"
        assert "d/" in store.objects()
        assert await rig.listdir("d") == ["a.txt"]

    run_rig(body, tmp_path, store)
