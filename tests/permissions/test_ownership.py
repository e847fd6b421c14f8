"""chown/chgrp as the kernel rules them on a local filesystem: root may give a file to
anyone; an owner may only change the group, to one it belongs to; a non-owner nothing;
setuid/setgid are cleared by chown and by a write from a non-owner."""

from __future__ import annotations

import pytest

from tests.permissions.harness import ALICE, BOB, ROOT

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

SCENARIO = r'''
def setup(root):
    for name, mode in (("mine", 0o6755), ("plain", 0o644), ("shared", 0o6777), ("notmine", 0o644)):
        with open(name, "w") as f:
            f.write("data\n")
        os.chmod(name, mode)
    os.chown("mine", 1000, 1000)
    os.chown("plain", 1000, 1000)
    os.chown("shared", 1000, 1000)
    os.chown("notmine", 2000, 2000)
    os.chmod("mine", 0o6755)  # chown cleared the bits: set them again
    os.chmod("shared", 0o6777)
    os.mkdir("dir")
    os.chown("dir", 1000, 1000)
    os.chmod("dir", 0o2775)

def actions(root, rec):
    rec("chgrp mine 1001", lambda: os.chown("mine", -1, 1001))
    rec("look mine", lambda: look("mine"))
    rec("chgrp plain 1002", lambda: os.chown("plain", -1, 1002))
    rec("chown plain 3000", lambda: os.chown("plain", 3000, -1))
    rec("chown plain to itself", lambda: os.chown("plain", 1000, 1000))
    rec("look plain", lambda: look("plain"))
    rec("chown notmine 1000", lambda: os.chown("notmine", 1000, -1))
    rec("chgrp notmine 1001", lambda: os.chown("notmine", -1, 1001))
    rec("look notmine", lambda: look("notmine"))
    rec("chmod notmine", lambda: os.chmod("notmine", 0o600))
    rec("chgrp dir 1001", lambda: os.chown("dir", -1, 1001))
    rec("look dir", lambda: look("dir"))
    def append_shared():
        with open("shared", "a") as f:
            f.write("more\n")
    rec("write shared", append_shared)
    rec("look shared", lambda: look("shared"))
    rec("chmod g+s plain (group 1000)", lambda: os.chmod("plain", 0o2755))
    rec("look plain again", lambda: look("plain"))
    rec("chown -1 -1", lambda: os.chown("plain", -1, -1))
'''


@pytest.mark.parametrize("uploaded", [False, True], ids=["local", "uploaded"])
@pytest.mark.parametrize("user", [ROOT, ALICE, BOB], ids=lambda u: u.label)
def test_ownership_rules(trees, user, uploaded):
    out = trees.compare(SCENARIO, user, uploaded=uploaded)
    if user is ALICE:  # the rules the comparison covers, spelled out once
        assert ["chown notmine 1000", "EPERM"] in out
        assert ["chgrp plain 1002", "EPERM"] in out
        assert ["look mine", "ok", ["-rwxr-xr-x", 1000, 1001, 5]] in out  # setuid/setgid cleared by chgrp
