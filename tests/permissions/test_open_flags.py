"""open(2) flags on every file type: O_CREAT|O_EXCL, O_TRUNC, O_DIRECTORY, O_NOFOLLOW,
write access, and creation through a dangling symlink."""

from __future__ import annotations

import pytest

from tests.permissions.harness import ALICE, BOB, ROOT

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

SCENARIO = r'''
def setup(root):
    with open("file", "w") as f:
        f.write("content\n")
    os.chown("file", 1000, 1000)
    os.chmod("file", 0o644)
    os.mkdir("dir")
    os.chmod("dir", 0o777)
    os.symlink("file", "link")
    os.symlink("dir/created-through-link", "dangling")
    os.mkfifo("fifo", 0o666)

def opened(path, flags, mode=0o644):
    fd = os.open(path, flags, mode)
    os.close(fd)
    return look(path)

def actions(root, rec):
    for name in ("file", "dir", "link", "fifo", "dangling"):
        rec(f"excl {name}", lambda: opened(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    rec("trunc file", lambda: opened("file", os.O_WRONLY | os.O_TRUNC))
    rec("trunc dir", lambda: opened("dir", os.O_WRONLY | os.O_TRUNC))
    rec("trunc fifo rdwr", lambda: opened("fifo", os.O_RDWR | os.O_TRUNC | os.O_NONBLOCK))
    rec("directory flag on file", lambda: opened("file", os.O_RDONLY | os.O_DIRECTORY))
    rec("nofollow link", lambda: opened("link", os.O_RDONLY | os.O_NOFOLLOW))
    rec("creat through dangling", lambda: opened("dangling", os.O_CREAT | os.O_WRONLY))
    rec("look created", lambda: look("dir/created-through-link"))
    rec("creat new 0600", lambda: opened("dir/new", os.O_CREAT | os.O_WRONLY, 0o600))
    rec("rdonly new", lambda: opened("dir/new", os.O_RDONLY))
    rec("look file", lambda: look("file"))
'''


@pytest.mark.parametrize("uploaded", [False, True], ids=["local", "uploaded"])
@pytest.mark.parametrize("user", [ROOT, ALICE, BOB], ids=lambda u: u.label)
def test_open_flag_rules(trees, user, uploaded):
    out = trees.compare(SCENARIO, user, uploaded=uploaded)
    assert ["excl file", "EEXIST"] in out and ["excl dangling", "EEXIST"] in out
