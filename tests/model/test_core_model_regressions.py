"""Regression tests of the core model (``core_model.py``): falsifying programs found while
developing it, kept as explicit op lists, and a few direct rig tests of the same bugs."""

from __future__ import annotations

import pytest

from mountsync.backend.memory import MemoryStore
from tests.model.core_model import ALLOWED_LOGS, Params, run_program
from tests.support.rig import run_rig

pytestmark = pytest.mark.model


# ----------------------------------------------------------------- regressions
# Falsifying examples found while developing the model, kept as explicit programs.


def test_regression_rename_of_file_deleted_by_other_writer(allow_log):
    """Was a BUG (found by this model; gone since 770688f/b503dc4): a clean cached file
    deleted by another writer stayed listed for ever, and renaming it failed with EIO."""
    allow_log(ALLOWED_LOGS[0].pattern)
    run_program([("write", "d/e.txt"), ("sync",), ("delete", "d/e.txt"), ("rename", "d/e.txt", "a.txt")],
                Params(allow_delete=True))


def test_regression_remote_delete_of_clean_cached_file_is_seen(tmp_path):
    """docs/SEMANTICS.md: a remote delete is seen within --metadata-ttl for listings."""
    store = MemoryStore("b")

    async def body(rig):
        await rig.write_file("f", b"v1")
        assert (await rig.sync()).ok
        store.delete("f")  # another writer
        assert await rig.listdir("") == []
        assert not await rig.exists("f")

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=0)


def test_regression_rename_over_edited_target_keeps_other_writers_version(allow_log):
    """Was a BUG (found by this model, fixed in 974bf2a): with --allow-delete, renaming a
    clean uploaded file onto a name with a pending local edit was an unconditional
    server-side copy (core/rename.py ``_copy_clean_file``) that overwrote another
    writer's version the mount never showed: no conflict, nothing in recovery."""
    allow_log(ALLOWED_LOGS[0].pattern)
    # a.txt: local edit pending; another writer replaces a.txt; the user renames b.txt over it
    out = run_program([("write", "a.txt"), ("put", "a.txt", None), ("rename", "b.txt", "a.txt")],
                      Params(allow_delete=True))
    assert out.objects["a.txt"] == b"[other 2]"
    (kept,) = [k for k, v in out.objects.items() if v == b"[other 5]"]
    assert kept.startswith("a.conflict-") and kept.endswith(".txt")


def test_regression_create_over_unseen_reput_by_other_writer(allow_log):
    """Was a BUG (found by this model, fixed in 974bf2a): after another writer deleted a
    clean cached file and put it again, lookups answered ENOENT (core/listings.py
    ``refresh_child`` kept the clean journal entry and then trusted it) and a create of
    the name overwrote the object the mount had not shown."""
    allow_log(ALLOWED_LOGS[0].pattern)
    # the EPERM unlink is only a way to look at a.txt (and cache it) without changing it
    out = run_program([("unlink", "a.txt"), ("delete", "a.txt"), ("unlink", "a.txt"), ("put", "a.txt", None),
                       ("write", "a.txt")], Params())
    assert "saw b'[other 4]'" in out.trace[-1]  # the re-created object is visible


@pytest.mark.parametrize("params,k", [(Params(), 1), (Params(conditional_writes="no"), 2),
                                      (Params(multipart=True), 5)],
                         ids=["put", "head-then-put", "multipart-complete"])
def test_regression_crash_between_upload_and_journal_commit(params, k):
    """The upload reached the bucket, the daemon died before the journal said so: after the
    restart the retry meets its own object, which is not a conflict (SPEC §8)."""
    out = run_program([("write", "a.txt"), ("crash", k, "after")], params)
    assert f"crashed after store call {k}" in out.trace[-1]
    assert out.conflicts == []
    assert out.objects["a.txt"] == b"[local 4]"


def test_regression_manual_conflict_closed_when_edit_renamed_away(tmp_path, allow_log):
    """Was a minor BUG (found while writing this model, fixed in 974bf2a): a manual conflict
    stayed open for ever once the user renamed the conflicted local-only file away."""
    allow_log(ALLOWED_LOGS[0].pattern)
    store = MemoryStore("b")

    async def body(rig):
        await rig.write_file("a", b"local")  # never uploaded
        store.put("a", b"other")  # another writer creates the same key
        assert not (await rig.sync()).ok  # manual: left pending
        await rig.rename("a", "b")  # the user moves the edit out of the way
        assert (await rig.sync()).ok
        assert store.objects() == {"a": b"other", "b": b"local"}
        assert rig.status()["conflicts_open"] == 0

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=0, conflict_strategy="manual")


# ----------------------------------------------------------------- directory renames
# The safety issue's item 1, as model programs (each failed before the fix).


@pytest.mark.parametrize("params", [Params(allow_delete=True), Params(allow_delete=True, conditional_writes="no"),
                                    Params(allow_delete=True, multipart=True)],
                         ids=["conditional", "head-fallback", "multipart"])
