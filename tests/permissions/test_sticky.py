"""The sticky bit on directories: only the owner of the entry, of the directory, or root
may unlink or rename in it; chmod of the sticky and setgid bits by non-root."""

from __future__ import annotations

import pytest

from tests.permissions.harness import ALICE, BOB, ROOT

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

SCENARIO = r'''
def setup(root):
    os.mkdir("tmp")
    os.chmod("tmp", 0o1777)
    os.mkdir("alices")
    os.chown("alices", 1000, 1000)
    os.chmod("alices", 0o1777)
    for d, name, uid in (("tmp", "a1", 1000), ("tmp", "a2", 1000), ("tmp", "b1", 2000), ("tmp", "b2", 2000),
                         ("alices", "b3", 2000), ("alices", "b4", 2000)):
        with open(f"{d}/{name}", "w") as f:
            f.write(name)
        os.chown(f"{d}/{name}", uid, uid)
        os.chmod(f"{d}/{name}", 0o666)
    os.mkdir("tmp/bdir")
    os.chown("tmp/bdir", 2000, 2000)
    with open("own", "w") as f:
        f.write("x")
    os.chown("own", 1000, 1000)

def actions(root, rec):
    rec("unlink tmp/a1", lambda: os.unlink("tmp/a1"))
    rec("unlink tmp/b1", lambda: os.unlink("tmp/b1"))
    rec("rename tmp/b2", lambda: os.rename("tmp/b2", "tmp/moved"))
    rec("rename tmp/a2 over tmp/b2", lambda: os.rename("tmp/a2", "tmp/b2"))
    rec("rmdir tmp/bdir", lambda: os.rmdir("tmp/bdir"))
    rec("unlink alices/b3", lambda: os.unlink("alices/b3"))
    rec("rename alices/b4", lambda: os.rename("alices/b4", "alices/b5"))
    rec("ls tmp", lambda: sorted(os.listdir("tmp")))
    rec("ls alices", lambda: sorted(os.listdir("alices")))
    rec("chmod +t own", lambda: os.chmod("own", 0o1644))
    rec("chmod g+s own", lambda: os.chmod("own", 0o2644))
    rec("look own", lambda: look("own"))
    rec("mkdir sticky", lambda: os.mkdir("tmp/mine"))
    rec("chmod +t dir", lambda: os.chmod("tmp/mine", 0o1755))
    rec("look dir", lambda: look("tmp/mine"))
'''


@pytest.mark.parametrize("uploaded", [False, True], ids=["local", "uploaded"])
@pytest.mark.parametrize("user", [ROOT, ALICE, BOB], ids=lambda u: u.label)
def test_sticky_directory_rules(trees, user, uploaded):
    out = trees.compare(SCENARIO, user, uploaded=uploaded)
    if user is ALICE:
        assert ["unlink tmp/b1", "EPERM"] in out and ["unlink alices/b3", "ok", None] in out
