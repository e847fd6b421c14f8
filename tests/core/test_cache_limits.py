"""Cache size limit (LRU eviction of clean data) and very large directories, on the memory backend."""

import os

from mountsync.backend.memory import MemoryStore
from mountsync.cache.eviction import evict
from tests.support.rig import run_rig


def test_eviction_drops_clean_lru_data_and_refetches_it(tmp_path):
    store = MemoryStore("b")
    for i in range(4):
        store.put(f"f{i}", bytes([65 + i]) * (256 * 1024))

    async def body(rig):
        for i in range(4):
            assert await rig.read_file(f"f{i}") == bytes([65 + i]) * (256 * 1024)
        await rig.write_file("dirty", b"d" * (256 * 1024))  # pending: never evicted
        stack = rig.stack
        usage = stack.data.disk_usage()
        assert usage >= 5 * 256 * 1024
        freed = evict(stack.items, usage, limit=2 * 256 * 1024 + 8192)
        assert freed >= 2 * 256 * 1024
        # the least recently used (f0, f1) went first; the dirty file stayed
        j = stack.journal
        assert not os.path.exists(stack.data.path_for(j.get("f0").id))
        assert not os.path.exists(stack.data.path_for(j.get("f1").id))
        assert os.path.exists(stack.data.path_for(j.get("dirty").id))
        before = store.stats.bytes_down
        assert await rig.read_file("f0") == b"A" * (256 * 1024)  # fetched again
        assert store.stats.bytes_down - before == 256 * 1024
        assert await rig.read_file("dirty") == b"d" * (256 * 1024)

    run_rig(body, tmp_path, store, write_back_delay=60)


def test_readdir_of_100k_keys_is_complete(tmp_path):
    store = MemoryStore("b")
    names = [f"k{i:06d}" for i in range(100_000)]
    for n in names:
        store.put("big/" + n, b"")

    async def body(rig):
        listed = await rig.listdir("big")
        assert listed == names

    run_rig(body, tmp_path, store)
