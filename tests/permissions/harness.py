"""Differential permission tests: the same scenario on the mount and on a kernel filesystem.

A scenario is Python source with two functions, ``setup(root)`` (run as root) and
``actions(root, rec)`` (run as the user under test). ``rec(label, fn)`` calls ``fn()``
and records its outcome: the value it returns (made JSON-friendly) or the errno name
it raised. ``look(path)`` gives the observable state of a path (type, mode bits, uid,
gid, size; mtime only when a scenario asks for it). Each phase runs in a fresh
subprocess with the user's uid, gid and supplementary groups, so the kernel applies
the same permission checks to both trees; the outcomes must be equal.

Both trees live in world-traversable directories (pytest's tmp dirs are 0700), and the
mount is made with ``--allow-other`` so another user can reach it at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PRELUDE = r'''
import ctypes, errno, json, os, stat, sys
libc = ctypes.CDLL(None, use_errno=True)
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
AT_FDCWD, RENAME_NOREPLACE, RENAME_EXCHANGE = -100, 1, 2

class _Ts(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

def utimensat(path, atime, mtime):
    """atime/mtime: (sec, nsec), or UTIME_NOW / UTIME_OMIT, or None for both "now"."""
    if atime is None and mtime is None:
        ts = None
    else:
        def one(t):
            return _Ts(0, t) if isinstance(t, int) else _Ts(*t)
        ts = (_Ts * 2)(one(atime), one(mtime))
    if libc.utimensat(AT_FDCWD, os.fsencode(path), ts, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

def renameat2(a, b, flags):
    if libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))

def look(p, mtime=False):
    try:
        st = os.lstat(p)
    except OSError as exc:
        return errno.errorcode[exc.errno]
    out = [stat.filemode(st.st_mode), st.st_uid, st.st_gid,
           st.st_size if stat.S_ISREG(st.st_mode) else None]
    if mtime:
        out.append(st.st_mtime_ns)
    return out

RESULTS = []

def rec(label, fn):
    try:
        value = fn()
        if isinstance(value, os.stat_result):
            value = None
        RESULTS.append([label, "ok", value])
    except OSError as exc:
        RESULTS.append([label, errno.errorcode.get(exc.errno, str(exc.errno))])
'''

RUNNER = r'''
root = sys.argv[1]
phase = sys.argv[2]
os.chdir(root)
if phase == "setup":
    setup(root)
else:
    actions(root, rec)
print(json.dumps(RESULTS))
'''


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        return "root" if self.uid == 0 else f"uid{self.uid}"


ROOT = User(0, 0, (0,))
ALICE = User(1000, 1000, (1000, 1001))  # owns most files in the scenarios; also in group 1001
BOB = User(2000, 2000, (2000,))


def public_dir(stem: str) -> Path:
    """A fresh directory every user can traverse (removed by the caller)."""
    d = Path(tempfile.mkdtemp(prefix=f"ms-{stem}-", dir="/tmp"))
    d.chmod(0o755)
    return d


def run_phase(root: Path, scenario: str, phase: str, user: User) -> list:
    def become() -> None:
        os.setgroups(list(user.groups))
        os.setgid(user.gid)
        os.setuid(user.uid)

    code = PRELUDE + scenario + RUNNER
    # the scenarios need only the standard library; the system interpreter is one every
    # user may run (the test's own may live under /root)
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    r = subprocess.run([python, "-c", code, str(root), phase], capture_output=True, text=True,
                       timeout=120, preexec_fn=become if user.uid != 0 else None, check=False)
    assert r.returncode == 0, f"{phase} as {user.label} in {root} failed:\n{r.stderr}"
    return json.loads(r.stdout)


def outcomes(root: Path, scenario: str, user: User, between: Callable[[], object] | None = None) -> list:
    run_phase(root, scenario, "setup", ROOT)
    if between is not None:
        between()
    return run_phase(root, scenario, "actions", user)


def compare(mount_root: Path, local_root: Path, scenario: str, user: User,
            between: Callable[[], object] | None = None) -> list:
    """Run the scenario in both trees (in a fresh subdirectory named after the user) as
    ``user``; returns the mount's outcomes after checking they equal the kernel fs's.
    ``between`` runs on the mount between setup and actions (e.g. its ``sync``, so the
    actions meet uploaded entries)."""
    roots = []
    for base in (local_root, mount_root):
        d = base / user.label
        d.mkdir()
        d.chmod(0o755)
        roots.append(d)
    want = outcomes(roots[0], scenario, user)
    got = outcomes(roots[1], scenario, user, between)
    diff = [f"{w} (kernel fs) != {g} (mount)" for w, g in zip(want, got, strict=False) if w != g]
    assert len(want) == len(got) and not diff, f"as {user.label}:\n" + "\n".join(diff or [f"{want} != {got}"])
    assert want, "the scenario recorded nothing"
    return got


def cleanup(*dirs: Path) -> None:
    for d in dirs:
        subprocess.run(["rm", "-rf", "--one-file-system", str(d)], check=False, timeout=60)
