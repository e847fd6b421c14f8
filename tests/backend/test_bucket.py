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


class _PausingStore(MemoryStore):
    """``get_into`` hands over one piece, then waits for ``resume`` before the next."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.first_sent = threading.Event()
        self.resume = threading.Event()
        self.outcome: list[str] = []

    def get_into(self, key, start, end, if_match, sink, piece=4):
        data = self.get(key, start, end, if_match)
        sink(data[:piece], start)
        self.first_sent.set()
        self.resume.wait(10)
        try:
            sink(data[piece:], start + piece)
        except BaseException as exc:
            self.outcome.append(type(exc).__name__)
            raise
        self.outcome.append("delivered")
        return len(data)


def test_streaming_get_never_lands_after_its_caller_is_cancelled():
    """A cancelled caller's worker thread is abandoned but keeps reading: the pieces it
    sends afterwards must not reach ``land`` (the file may be closed, its descriptor reused)."""
    store = _PausingStore()
    store.put("k", b"0123456789")
    bucket = Bucket(store)
    landed: list[tuple[int, bytes]] = []

    async def main():
        with trio.move_on_after(60) as scope:
            async with trio.open_nursery() as n:
                async def get():
                    await bucket.get_into("k", 0, 10, if_match=None, land=lambda d, at: landed.append((at, d)))

                n.start_soon(get)
                await trio.to_thread.run_sync(store.first_sent.wait, 10)
                n.cancel_scope.cancel()
        assert not scope.cancelled_caught
        store.resume.set()
        while not store.outcome:  # the abandoned thread tries its next piece
            await trio.sleep(0.01)

    trio.run(main)
    assert landed == [(0, b"0123")]
    assert store.outcome == ["_Abandoned"]
