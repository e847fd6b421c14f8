"""mountsync.cache.journal: durable per-path state and tombstones."""

import os
import sqlite3
import stat

import pytest

from mountsync.cache.journal import Entry, Journal, Tombstone

REG, DIR, LNK = stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK


@pytest.fixture
def jpath(tmp_path):
    return str(tmp_path / "journal.db")


@pytest.fixture
def j(jpath):
    jr = Journal(jpath)
    yield jr
    jr.close()


def mk(path, kind=REG, **kw):
    return Entry(path=path, kind=kind, mode=0o644, uid=1, gid=2, mtime_ns=123, **kw)


def test_file_mode_0600(j, jpath):
    assert stat.S_IMODE(os.stat(jpath).st_mode) == 0o600


def test_save_insert_and_get(j):
    e = mk("a/b", size=10, base_etag="E1", ranges=[(0, 4), (8, 10)], complete=False)
    assert e.id is None
    j.save(e)
    assert isinstance(e.id, int)
    got = j.get("a/b")
    assert got == e
    assert got.ranges == [(0, 4), (8, 10)]
    assert got.complete is False and got.meta_only is False
    assert j.get_by_id(e.id) == e
    assert j.get("missing") is None
    assert j.get_by_id(9999) is None


def test_save_update_by_id(j):
    e = j.save(mk("x"))
    first = e.id
    e.size = 99
    e.target = "t"
    e.complete = True
    j.save(e)
    assert e.id == first
    got = j.get("x")
    assert (got.size, got.target, got.complete) == (99, "t", True)


def test_unique_path(j):
    j.save(mk("x"))
    with pytest.raises(sqlite3.IntegrityError):
        j.save(mk("x"))


def test_update_columns(j):
    e = j.save(mk("f"))
    j.update(e.id, size=5, base_etag="abc", ranges=[(1, 3)])
    got = j.get("f")
    assert (got.size, got.base_etag, got.ranges) == (5, "abc", [(1, 3)])
    j.update(e.id, ranges=[])
    assert j.get("f").ranges == []


def test_pending_and_bump_dirty(j):
    e = j.save(mk("f"))
    assert not j.get("f").pending
    assert j.pending() == []
    assert j.bump_dirty(e.id) == 1
    assert j.bump_dirty(e.id) == 2
    got = j.get("f")
    assert got.pending and got.dirty_gen == 2 and got.uploaded_gen == 0
    assert [x.path for x in j.pending()] == ["f"]
    j.update(e.id, uploaded_gen=2)
    assert not j.get("f").pending
    assert j.pending() == []


def test_bump_dirty_clears_error_and_attempts(j):
    e = j.save(mk("f", error="boom", attempts=3))
    j.bump_dirty(e.id)
    got = j.get("f")
    assert got.error is None and got.attempts == 0


def test_bump_dirty_meta_only_rules(j):
    e = j.save(mk("f", base_etag="E"))
    # clean entry + metadata change → meta_only
    j.bump_dirty(e.id, meta_only=True)
    assert j.get("f").meta_only is True
    # another metadata change keeps it meta_only
    j.bump_dirty(e.id, meta_only=True)
    assert j.get("f").meta_only is True
    # a data change makes it a data change
    j.bump_dirty(e.id)
    assert j.get("f").meta_only is False
    # metadata change on top of a pending data change stays a data change
    j.bump_dirty(e.id, meta_only=True)
    assert j.get("f").meta_only is False
    # after the upload, a metadata change is meta_only again
    g = j.get("f").dirty_gen
    j.update(e.id, uploaded_gen=g)
    j.bump_dirty(e.id, meta_only=True)
    got = j.get("f")
    assert got.meta_only is True and got.dirty_gen == g + 1


def test_bump_dirty_missing_entry(j):
    assert j.bump_dirty(424242) == 0


def test_delete(j):
    e = j.save(mk("f"))
    j.delete(e.id)
    assert j.get("f") is None


def test_children_and_under(j):
    for p, k in [("a", DIR), ("a/x", REG), ("a/sub", DIR), ("a/sub/y", REG), ("a/sub/z/w", REG),
                 ("ab", REG), ("a0", REG), ("a.txt", REG), ("b", REG), ("a-b/c", REG)]:
        j.save(mk(p, k))
    assert sorted(e.path for e in j.children("a")) == ["a/sub", "a/x"]
    assert sorted(e.path for e in j.under("a")) == ["a/sub", "a/sub/y", "a/sub/z/w", "a/x"]
    assert sorted(e.path for e in j.children("a/sub")) == ["a/sub/y"]
    assert sorted(e.path for e in j.children("")) == ["a", "a.txt", "a0", "ab", "b"]
    assert len(j.under("")) == 10
    assert j.children("nothing") == []


