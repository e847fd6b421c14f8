"""vim -es edits files in place on the mount; after sync the bucket has the new content."""

from __future__ import annotations

import stat

import pytest

from tests.support.mount_helpers import file_keys, get_bytes

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

ORIGINAL = b"foo is here\nno match\nfoo foo foo\nlast line foo\n"
EDITED = b"bar is here\nno match\nbar bar bar\nlast line bar\n"

# How vim writes a file: default settings, the rename-and-rewrite save (backupcopy=no, the
# old file is renamed to the backup name, which the mount refuses for an uploaded file, so vim
# must fall back), and copy-and-overwrite with a kept backup file.
VARIANTS = {
    "default.txt": [],
    "rename-save.txt": ["-c", "set backupcopy=no writebackup"],
    "overwrite.txt": ["-c", "set backupcopy=yes nobackup writebackup"],
}


def _vim(run, path, settings):
    run(["vim", "-es", "-i", "NONE", *settings, "-c", "%s/foo/bar/g", "-c", "wq", path], timeout=60)


def test_vim_edits_in_place(mount, run, s3, bucket):
    m = mount()
    d = m.path("edit")
    d.mkdir()
    for name in VARIANTS:
        (d / name).write_bytes(ORIGINAL)
        (d / name).chmod(0o640)
    # a file that is still local only
    _vim(run, d / "default.txt", [])
    assert (d / "default.txt").read_bytes() == EDITED
    (d / "default.txt").write_bytes(ORIGINAL)

    # files that are already in the bucket (replacing them is the interesting case)
    m.sync()
    assert get_bytes(s3, bucket, "edit/rename-save.txt") == ORIGINAL
    for name, settings in VARIANTS.items():
        _vim(run, d / name, settings)
        assert (d / name).read_bytes() == EDITED, f"{name}: wrong content after vim"
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o640, f"{name}: vim's save changed the mode"
    assert sorted(p.name for p in d.iterdir()) == sorted(VARIANTS), "swap or backup files left behind"

    m.sync()
    for name in VARIANTS:
        assert get_bytes(s3, bucket, f"edit/{name}") == EDITED, f"{name}: bucket has old content"
    # swap and backup files came and went within the write-back delay: never uploaded
    assert file_keys(s3, bucket) == {f"edit/{name}" for name in VARIANTS}
