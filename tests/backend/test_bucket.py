"""The Bucket facade: keys under the prefix, pagination, conditional helpers."""

import stat

import pytest
import trio

from mountsync.backend.base import PreconditionFailedError
from mountsync.backend.bucket import Bucket
from mountsync.backend.memory import MemoryStore


def test_keys_carry_the_prefix():
    b = Bucket(MemoryStore(), prefix="team/x")
    assert b.prefix == "team/x/"
    assert b.key("d/a.txt") == "team/x/d/a.txt"
    assert b.dir_key("d") == "team/x/d/"
    assert b.dir_key("") == "team/x/"
    assert b.object_key("d", stat.S_IFDIR) == "team/x/d/"
    assert b.object_key("d/l", stat.S_IFLNK) == "team/x/d/l"
    assert Bucket(MemoryStore()).key("a") == "a"


def test_list_all_follows_every_page():
    store = MemoryStore()
    names = [f"p/k{i:05d}" for i in range(2300)] + ["p/sub/x", "p/sub/y/z", "q"]
    for k in names:
        store.put(k, b"")
    bucket = Bucket(store, prefix="p")

    async def main():
        level = await bucket.list_all(bucket.dir_key(""))
        assert [o.key for o in level.objects] == names[:2300]
        assert level.prefixes == ["p/sub/"]
        every = await bucket.list_all(bucket.dir_key(""), recursive=True)
        assert [o.key for o in every.objects] == names[:-1]
        assert every.prefixes == []

    store.stats.reset()
    trio.run(main)
    assert store.stats.snapshot()["requests"]["list"] == 6  # 3 pages each way


def test_conditional_helpers_fall_back_to_head():
    store = MemoryStore()
    etag = store.put("a", b"one").etag
    bucket = Bucket(store)
    bucket.caps.conditional_copies = bucket.caps.conditional_deletes = False

    async def main():
        with pytest.raises(PreconditionFailedError):
            await bucket.copy_if_match("a", "b", "0" * 32)
        await bucket.copy_if_match("a", "b", etag)
        with pytest.raises(PreconditionFailedError):
            await bucket.delete_if_match("a", "0" * 32)
        await bucket.delete_if_match("a", etag)
        assert await bucket.head_or_none("a") is None

    trio.run(main)
    assert set(store.objects()) == {"b"}
