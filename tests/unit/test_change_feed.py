"""Reading S3 event notifications (mountsync.change_feed) and mapping keys to paths."""

from __future__ import annotations

import json

import pytest

from mountsync.change_feed import ChangeEvent, Seen, parse_message, queue_url
from mountsync.keys import path_of_key


def _record(name: str, key: str, **obj) -> dict:
    return {"eventName": name, "s3": {"object": {"key": key, **obj}}}


def test_created_and_removed_records():
    body = json.dumps({"Records": [
        _record("ObjectCreated:Put", "a/b+c%2Bd.txt", size=5, eTag="abc", sequencer="0A"),
        _record("ObjectRemoved:Delete", "gone", sequencer="0B"),
        _record("ObjectRestore:Completed", "ignored"),
    ]})
    assert parse_message(body) == [
        ChangeEvent("a/b c+d.txt", removed=False, etag="abc", size=5, sequencer="0A"),
        ChangeEvent("gone", removed=True, etag="", size=None, sequencer="0B"),
    ]


def test_sns_envelope_and_what_is_not_an_event():
    inner = json.dumps({"Records": [_record("ObjectCreated:CompleteMultipartUpload", "x", eTag='"e-2"')]})
    assert parse_message(json.dumps({"Type": "Notification", "Message": inner})) == [
        ChangeEvent("x", removed=False, etag="e-2")]
    assert parse_message(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})) == []
    assert parse_message("not json") == []
    assert parse_message(json.dumps([1, 2])) == []
    assert parse_message(json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}, "junk"]})) == []


def test_duplicates_are_dropped_and_events_without_a_sequencer_never():
    seen = Seen(limit=2)
    a = ChangeEvent("k", False, sequencer="01")
    assert seen.first_time(a) and not seen.first_time(a)
    assert seen.first_time(ChangeEvent("k", False, sequencer="02"))
    assert seen.first_time(ChangeEvent("k", False, sequencer="03"))  # "01" forgotten now (limit 2)
    assert seen.first_time(a)
    plain = ChangeEvent("k", False)
    assert seen.first_time(plain) and seen.first_time(plain)


def test_queue_urls():
    assert queue_url("sqs://sqs.us-east-1.amazonaws.com/1/q", None) == "https://sqs.us-east-1.amazonaws.com/1/q"
    assert queue_url("sqs://127.0.0.1:5000/1/q", "http://127.0.0.1:5000") == "http://127.0.0.1:5000/1/q"
    assert queue_url("https://h/1/q", None) == "https://h/1/q"
    with pytest.raises(ValueError):
        queue_url("sqs://h", None)


@pytest.mark.parametrize("prefix,key,path", [
    ("", "a/b.txt", "a/b.txt"), ("", "a/b/", "a/b"), ("p/", "p/x", "x"), ("p/", "q/x", None),
    ("p/", "p/", None), ("", "a//b", None), ("", "", None),
])
def test_path_of_key(prefix, key, path):
    assert path_of_key(prefix, key) == path
