"""A directory listing that is answered before an upload and merged after it.

``Listings._list`` awaits the bucket; meanwhile the reconciler may finish an upload of
a name in that directory. The listing then shows the version before the upload, and
must not be taken for another writer's change (which would reset the entry to the old
ETag: a spurious conflict on the next rename over it, or the new bytes read as old), nor
hide a file created and uploaded while the listing was under way.
"""

from __future__ import annotations

import os

import trio
import trio.testing

from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig


async def _list_around(rig, store: FaultyStore, during) -> list[str]:
    """``listdir("")`` whose LIST answer is held back (after the server answered) while
    ``during()`` runs; returns the listing."""
    gate = store.hold("list_page", when="after", first=1)  # lookups during it list freely
    names: list[str] = []

    async def do_list():
        names.extend(await rig.listdir(""))

    async with trio.open_nursery() as n:
        n.start_soon(do_list)
        assert await trio.to_thread.run_sync(gate.wait_held)
        await during()
        gate.release()
    return names


def _assert_entry_matches_bucket(rig, inner: MemoryStore, path: str) -> None:
    e = rig.stack.journal.get(path)
    assert e is not None, f"{path!r} lost its journal entry"
    assert not e.pending
    assert e.base_etag == inner.etag_of(path), f"{path!r}: entry says {e.base_etag}, bucket has {inner.etag_of(path)}"


def test_upload_of_pending_file_during_listing_is_not_undone(tmp_path):
    inner = MemoryStore("b")
    store = FaultyStore(inner)

    async def body(rig):
        await rig.write_file("b", b"old")
        await rig.write_file("c", b"c")
        assert (await rig.sync()).ok
        await rig.write_file("b", b"new")          # pending when the listing starts

        async def upload():
            assert (await rig.sync()).ok            # lands while the listing is held

        assert sorted(await _list_around(rig, store, upload)) == ["b", "c"]
        _assert_entry_matches_bucket(rig, inner, "b")
        assert await rig.read_file("b") == b"new"
        await rig.rename("c", "b")                  # over our own upload: no conflict copy
        assert rig.status()["conflicts"] == 0
        assert (await rig.sync()).ok
        assert inner.objects() == {"b": b"c"}

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=0)


def test_write_and_upload_of_clean_file_during_listing_is_not_undone(tmp_path):
    inner = MemoryStore("b")
    store = FaultyStore(inner)

    async def body(rig):
        await rig.write_file("b", b"old")
        assert (await rig.sync()).ok                # clean when the listing starts

        fh = await rig.open("b", os.O_WRONLY)      # opened before: the edit needs no lookup

        async def edit_and_upload():
            assert await rig.fs.write(fh, 0, b"new") == 3
            await rig.fs.release(fh)
            assert (await rig.sync()).ok

        assert await _list_around(rig, store, edit_and_upload) == ["b"]
        _assert_entry_matches_bucket(rig, inner, "b")
        assert await rig.read_file("b") == b"new"
        assert rig.status()["conflicts"] == 0

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=0)


def test_file_created_and_uploaded_during_listing_stays(tmp_path):
    inner = MemoryStore("b")
    store = FaultyStore(inner)

    async def body(rig):
        await rig.write_file("a", b"a")
        assert (await rig.sync()).ok

        async def create_and_upload():
            await rig.write_file("n", b"new file")
            assert (await rig.sync()).ok

        async def start_create():
            # a create in a directory being listed may wait for that listing (one listing
            # per directory at a time) or go ahead: either way it runs as far as it can
            nursery.start_soon(create_and_upload)
            await trio.testing.wait_all_tasks_blocked()

        async with trio.open_nursery() as nursery:
            await _list_around(rig, store, start_create)
        _assert_entry_matches_bucket(rig, inner, "n")
        assert sorted(await rig.listdir("")) == ["a", "n"]
        assert await rig.read_file("n") == b"new file"

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=0)


def test_write_and_upload_during_a_lookup_head_is_not_undone(tmp_path):
    """The same race for the one-name revalidation (HEAD) of a lookup after the TTL."""
    inner = MemoryStore("b")
    store = FaultyStore(inner)

    async def body(rig):
        await rig.write_file("b", b"old")
        assert (await rig.sync()).ok
        await rig.listdir("")
        gate = store.hold("head", "b", when="after", first=1)

        async def lookup():
            await rig.fs.lookup(await rig.ino(""), "b")

        async with trio.open_nursery() as n:
            n.start_soon(lookup)
            assert await trio.to_thread.run_sync(gate.wait_held)
            await rig.write_at("b", 0, b"new")
            assert (await rig.sync()).ok
            gate.release()
        _assert_entry_matches_bucket(rig, inner, "b")
        assert await rig.read_file("b") == b"new"

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=0)
