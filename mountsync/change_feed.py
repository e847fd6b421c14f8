"""Change notifications from the bucket (``--notify``; docs/MULTI-MOUNT.md): what a
notification says, read from the message (pure), and the feed interface.

A feed hands over messages (``FeedMessage``: an opaque handle to acknowledge it and its
body). ``parse_message`` reads an S3 event notification body — straight from S3 to SQS,
through SNS with raw delivery, or wrapped in an SNS envelope — into ``ChangeEvent``s;
``s3:TestEvent`` (sent when a configuration is saved) and anything unknown give none.

Applying an event never installs what it says: it makes the mount ask the bucket again
(a HEAD at the next access) for that name and list its directory again. So events that
arrive late or out of order cannot leave a stale view behind, and the sequencer is only
used to drop duplicates (``Seen``). The feed behind the interface is SQS today
(``backend/s3_notify.py``); Azure Event Grid and GCS Pub/Sub would be other feeds
producing the same events.
"""

from __future__ import annotations

import json
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ChangeEvent:
    key: str
    removed: bool  # ObjectRemoved:*; else ObjectCreated:* (a new or replaced object)
    etag: str = ""
    size: int | None = None
    sequencer: str = ""


@dataclass(frozen=True)
class FeedMessage:
    handle: str  # what ``ChangeFeed.acknowledge`` takes
    body: str


class ChangeFeed(Protocol):
    """Blocking; called from a worker thread."""

    def describe(self) -> str: ...

    def receive(self, wait_seconds: int) -> list[FeedMessage]:
        """The next messages, waiting up to ``wait_seconds`` for one (a long poll)."""
        ...

    def acknowledge(self, handles: list[str]) -> None:
        """Messages handled: the feed will not hand them out again."""
        ...


def parse_message(body: str) -> list[ChangeEvent]:
    """The object changes an S3 event notification message reports (possibly none)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return []
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return parse_message(doc["Message"])  # an SNS envelope (raw delivery off)
    records = doc.get("Records") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        return []  # s3:TestEvent and anything else
    events = []
    for r in records:
        name = str(r.get("eventName", "")) if isinstance(r, dict) else ""
        obj = ((r.get("s3") or {}).get("object") or {}) if isinstance(r, dict) else {}
        if not obj.get("key") or not name.startswith(("ObjectCreated:", "ObjectRemoved:")):
            continue
        size = obj.get("size")
        events.append(ChangeEvent(
            key=urllib.parse.unquote_plus(str(obj["key"])), removed=name.startswith("ObjectRemoved:"),
            etag=str(obj.get("eTag") or "").strip('"'), size=int(size) if isinstance(size, (int, str))
            and str(size).isdigit() else None, sequencer=str(obj.get("sequencer") or "")))
    return events


class Seen:
    """The (key, sequencer) pairs of recent events, to drop duplicates (SQS delivers at
    least once). Bounded: the oldest ``limit`` pairs are forgotten first. Events without a
    sequencer (moto sends none) are never dropped."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._pairs: OrderedDict[tuple[str, str], None] = OrderedDict()

    def first_time(self, event: ChangeEvent) -> bool:
        if not event.sequencer:
            return True
        pair = (event.key, event.sequencer)
        if pair in self._pairs:
            return False
        self._pairs[pair] = None
        if len(self._pairs) > self.limit:
            self._pairs.popitem(last=False)
        return True


def queue_url(spec: str, endpoint_url: str | None) -> str:
    """The SQS queue URL of ``--notify sqs://HOST/ACCOUNT/QUEUE`` (https, or http when the
    S3 endpoint is plain http: a local test server); an http(s):// URL is taken as it is."""
    if spec.startswith(("https://", "http://")):
        return spec
    if not spec.startswith("sqs://") or spec.count("/") < 4:
        raise ValueError(spec)
    scheme = "http" if (endpoint_url or "").startswith("http://") else "https"
    return f"{scheme}://{spec[len('sqs://'):]}"