def test_regression_dir_rename_during_upload(params, allow_log):
    """d/e.txt v2 is uploading during mv d m: the newest bytes end under the new name."""
    allow_log(ALLOWED_LOGS[0].pattern)
    out = run_program([("write", "d/e.txt"), ("sync",), ("write", "d/e.txt"), ("mvdir", "upload")], params)
    assert "renamed while an upload below d was in flight" in out.trace[-1], out.trace
    assert out.objects.get("d/e.txt") == b"[local 5]", out.objects


def test_regression_dir_rename_meets_other_writer_between_copy_and_delete(allow_log):
    """Another writer replaces d/e.txt right after the rename copied it: both versions stay."""
    allow_log(ALLOWED_LOGS[0].pattern)
    out = run_program([("write", "d/e.txt"), ("sync",), ("mvdir", "other")], Params(allow_delete=True))
    assert "other writer put" in out.trace[-1], out.trace
    assert b"[local 4]" in out.objects.values() and b"[other 6]" in out.objects.values(), out.objects


def test_regression_own_creations_move_and_go_without_allow_delete(allow_log):
    """SPEC §6 (own creations): the model refuses EPERM for anything only the mount wrote;
    found while adding the rule: another writer's put during a directory move made the
    old key theirs, and a later EPERM for it is right."""
    allow_log(ALLOWED_LOGS[0].pattern)
    run_program([("write", "d/e.txt"), ("sync",), ("mvdir", "none"), ("rename", "d/e.txt", "c"),
                 ("unlink", "c")], Params(allow_delete=False))
    run_program([("write", "d/e.txt"), ("sync",), ("mvdir", "other"), ("rename", "d/e.txt", "a.txt")],
                Params(allow_delete=False))
    run_program([("write", "d/e.txt"), ("sync",), ("unlink", "d/e.txt"), ("sync",)], Params(allow_delete=False))


def test_regression_background_renames(allow_log):
    """Found while moving file renames to the reconciler: a new file at the old name was
    uploaded over the old object before the rename's copy (the renamed bytes were lost);
    a directory rename dropped a renamed file whose copy was pending; a delete waited
    for ever for the copy of a file whose bytes were all local (manual conflict)."""
    allow_log(ALLOWED_LOGS[0].pattern)
    run_program([("rename", "a.txt", "b.txt"), ("write", "a.txt")], Params(allow_delete=True))
    run_program([("rename", "a.txt", "d/e.txt"), ("mvdir", "none")], Params(strategy="manual", allow_delete=True))
    run_program([("rename", "c", "a.txt"), ("delete", "a.txt"), ("append", "a.txt"), ("mvdir", "other")],
                Params(strategy="manual", allow_delete=True), resolve="local")
    # renamed away and back: clean again, so another writer's change simply wins
    run_program([("rename", "a.txt", "c"), ("rename", "c", "a.txt"), ("put", "a.txt", None)],
                Params(strategy="local-wins", allow_delete=True), resolve="remote")
    run_program([("rename", "a.txt", "b.txt"), ("rename", "b.txt", "a.txt"), ("delete", "a.txt")],
                Params(strategy="local-wins", allow_delete=True))


def test_regression_background_directory_renames(allow_log):
    """Found while moving directory renames to the reconciler: the old directory's marker
    delete, waiting for the keys below it, polled so often that the reconciler never
    settled (the first program); and a directory whose only key was another writer's
    (never shown here, so not deleted by the move) was hidden until the marker delete,
    then reappeared under the way back (a race; the second program has its shape)."""
    allow_log(ALLOWED_LOGS[0].pattern)
    run_program([("write", "d/e.txt"), ("mvdir", "other")], Params(strategy="remote-wins"), resolve="both")
    run_program([("write", "d/e.txt"), ("put", "d/e.txt", "future"), ("mvdir", "none"), ("mvdir", "none")],
                Params(strategy="local-wins"), resolve="remote")
    # d moved away, back with another writer's key only (no marker), that key unlinked: after
    # a restart d is gone, as a directory without a marker is; a program writing there makes it
    run_program([("put", "d/e.txt", None), ("mvdir", "other"), ("unlink", "d/e.txt"), ("restart",),
                 ("write", "d/e.txt")], Params(strategy="manual", allow_delete=True), resolve="both")


@pytest.mark.parametrize("allow_delete", [True, False])
def test_renames_while_the_endpoint_is_cut(allow_delete, allow_log):
    """Renames of uploaded files and directories (and chains of them) with the endpoint
    cut, then other writers, crashes and restarts, like the random programs."""
    allow_log(ALLOWED_LOGS[0].pattern)
    params = Params(allow_delete=allow_delete)
    run_program([("write", "d/e.txt"), ("sync",), ("mvdir", "offline"), ("sync",)], params)
    run_program([("write", "a.txt"), ("sync",), ("offline_rename", "a.txt", "b.txt"),
                 ("offline_rename", "b.txt", "c"), ("restart",), ("sync",)], params)
    run_program([("put", "a.txt", None), ("offline_rename", "a.txt", "d/e.txt"), ("mvdir", "offline"),
                 ("put", "d/e.txt", "future"), ("crash", 2, "after"), ("sync",)], params)
    run_program([("write", "d/e.txt"), ("sync",), ("offline_rename", "d/e.txt", "a.txt"),
                 ("delete", "d/e.txt"), ("restart",), ("offline_rename", "a.txt", "d/e.txt"), ("sync",)], params)
