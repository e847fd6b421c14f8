"""--negative-metadata-ttl: how long "no such name" is trusted, apart from --metadata-ttl
(issue: a name created in the bucket by another tool stayed ENOENT for the TTL)."""

from __future__ import annotations

import errno

import pytest

from mountsync.backend.memory import MemoryStore
from mountsync.core.filesystem import ROOT_INO
from mountsync.core.nodes import NoEntry
from tests.support.rig import run_rig


async def _lookup_errno(rig, name: str) -> int | None:
    try:
        await rig.fs.lookup(ROOT_INO, name)
    except NoEntry as exc:
        assert exc.errno == errno.ENOENT
        return exc.errno
    return None


def test_negative_ttl_zero_sees_an_external_creation_at_once(tmp_path):
    store = MemoryStore("b")

    async def body(rig):
        assert await rig.listdir("") == []
        assert await _lookup_errno(rig, "new") == errno.ENOENT
        store.put("new", b"N")
        store.put("newdir/x", b"X")
        assert await _lookup_errno(rig, "new") is None  # the listing is fresh, yet asked
        assert await _lookup_errno(rig, "newdir") is None
        assert await rig.read_file("new") == b"N"

    run_rig(body, tmp_path, store, metadata_ttl=60, negative_metadata_ttl=0)


@pytest.mark.parametrize("negative", [60, None], ids=["negative-60", "default-follows-metadata-ttl"])
def test_missing_names_are_trusted_for_the_negative_ttl(tmp_path, negative):
    store = MemoryStore("b")

    async def body(rig):
        assert await rig.listdir("") == []
        with pytest.raises(NoEntry) as ei:
            await rig.fs.lookup(ROOT_INO, "new")
        assert 0 < ei.value.ttl <= 60  # the kernel may cache the answer no longer
        heads = store.stats.requests.get("head", 0)
        store.put("new", b"N")
        assert await _lookup_errno(rig, "new") == errno.ENOENT  # trusted: no request
        assert store.stats.requests.get("head", 0) == heads

    run_rig(body, tmp_path, store, metadata_ttl=60, negative_metadata_ttl=negative)


def test_a_missing_name_asked_about_is_remembered(tmp_path):
    """TTL 5 s for negatives, listing older than that: the first lookup of a missing name
    asks the bucket, the next ones within the TTL do not (git, compilers, shells)."""
    store = MemoryStore("b")

    async def body(rig):
        assert await rig.listdir("") == []
        root = rig.fs.node(ROOT_INO)
        root.listed_at -= 10  # the listing is older than both TTLs
        before = store.stats.requests.get("head", 0)
        for _ in range(5):
            assert await _lookup_errno(rig, "missing") == errno.ENOENT
        assert store.stats.requests.get("head", 0) == before + 1

    run_rig(body, tmp_path, store, metadata_ttl=5, negative_metadata_ttl=5)
