"""mountsync.cache.item and cache.state: one owner per cached file, its derived state,
and the persistence of its data state across a reopen of the journal."""

from __future__ import annotations

import os
import stat

import pytest
import trio

from mountsync.cache.datafiles import DataStore
from mountsync.cache.item import Items, RemoteVersion
from mountsync.cache.journal import Entry, Journal
from mountsync.cache.state import ItemState, item_state


@pytest.fixture
def root(tmp_path):
    return str(tmp_path)


def open_items(root: str) -> Items:
    return Items(Journal(os.path.join(root, "journal.db")), DataStore(root))


def new_entry(items: Items, path: str = "f", **kw) -> int:
    e = Entry(path=path, kind=stat.S_IFREG, mode=0o644, uid=0, gid=0, mtime_ns=1, **kw)
    items.journal.save(e)
    assert e.id is not None
    return e.id


def row(items: Items, entry_id: int) -> Entry:
    e = items.journal.get_by_id(entry_id)
    assert e is not None
    return e


# ------------------------------------------------------------------ derived state

@pytest.mark.parametrize("has_base, pending, settled, uploading, expected", [
    (False, True, False, False, ItemState.LOCAL_ONLY),  # created here, never uploaded
    (False, False, True, False, ItemState.LOCAL_ONLY),  # moved to a new key, nothing there
    (True, True, True, False, ItemState.DIRTY),
    (True, True, False, False, ItemState.DIRTY),  # created here, uploaded early, written again
    (True, False, False, False, ItemState.UNSETTLED),
    (True, False, True, False, ItemState.CLEAN),
    (True, True, True, True, ItemState.UPLOADING),
    (False, True, False, True, ItemState.UPLOADING),
])
def test_item_state(has_base, pending, settled, uploading, expected):
    assert item_state(has_base=has_base, pending=pending, settled=settled, uploading=uploading) is expected


def test_local_wins_is_pending_or_without_base():
    """The combination the core used to spell out (``pending or base_etag is None``)."""
    for has_base in (False, True):
        for pending in (False, True):
            for settled in (False, True):
                state = item_state(has_base=has_base, pending=pending, settled=settled)
                assert state.local_wins == (pending or not has_base)


def test_entry_state_follows_its_fields(root):
    items = open_items(root)
    i = new_entry(items, base_etag=None, dirty_gen=1, settled=False)
    assert row(items, i).state is ItemState.LOCAL_ONLY
    items.record_upload(row(items, i), 1, "E1", None)
    assert row(items, i).state is ItemState.UNSETTLED
    items.journal.update(i, settled=1)
    assert row(items, i).state is ItemState.CLEAN
    items.mark_changed(i, meta_only=True)
    assert row(items, i).state is ItemState.DIRTY
    assert row(items, i).meta_only


# ------------------------------------------------------------------ persistence

def test_ranges_and_complete_survive_a_reopen(root):
    items = open_items(root)
    i = new_entry(items, base_etag="E1", size=100)
    item = items.open(i)
    assert not item.complete and item.size_on_disk() == 100  # sparse, the row's size
    item.pwrite(b"x" * 10, 20)
    item.pwrite(b"y" * 5, 50)
    item.commit(100, 7)
    items.close(item)
    items.journal.close()

    items = open_items(root)
    assert row(items, i).ranges == [(20, 30), (50, 55)]
    item = items.open(i)
    assert item.present(20, 30) and item.present(50, 55) and not item.present(0, 21)
    assert item.missing(0, 100) == [(0, 20), (30, 50), (55, 100)]
    assert item.pread(3, 50) == b"yyy"
    item.pwrite(b"z" * 100, 0)
    assert item.present(0, 100)
    item.mark_complete()
    item.commit(100, 8)
    items.close(item)
    items.journal.close()

    items = open_items(root)
    e = row(items, i)
    assert e.complete and e.ranges == [] and e.mtime_ns == 8
    item = items.open(i)
    assert item.complete and item.missing(0, 100) == []
    items.close(item)


def test_first_write_after_a_snapshot_bumps_the_generation_once(root):
    items = open_items(root)
    i = new_entry(items, base_etag="E1", complete=True)
    item = items.open(i)

    async def main() -> None:
        assert item.mark_dirty() and not item.mark_dirty()
        assert row(items, i).dirty_gen == 1
        async with items.upload_source(i, "f") as snap:
            assert snap.gen == 1 and os.path.exists(snap.path)
            assert items.state(row(items, i)) is ItemState.UPLOADING
            assert item.mark_dirty()  # a write after the snapshot is a new generation
            snap_path = snap.path
        assert not os.path.exists(snap_path)  # the snapshot goes with the upload
        assert items.state(row(items, i)) is ItemState.DIRTY
        assert row(items, i).dirty_gen == 2
        items.record_upload(row(items, i), snap.gen, "E2", "v2")
        assert row(items, i).state is ItemState.DIRTY  # generation 2 is still to go

    trio.run(main)
    items.close(item)


def test_snapshot_holds_the_file_at_one_instant(root):
    items = open_items(root)
    i = new_entry(items, base_etag=None, complete=True, dirty_gen=1)
    item = items.open(i)
    item.born_dirty()
    item.pwrite(b"hello", 0)

    async def main() -> None:
        async with items.upload_source(i, "f") as snap:
            item.pwrite(b"HELLO, world", 0)  # (a writer would wait for the gate; the copy is done)
            with open(snap.path, "rb") as f:
                assert f.read() == b"hello"
            assert snap.size == 5

    trio.run(main)
    items.close(item)


def test_reset_to_a_remote_version(root):
    items = open_items(root)
    i = new_entry(items, base_etag="E1", complete=True, size=3)
    item = items.open(i)
    item.pwrite(b"abc", 0)
    item.mark_dirty()
    items.reset_to(i, RemoteVersion("E9", "v9", 40), mtime_ns=99)
    e = row(items, i)
    assert (e.base_etag, e.base_version, e.size, e.mtime_ns) == ("E9", "v9", 40, 99)
    assert e.state is ItemState.CLEAN and not e.complete and e.ranges == []
    assert not item.complete and item.missing(0, 40) == [(0, 40)] and item.size_on_disk() == 40
    assert item.mark_dirty()  # clean again: the next write is a new generation
    items.close(item)

    items.reset_to(i, RemoteVersion("E10", None, 0))  # closed: the data file goes
    assert not os.path.exists(items.data.path_for(i))
    e = row(items, i)
    assert e.complete and e.state is ItemState.CLEAN


def test_move_and_evict(root):
    items = open_items(root)
    i = new_entry(items, base_etag="E1", complete=True, meta_only=True, dirty_gen=1)
    items.move(i, None, settled=0)
    e = row(items, i)
    assert e.state is ItemState.LOCAL_ONLY and not e.meta_only and e.dirty_gen == 2
    items.record_upload(e, 2, "E2", None)
    item = items.open(i)
    item.pwrite(b"data", 0)
    items.close(item)
    assert os.path.exists(items.data.path_for(i))
    items.evict(i)
    e = row(items, i)
    assert not os.path.exists(items.data.path_for(i)) and not e.complete and e.base_etag == "E2"


def test_one_open_item_per_entry(root):
    items = open_items(root)
    i = new_entry(items, complete=True)
    a, b = items.open(i), items.open(i)
    assert a is b and items.is_open(i)
    items.close(a)
    assert items.is_open(i)
    items.close(b)
    assert not items.is_open(i)
    items.drop_if_closed(i)
    assert not os.path.exists(items.data.path_for(i))
