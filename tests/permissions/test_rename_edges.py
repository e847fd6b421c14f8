"""rename(2) edge cases: directory over an empty / a non-empty directory, into its own
subtree, over another file type, RENAME_NOREPLACE, names over 255 bytes, ctime."""

from __future__ import annotations

import pytest

from tests.permissions.harness import ALICE, ROOT

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

SCENARIO = r'''
import time

def setup(root):
    for d in ("a", "empty", "full", "a/sub"):
        os.mkdir(d)
    for f in ("full/x", "f", "g", "h"):
        with open(f, "w") as fh:
            fh.write(f)
    for p in ("a", "empty", "full", "a/sub", "full/x", "f", "g", "h", "."):
        os.chown(p, 1000, 1000)

def ctime_moved(path, before):
    return os.lstat(path).st_ctime_ns > before

def actions(root, rec):
    rec("dir over non-empty dir", lambda: os.rename("a", "full"))
    rec("dir into own subtree", lambda: os.rename("a", "a/sub/inside"))
    rec("file over dir", lambda: os.rename("f", "empty"))
    rec("dir over file", lambda: os.rename("empty", "f"))
    rec("noreplace", lambda: renameat2("f", "g", RENAME_NOREPLACE))
    rec("long name", lambda: os.rename("f", "n" * 256))
    rec("create long name", lambda: open("m" * 256, "w").close())
    rec("255 bytes is fine", lambda: os.rename("h", "k" * 255))
    rec("file onto itself", lambda: os.rename("g", "g"))
    rec("under a file", lambda: os.rename("g", "f/inside"))
    before = os.lstat("g").st_ctime_ns
    time.sleep(0.01)
    rec("file over file", lambda: os.rename("g", "f"))
    rec("ctime of moved file", lambda: ctime_moved("f", before))
    rec("dir over empty dir", lambda: os.rename("a", "empty"))
    rec("ls", lambda: sorted(os.listdir(".")))
    rec("ls moved dir", lambda: sorted(os.listdir("empty")))
    rec("missing source", lambda: os.rename("nope", "x"))
'''


@pytest.mark.parametrize("uploaded", [False, True], ids=["local", "uploaded"])
@pytest.mark.parametrize("user", [ROOT, ALICE], ids=lambda u: u.label)
def test_rename_edge_cases(trees, user, uploaded):
    out = trees.compare(SCENARIO, user, uploaded=uploaded)
    assert ["dir over non-empty dir", "ENOTEMPTY"] in out and ["dir into own subtree", "EINVAL"] in out
    assert ["long name", "ENAMETOOLONG"] in out
