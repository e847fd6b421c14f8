"""Regression tests of the mount model (``test_mount_model.py``): failures the machine found,
replayed as explicit op lists with ``mount_differ.run_ops``."""

from __future__ import annotations

import pytest

from tests.model.mount_differ import run_ops

pytestmark = [pytest.mark.model, pytest.mark.fuse, pytest.mark.moto]


# ----------------------------------------------------------------- regressions
#
# Failures the machine found, as explicit op lists, each on a fresh mount compared with a fresh
# local directory exactly as the machine does (``run_ops``: outcome of every op, tree after every
# op, bucket after every sync, a final sync + wait past the TTL + tree).

# The races below need an op to meet an upload or delete in flight. They are repeated in rounds;
# before their fixes each round hit the window in most runs, so 8 rounds make a pass of the buggy
# product very unlikely.
RACE_ROUNDS = 8


def _rename_clean_file_over_file_being_uploaded(payload: bytes) -> list[tuple]:
    ops: list[tuple] = [("create", "b", b"old", 0o644)]
    for i in range(RACE_ROUNDS):
        ops += [
            ("create", "c", b"c%d" % i, 0o644),
            ("sync",),                      # c and b are uploaded and clean
            ("write", "b", 0, payload),     # b changes: its upload starts at once (delay 0)
            ("rename", "c", "b"),           # c (clean, in the bucket) replaces b: a server-side copy
        ]
    return ops


# Rename over a file whose upload is in flight (found by the machine with --write-back-delay 0;
# fixed in 9a9bac2: rename waits for the target's upload). Before: "WARNING mountsync.core: conflict
# on 'b': renaming over it would replace a version changed in the bucket (<ETag of the mount's own
# upload>); that version is kept as 'b.conflict-…'" -- or the dropped upload landed after the
# server-side copy and keep-both re-created the overwritten bytes as 'b.conflict-…'.
@pytest.mark.parametrize("payload", [b"zz", b"y" * (1 << 20)], ids=["small", "1MiB"])
def test_regression_rename_clean_file_over_file_being_uploaded(mount, tmp_path, s3, payload):
    m = mount("--allow-delete", "--metadata-ttl", "1", "--write-back-delay", "0")
    local = tmp_path / "local"
    local.mkdir()
    run_ops(m, local, _rename_clean_file_over_file_being_uploaded(payload), s3)


def _atomic_save_over_file_being_uploaded(src_uploaded: bool) -> list[tuple]:
    """b (30 MB) is being uploaded when c replaces it: the atomic-save / checkpoint pattern."""
    big = b"y" * 30_000_000
    ops: list[tuple] = [("create", "b", b"old", 0o644)]
    for t in (0.21, 0.24, 0.28, 0.33, 0.4, 0.5):  # the upload starts 0.2 s after the close
        ops += [("create", "c", b"new", 0o644)] if src_uploaded else []
        ops += [("sync",), ("write", "b", 0, big), ("nap", t)]
        ops += [] if src_uploaded else [("create", "c", b"new", 0o644)]
        ops += [("rename", "c", "b")]
    return ops


# Same bug, at the default-like delay (0.2 s) with a big target, so the upload is in flight for a
# while. Before 9a9bac2, with c never uploaded (an editor's or checkpoint writer's temp file), the
# bucket ended with the OLD 30 MB bytes under 'b' and the user's new 'b' under 'b.conflict-…':
# "WARNING mountsync.conflict: conflict on 'b' (modified): local edit based on <ETag of 'old'>,
# bucket has <ETag of the 30 MB upload>; keep-both: local → bucket:b.conflict-…, bucket → bucket:b".
# The trees are compared only after each sync here: reading 30 MB on both sides after every op
# would outlast the window.
@pytest.mark.parametrize("src_uploaded", [False, True], ids=["local-src", "uploaded-src"])
def test_regression_atomic_save_over_file_being_uploaded(mount, tmp_path, s3, src_uploaded):
    m = mount("--allow-delete", "--metadata-ttl", "1", "--write-back-delay", "0.2")
    local = tmp_path / "local"
    local.mkdir()
    run_ops(m, local, _atomic_save_over_file_being_uploaded(src_uploaded), s3, tree_after_each_op=False)


def _replace_just_deleted_file(how: str) -> list[tuple]:
    ops: list[tuple] = []
    for i in range(RACE_ROUNDS):
        ops += [("create", "b", b"old%d" % i, 0o644), ("create", "c", b"new%d" % i, 0o644)]
        if how == "local-src":
            ops += [("unlink", "c"), ("sync",), ("create", "c", b"new%d" % i, 0o644)]  # c never uploaded
        elif how == "pending-src":
            ops += [("sync",), ("write", "c", 0, b"N")]                                # c uploaded, then changed
        else:
            ops += [("sync",)]                                                         # c uploaded and clean
        ops += [
            ("unlink", "b"),        # b is in the bucket: its delete is queued at once
            ("rename", "c", "b"),   # ... and c takes its name while that delete is in flight
            ("sync",),
        ]
    return ops


# Was a BUG (found by this machine; fixed with the safety issue: rename holds its target path in the
# reconciler, so a delete of it in flight finishes first and a queued one does not start under the
# rename): unlink b; rename c b recorded a spurious conflict with a single writer -- the mount's own
# delete was taken for another writer's ('deleted-remotely'), or the conditional delete of the old
# version met the renamed file ('deleted here but changed in the bucket'). Core test:
# tests/core/test_rename_keeps_data.py::test_rename_onto_name_whose_delete_is_in_flight.
@pytest.mark.parametrize("how", ["local-src", "pending-src", "clean-src"])
def test_regression_rename_onto_name_being_deleted(mount, tmp_path, s3, how):
    m = mount("--allow-delete", "--metadata-ttl", "1", "--write-back-delay", "0.2")
    local = tmp_path / "local"
    local.mkdir()
    run_ops(m, local, _replace_just_deleted_file(how), s3, tree_after_each_op=False)


@pytest.fixture
def cut_proxy(moto_endpoint):
    """A proxy in front of the endpoint for ``("cut",)``/``("restore",)`` steps (set up before
    the mount, so closed after it)."""
    from tests.support.proxy import Proxy

    p = Proxy(moto_endpoint)
    yield p
    p.close()


def _offline(op: tuple) -> list[tuple]:
    return [("cut",), op, ("restore",)]


# Directory renames with the endpoint cut (found when the machine got ``offline_rename``):
# a directory renamed over an empty one took over its marker's delete without the marker's
# ETag, and moved on again, left the old marker 'a/' behind (the directory came back).
def test_regression_offline_directory_renames_over_empty_directories(cut_proxy, mount, tmp_path, s3):
    m = mount("--allow-delete", "--metadata-ttl", "1", "--write-back-delay", "0.2", endpoint=cut_proxy.endpoint)
    local = tmp_path / "local"
    local.mkdir()
    ops = [("mkdir", "a"), ("mkdir", "b"), ("mkdir", "a/a"), ("wait",),
           *_offline(("rename", "a/a", "m")), *_offline(("rename", "b", "a")), *_offline(("rename", "a", "b")),
           *_offline(("rename", "b", "m"))]
    run_ops(m, local, ops, s3, proxy=cut_proxy)
