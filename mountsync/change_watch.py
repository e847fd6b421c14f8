"""The task that applies a change feed to a mount (``--notify``; docs/MULTI-MOUNT.md).

``ChangeWatcher.run`` long-polls the feed in a worker thread, turns each message into
``RemoteChanged`` events for the core (which then asks the bucket again at the next
access: nothing an event says is installed), and acknowledges the messages once applied.
When the feed fails (the queue or the network away), it retries with backoff; when it
answers again, events may have been lost meanwhile, so everything the mount knows is
asked for again (``on_gap``). A mount that was not running needs no such step: it starts
with nothing cached but what the journal holds, which the bucket's conditions protect.

Runs on the trio thread; the feed's calls run in worker threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import trio

from .backend.base import StoreError
from .change_feed import ChangeFeed, Seen, parse_message
from .events import EventBus, RemoteChanged
from .keys import path_of_key
from .retry import backoff_delay

log = logging.getLogger("mountsync.notify")
POLL_SECONDS = 20  # SQS's longest wait


class ChangeWatcher:
    def __init__(self, feed: ChangeFeed, prefix: str, events: EventBus, on_gap: Callable[[], None], *,
                 wait_seconds: int = POLL_SECONDS) -> None:
        self.feed = feed
        self.prefix = prefix
        self.events = events
        self.on_gap = on_gap
        self.wait_seconds = wait_seconds
        self.seen = Seen()
        self.applied = 0  # events that reached the core (status)
        self.polls = 0  # receive calls made (status; an idle mount makes only these)
        self.failing_since: float | None = None

    def apply(self, bodies: list[str]) -> int:
        """Publish the changes of these message bodies; returns how many were applied."""
        n = 0
        for body in bodies:
            for ev in parse_message(body):
                path = path_of_key(self.prefix, ev.key)
                if path is None or not self.seen.first_time(ev):
                    continue
                self.events.publish(RemoteChanged(path, ev.etag, ev.removed))
                n += 1
        self.applied += n
        return n

    async def run(self) -> None:
        failures = 0
        while True:
            self.polls += 1
            try:
                messages = await trio.to_thread.run_sync(self.feed.receive, self.wait_seconds,
                                                         abandon_on_cancel=True)
            except StoreError as exc:
                failures += 1
                if self.failing_since is None:
                    self.failing_since = time.time()
                    log.warning("change notifications from %s stopped (%s): other writers' changes show "
                                "after --metadata-ttl until they come back", self.feed.describe(), exc)
                await trio.sleep(backoff_delay(failures, ceiling=60.0))
                continue
            if self.failing_since is not None:
                log.info("change notifications are back after %.0f s: asking the bucket again for everything "
                         "this mount knows", time.time() - self.failing_since)
                self.failing_since, failures = None, 0
                self.on_gap()
            if not messages:
                continue
            self.apply([m.body for m in messages])
            try:
                await trio.to_thread.run_sync(self.feed.acknowledge, [m.handle for m in messages],
                                              abandon_on_cancel=True)
            except StoreError as exc:  # they come again: applying twice only costs a request
                log.info("could not acknowledge %d notification(s): %s", len(messages), exc)
