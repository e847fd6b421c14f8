"""Change notifications applied to the core (``RemoteChanged``, ``ChangeWatcher``) on the
memory backend: an announced change is seen at the next access though the TTL is long; our
own uploads and pending local edits are left alone; a feed that fails and comes back makes
the mount ask again for everything it knows."""

from __future__ import annotations

import json

import trio

from mountsync.backend.base import UnreachableError
from mountsync.backend.memory import MemoryStore
from mountsync.change_feed import FeedMessage
from mountsync.change_watch import ChangeWatcher
from mountsync.events import RemoteChanged
from tests.support.rig import run_rig, wait_until


def _created(key: str, etag: str = "") -> str:
    return json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": key, "eTag": etag}}}]})


def test_an_announced_change_is_seen_although_the_ttl_is_long(tmp_path):
    store = MemoryStore("b")
    store.put("docs/a.txt", b"first")

    async def body(rig):
        assert await rig.read_file("docs/a.txt") == b"first"
        assert await rig.listdir("docs") == ["a.txt"]
        store.put("docs/a.txt", b"second version")
        store.put("docs/new.txt", b"n")
        assert await rig.read_file("docs/a.txt") == b"first"  # the TTL (300 s) still holds
        heads = store.stats.snapshot()["requests"].get("head", 0)
        rig.stack.events.publish(RemoteChanged("docs/a.txt", store.etag_of("docs/a.txt")))
        rig.stack.events.publish(RemoteChanged("docs/new.txt", store.etag_of("docs/new.txt")))
        assert await rig.read_file("docs/a.txt") == b"second version"
        assert sorted(await rig.listdir("docs")) == ["a.txt", "new.txt"]
        assert store.stats.snapshot()["requests"].get("head", 0) > heads

        store.delete("docs/new.txt")
        rig.stack.events.publish(RemoteChanged("docs/new.txt", removed=True))
        assert sorted(await rig.listdir("docs")) == ["a.txt"]

    run_rig(body, tmp_path, store, metadata_ttl=300)


def test_own_uploads_and_pending_edits_are_left_alone(tmp_path):
    store = MemoryStore("b")

    async def body(rig):
        await rig.write_file("mine.txt", b"ours")
        assert (await rig.sync()).ok
        await rig.read_file("mine.txt")
        before = dict(store.stats.snapshot()["requests"])
        rig.stack.events.publish(RemoteChanged("mine.txt", store.etag_of("mine.txt")))  # our own upload
        assert await rig.read_file("mine.txt") == b"ours"
        assert store.stats.snapshot()["requests"] == before, "our own upload's event cost a request"

        await rig.write_file("mine.txt", b"local edit, not uploaded")  # pending (delay 60 s)
        store.put("mine.txt", b"another writer")
        rig.stack.events.publish(RemoteChanged("mine.txt", store.etag_of("mine.txt")))
        assert await rig.read_file("mine.txt") == b"local edit, not uploaded"

    run_rig(body, tmp_path, store, metadata_ttl=300, write_back_delay=60)


class ScriptedFeed:
    """A feed that fails ``down`` times, then hands out ``batches`` one per receive."""

    def __init__(self, batches: list[list[str]], down: int = 0) -> None:
        self.batches = batches
        self.down = down
        self.acked: list[str] = []
        self.received = 0

    def describe(self) -> str:
        return "scripted feed"

    def receive(self, wait_seconds: int) -> list[FeedMessage]:
        self.received += 1
        if self.down:
            self.down -= 1
            raise UnreachableError("queue away")
        if not self.batches:
            return []
        bodies = self.batches.pop(0)
        return [FeedMessage(f"h{self.received}-{i}", b) for i, b in enumerate(bodies)]

    def acknowledge(self, handles: list[str]) -> None:
        self.acked += handles


def test_the_watcher_applies_acknowledges_and_recovers_from_a_gap(tmp_path, allow_log):
    allow_log("change notifications from scripted feed stopped")
    store = MemoryStore("b")
    store.put("pre/x", b"1")

    async def body(rig):
        gaps: list[int] = []
        feed = ScriptedFeed([[_created("pre/x", "e1"), _created("elsewhere/y"), "junk"]], down=2)
        watcher = ChangeWatcher(feed, "pre/", rig.stack.events, lambda: gaps.append(1), wait_seconds=0)
        seen: list[RemoteChanged] = []
        rig.stack.events.subscribe(lambda ev: seen.append(ev) if isinstance(ev, RemoteChanged) else None)
        async with trio.open_nursery() as n:
            n.start_soon(watcher.run)
            assert await wait_until(lambda: len(feed.acked) == 3, timeout=60)
            n.cancel_scope.cancel()
        assert gaps == [1]  # the feed came back after failing: ask again for everything
        assert seen == [RemoteChanged("x", "e1", False)]  # outside the prefix and junk: nothing
        assert watcher.applied == 1 and watcher.failing_since is None and watcher.polls >= 3

    run_rig(body, tmp_path, store, metadata_ttl=300, prefix="pre/")
