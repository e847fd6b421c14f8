"""The daemon's side of ``mountsync versions`` / ``restore`` (mountsync.versions) on the
memory store: what it answers for each version, and what it leaves in the cache dir."""

from __future__ import annotations

import os
from pathlib import Path

import trio

from mountsync import versions
from mountsync.backend.base import TransientError
from mountsync.backend.bucket import Bucket
from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore


def test_inside_path_keeps_to_the_mount():
    assert versions.inside_path("/a/b.txt") == "a/b.txt"
    assert versions.inside_path("a/b.txt/") == "a/b.txt"
    for bad in ("", "/", ".", "..", "a/../../etc/passwd", "a//b", None, "a/./b"):
        assert versions.inside_path(bad) is None, bad


def _bucket_with_history(tmp_path):
    store = FaultyStore(MemoryStore("b", versioned=True))
    store.put("pre/f.txt", b"v1")
    store.put("pre/f.txt", b"v2 longer")
    store.delete("pre/f.txt")
    return store, Bucket(store, prefix="pre/")


def test_list_and_fetch_each_version(tmp_path):
    store, bucket = _bucket_with_history(tmp_path)

    async def main():
        listed = await versions.list_versions(bucket, "f.txt")
        assert listed["ok"] and listed["key"] == "pre/f.txt" and listed["versioning"] == "Enabled"
        marker, second, first = listed["versions"]
        assert marker["deleted"] and not second["deleted"] and first["size"] == 2

        got = await versions.fetch_version(bucket, "f.txt", first["version_id"], str(tmp_path))
        assert got["ok"] and got["size"] == 2
        assert Path(got["file"]).read_bytes() == b"v1"
        assert os.stat(got["file"]).st_mode & 0o777 == 0o600
        assert os.path.dirname(got["file"]) == str(tmp_path / versions.RESTORE_DIR)

        refused = await versions.fetch_version(bucket, "f.txt", marker["version_id"], str(tmp_path))
        assert not refused["ok"] and "delete marker" in refused["error"]
        unknown = await versions.fetch_version(bucket, "f.txt", "nope", str(tmp_path))
        assert not unknown["ok"] and "no version 'nope'" in unknown["error"]

        store.fail_next("get", TransientError("connection reset"))
        failed = await versions.fetch_version(bucket, "f.txt", second["version_id"], str(tmp_path))
        assert not failed["ok"] and "connection reset" in failed["error"]
        store.set_down(True)
        down = await versions.list_versions(bucket, "f.txt")
        assert not down["ok"] and "cannot list the versions of f.txt" in down["error"]

    trio.run(main)
    left = sorted(os.listdir(tmp_path / versions.RESTORE_DIR))
    assert len(left) == 1, left  # the one fetched on purpose; the failed fetch removed its file
    versions.clear_leftovers(str(tmp_path))
    assert not (tmp_path / versions.RESTORE_DIR).exists()