def test_rename_subtree(j):
    ids = {}
    for p, k in [("a", DIR), ("a/x", REG), ("a/sub", DIR), ("a/sub/y", REG), ("ab", REG)]:
        ids[p] = j.save(mk(p, k)).id
    j.rename_subtree("a", "b/c")
    assert j.get("a") is None and j.get("a/x") is None
    assert j.get("b/c").id == ids["a"]
    assert j.get("b/c/x").id == ids["a/x"]
    assert j.get("b/c/sub/y").id == ids["a/sub/y"]
    assert j.get("ab").id == ids["ab"]  # a sibling with a common prefix is not moved


def test_rename_subtree_swap_like_no_unique_clash(j):
    # moving "a" to "a/..."-free place where names would collide transiently
    j.save(mk("d", DIR))
    j.save(mk("d/d", DIR))
    j.save(mk("d/d/d", REG))
    j.rename_subtree("d/d", "e")
    assert sorted(e.path for e in j.under("")) == ["d", "e", "e/d"]


def test_rename_single_file(j):
    e = j.save(mk("old"))
    j.rename_subtree("old", "new")
    assert j.get("new").id == e.id and j.get("old") is None


def test_tombstones(j):
    t = Tombstone("a/f", REG, "E1", created=10.0)
    j.add_tombstone(t)
    j.add_tombstone(Tombstone("a/sub/g", REG, None, created=11.0))
    j.add_tombstone(Tombstone("ab", DIR, None, created=12.0))
    assert j.tombstone("a/f") == t
    assert j.tombstone("nope") is None
    assert sorted(x.path for x in j.tombstones()) == ["a/f", "a/sub/g", "ab"]
    assert sorted(x.path for x in j.tombstones_under("a")) == ["a/f", "a/sub/g"]
    assert len(j.tombstones_under("")) == 3
    j.update_tombstone("a/f", error="denied", attempts=2)
    got = j.tombstone("a/f")
    assert (got.error, got.attempts) == ("denied", 2)
    # replace
    j.add_tombstone(Tombstone("a/f", REG, "E2", created=20.0))
    assert j.tombstone("a/f").base_etag == "E2" and j.tombstone("a/f").attempts == 0
    j.remove_tombstone("a/f")
    assert j.tombstone("a/f") is None


def test_multipart_and_clean_cached(j):
    a = j.save(mk("a", last_used=3.0))
    b = j.save(mk("b", last_used=1.0))
    c = j.save(mk("c", last_used=2.0))
    j.save(mk("d", DIR))
    j.bump_dirty(c.id)
    assert [e.path for e in j.clean_cached()] == ["b", "a"]
    j.update(a.id, mpu_id="up-1")
    assert [e.path for e in j.with_multipart()] == ["a"]
    assert b.id is not None


def test_meta(j):
    assert j.get_meta("k") is None
    j.set_meta("k", "v1")
    j.set_meta("k", "v2")
    assert j.get_meta("k") == "v2"


def test_survives_reopen(jpath):
    j1 = Journal(jpath)
    e = j1.save(mk("dir/file", size=7, base_etag="E", ranges=[(0, 3)]))
    j1.bump_dirty(e.id)
    j1.bump_dirty(e.id, meta_only=True)
    j1.add_tombstone(Tombstone("gone", REG, "G", created=5.0))
    j1.set_meta("schema", "1")
    j1.make_durable()
    j1.close()
    j2 = Journal(jpath)
    try:
        got = j2.get("dir/file")
        assert got.id == e.id
        assert (got.size, got.base_etag, got.ranges, got.dirty_gen, got.meta_only) == (7, "E", [(0, 3)], 2, False)
        assert [p.path for p in j2.pending()] == ["dir/file"]
        assert j2.tombstone("gone").base_etag == "G"
        assert j2.get_meta("schema") == "1"
        # ids keep increasing after reopen (AUTOINCREMENT): no reuse of a data-file name
        j2.delete(e.id)
        assert j2.save(mk("other")).id > e.id
    finally:
        j2.close()


def test_creations_and_unanswered_writes(j, jpath):
    c = j.created
    assert c.after_write("k", None, "e1") and c.ours("k", "e1")
    assert not c.ours("k", "e0") and not c.ours("k", None)
    c.unanswered("k", "e2")
    c.unanswered("k", "e2")  # twice is once
    c.unanswered("other", "e9")
    assert c.was_unanswered("k", "e2") and not c.was_unanswered("k", "e1")
    j.close()
    again = Journal(jpath)  # kept across a restart
    c = again.created
    assert c.was_unanswered("k", "e2") and c.ours("k", "e1")
    assert c.after_write("k", "e1", "e3")  # an answered write of ours settles the question
    assert not c.was_unanswered("k", "e2") and c.ours("k", "e3")
    c.forget("other")
    assert not c.was_unanswered("other", "e9")
    assert not c.after_write("k", "someone-else", "e4") and not c.ours("k", "e4")
    again.close()
