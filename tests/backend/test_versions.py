"""Conformance: the version requests (versioning, list_versions, get_version_into) on every
store, against a versioned bucket and a plain one.

Where moto differs from S3 (checked at the use site): its times have whole seconds and it
lists every delete marker after the versions, so the order of writes within one second is
lost (``_next_second`` separates them); it answers a GET of a delete marker with 404
NoSuchVersion where S3 answers 405 MethodNotAllowed."""

from __future__ import annotations

import hashlib
import time

import pytest

from mountsync.backend.base import InvalidRequestError, NotFoundError, StoreError


def _read_version(store, key: str, version_id: str) -> bytes:
    got: dict[int, bytes] = {}
    n = store.get_version_into(key, version_id, lambda data, at: got.__setitem__(at, data), piece=4)
    data = b"".join(got[at] for at in sorted(got))
    assert n == len(data)
    return data


def _next_second(kind: str) -> None:
    """On moto, let the clock pass a whole second so that the next write sorts after."""
    if kind == "s3":
        time.sleep(1.05)


def test_versioning_state_of_a_plain_bucket(store):
    assert store.versioning() == ""


def test_versioning_state_of_a_versioned_bucket(versioned_store):
    assert versioned_store.versioning() == "Enabled"


def test_every_write_and_delete_is_a_version_newest_first(versioned_store, kind):
    s = versioned_store
    s.put("f", b"one")
    s.put("f", b"second")
    _next_second(kind)
    s.delete("f")
    _next_second(kind)
    s.put("f", b"third!!")
    s.put("f-other", b"not f")  # a key that starts like it: not listed
    versions = s.list_versions("f")
    assert [v.deleted for v in versions] == [False, True, False, False]
    assert [v.latest for v in versions] == [True, False, False, False]
    assert [v.size for v in versions] == [7, 0, 6, 3]
    assert versions[0].etag == hashlib.md5(b"third!!").hexdigest()
    assert versions[3].etag == hashlib.md5(b"one").hexdigest()
    assert versions[1].etag == ""
    assert len({v.version_id for v in versions}) == 4
    assert all(v.key == "f" for v in versions)
    assert versions[0].last_modified >= versions[3].last_modified
    assert _read_version(s, "f", versions[3].version_id) == b"one"
    assert _read_version(s, "f", versions[2].version_id) == b"second"
    assert _read_version(s, "f", versions[0].version_id) == b"third!!"


def test_copies_and_multipart_uploads_make_versions(versioned_store):
    s = versioned_store
    s.put("src", b"source bytes")
    s.put("dst", b"old")
    s.copy("src", "dst")
    part = b"x" * (5 * 1024 * 1024)
    upload = s.create_multipart("dst")
    etag = s.upload_part("dst", upload, 1, part)
    s.complete_multipart("dst", upload, [(1, etag)])
    versions = s.list_versions("dst")
    assert [v.size for v in versions] == [len(part), len(b"source bytes"), 3]
    assert _read_version(s, "dst", versions[1].version_id) == b"source bytes"


def test_a_delete_marker_has_no_bytes(versioned_store, kind):
    s = versioned_store
    s.put("g", b"gone")
    s.delete("g")
    marker = s.list_versions("g")[0]
    assert marker.deleted and marker.latest
    with pytest.raises(NotFoundError if kind == "s3" else InvalidRequestError):
        _read_version(s, "g", marker.version_id)


def test_unknown_version_and_key(versioned_store):
    s = versioned_store
    s.put("h", b"here")
    assert s.list_versions("nothing-here") == []
    with pytest.raises((NotFoundError, InvalidRequestError)):
        _read_version(s, "h", "no-such-version-id")


def test_a_plain_bucket_keeps_one_null_version(store):
    store.put("p", b"first")
    store.put("p", b"second")
    versions = store.list_versions("p")
    assert [(v.version_id, v.size, v.latest, v.deleted) for v in versions] == [("null", 6, True, False)]
    assert _read_version(store, "p", "null") == b"second"
    store.delete("p")
    assert store.list_versions("p") == []


def test_version_requests_are_counted(versioned_store):
    s = versioned_store
    s.put("k", b"1234")
    vid = s.list_versions("k")[0].version_id
    s.stats.reset()
    s.versioning()
    s.list_versions("k")
    _read_version(s, "k", vid)
    snap = s.stats.snapshot()
    assert snap["requests"] == {"get_versioning": 1, "list_versions": 1, "get": 1}
    assert snap["bytes_down"] == 4


def test_missing_bucket(missing_bucket_store):
    with pytest.raises(StoreError):
        missing_bucket_store.list_versions("k")
