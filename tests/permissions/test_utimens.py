"""utimensat: explicit times need ownership; UTIME_NOW needs ownership or write access;
UTIME_OMIT leaves a time alone."""

from __future__ import annotations

import pytest

from tests.permissions.harness import ALICE, BOB, ROOT

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

SCENARIO = r'''
import time

def setup(root):
    for name, mode in (("writable", 0o666), ("readonly", 0o644)):
        with open(name, "w") as f:
            f.write(name)
        os.chown(name, 1000, 1000)
        os.chmod(name, mode)
        os.utime(name, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))

def mtime(name):
    return os.lstat(name).st_mtime_ns

def recent(name):
    return abs(os.lstat(name).st_mtime_ns - time.time_ns()) < 600 * 10**9

def actions(root, rec):
    rec("explicit writable", lambda: utimensat("writable", (5, 0), (1_100_000_000, 123_456_789)))
    rec("mtime writable", lambda: mtime("writable"))
    rec("omit mtime", lambda: utimensat("writable", (7, 0), UTIME_OMIT))
    rec("mtime after omit", lambda: mtime("writable"))
    rec("now writable", lambda: utimensat("writable", None, None))
    rec("recent writable", lambda: recent("writable"))
    rec("UTIME_NOW both readonly", lambda: utimensat("readonly", UTIME_NOW, UTIME_NOW))
    rec("recent readonly", lambda: recent("readonly"))
    rec("explicit readonly", lambda: utimensat("readonly", (5, 0), (1_200_000_000, 0)))
    rec("mtime readonly", lambda: mtime("readonly") if not recent("readonly") else "recent")
    rec("omit both readonly", lambda: utimensat("readonly", UTIME_OMIT, UTIME_OMIT))
'''


@pytest.mark.parametrize("uploaded", [False, True], ids=["local", "uploaded"])
@pytest.mark.parametrize("user", [ROOT, ALICE, BOB], ids=lambda u: u.label)
def test_utimens_rules(trees, user, uploaded):
    out = trees.compare(SCENARIO, user, uploaded=uploaded)
    if user is BOB:
        assert ["explicit writable", "EPERM"] in out and ["now writable", "ok", None] in out
        assert ["UTIME_NOW both readonly", "EACCES"] in out
