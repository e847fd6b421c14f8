"""The differential checker of the mount model (``test_mount_model.py``): an op runs on a real
mount and on a plain local directory, and the outcomes, the trees and (after ``sync``) the
bucket must agree. ``run_ops`` replays an explicit op list as the machine does (regression
tests: ``test_mount_model_regressions.py``).

Operations (tuples, so that a failure can be kept as an explicit op list)::

    ("create", p, data, mode)       open(O_CREAT|O_WRONLY|O_TRUNC, mode) + write + close
    ("write", p, offset, data)      open("r+b"), seek, write, close
    ("append", p, data, creat)      open(O_WRONLY|O_APPEND[|O_CREAT]) + write + close
    ("truncate", p, size)           os.truncate
    ("rename", src, dst)            os.rename (files and directories)
    ("mkdir", p) ("rmdir", p) ("unlink", p)
    ("chmod", p, mode)              os.chmod (follows symlinks)
    ("utime", p, mtime_ns, follow)  os.utime(ns=(mtime_ns, mtime_ns), follow_symlinks=follow)
    ("symlink", target, p)          os.symlink
    ("readlink", p) ("read", p)     results compared
    ("sync",)                       ``mountsync sync`` (mount side only), then the bucket must
                                    hold the local tree (bodies, x-amz-meta-mode/-mtime, markers)
    ("wait",)                       sleep past --metadata-ttl (uploads done, caches expired)
    ("nap",)                        sleep just past --write-back-delay (uploads in flight);
    ("nap", seconds)                for regression tests: sleep that long
    ("other_put", p, data, wait)    another writer puts key ``p`` (a fresh name, in an existing
                                    directory) in the bucket; the local dir gets the same file;
                                    with ``wait`` a sleep past --metadata-ttl follows, so the
                                    mount shows it
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import time
from collections import Counter
from pathlib import Path

from tests.support.mount_helpers import list_keys

TTL_WAIT = 1.2  # > --metadata-ttl, and > write-back delay + upload of a few small files
NAP = 0.25  # just past the write-back delay: the next op may meet an upload in flight
# explicit mtimes: 2001-09-09 .. 2011-03-13 -- never "now", so recognisable on both sides
EXPLICIT_LO, EXPLICIT_HI = 1_000_000_000, 1_300_000_000


def _explicit(mtime_ns: int) -> bool:
    return EXPLICIT_LO <= mtime_ns // 10**9 <= EXPLICIT_HI + 1


def _mtime_class(mtime_ns: int):
    """The second of an explicit mtime; "now" for one set by the test's own writes (within the
    last hour); the raw value otherwise (never so in the local dir, so it shows as a difference)."""
    if _explicit(mtime_ns):
        return mtime_ns // 10**9
    if abs(mtime_ns / 1e9 - time.time()) < 3600:
        return "now"
    return f"odd mtime {mtime_ns}"


# ----------------------------------------------------------------- operations

def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def apply(root: Path, op: tuple):
    """Run ``op`` below ``root``; return its result (None, bytes or str). OSError propagates."""
    kind, args = op[0], op[1:]
    if kind == "create":
        p, data, mode = args
        fd = os.open(root / p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, mode)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    elif kind == "write":
        p, offset, data = args
        with open(root / p, "r+b") as f:
            f.seek(offset)
            f.write(data)
    elif kind == "append":
        p, data, creat = args
        fd = os.open(root / p, os.O_WRONLY | os.O_APPEND | (os.O_CREAT if creat else 0), 0o644)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    elif kind == "truncate":
        p, size = args
        os.truncate(root / p, size)
    elif kind == "rename":
        src, dst = args
        os.rename(root / src, root / dst)
    elif kind == "mkdir":
        os.mkdir(root / args[0])
    elif kind == "rmdir":
        os.rmdir(root / args[0])
    elif kind == "unlink":
        os.unlink(root / args[0])
    elif kind == "chmod":
        p, mode = args
        os.chmod(root / p, mode)
    elif kind == "utime":
        p, mtime_ns, follow = args
        os.utime(root / p, ns=(mtime_ns, mtime_ns), follow_symlinks=follow)
    elif kind == "symlink":
        target, p = args
        os.symlink(target, root / p)
    elif kind == "readlink":
        return os.readlink(root / args[0])
    elif kind == "read":
        with open(root / args[0], "rb") as f:
            return f.read()
    else:
        raise ValueError(f"unknown op {op!r}")
    return None


def fmt_op(op: tuple) -> str:
    """``repr`` of an op, ready to paste into a regression test (modes in octal, long runs shortened)."""
    parts = []
    for i, x in enumerate(op):
        if isinstance(x, bytes) and len(x) > 16 and len(set(x)) == 1:
            parts.append(f"{x[:1]!r} * {len(x)}")
        elif isinstance(x, int) and not isinstance(x, bool) and (op[0], i) in (("create", 3), ("chmod", 2)):
            parts.append(oct(x))
        else:
            parts.append(repr(x))
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def outcome(root: Path, op: tuple):
    try:
        return ("ok", apply(root, op))
    except OSError as exc:
        return ("err", errno.errorcode.get(exc.errno, exc.errno))


def snapshot(root: Path, contents: bool = True) -> dict[str, tuple]:
    """{relative path: description} of every entry below ``root`` (symlinks not followed)."""
    out: dict[str, tuple] = {}

    def walk(d: Path, rel: str) -> None:
        for name in sorted(os.listdir(d)):
            p = d / name
            r = f"{rel}{name}"
            st_ = os.lstat(p)
            mtime = _mtime_class(st_.st_mtime_ns)
            perm = f"{oct(stat.S_IMODE(st_.st_mode))} {st_.st_uid}:{st_.st_gid}"
            if stat.S_ISLNK(st_.st_mode):
                out[r] = ("link", os.readlink(p), perm, mtime)
            elif stat.S_ISDIR(st_.st_mode):
                out[r] = ("dir", perm, mtime)
                walk(p, r + "/")
            elif stat.S_ISREG(st_.st_mode):
                data = p.read_bytes() if contents else b""
                out[r] = ("file", st_.st_size, len(data), data if len(data) <= 64 else _digest(data), perm, mtime)
            else:
                out[r] = ("other", st_.st_mode)

    walk(root, "")
    return out


def _digest(data: bytes) -> str:
    nonzero = len(data) - data.count(0)
    return f"sha1:{hashlib.sha1(data).hexdigest()[:12]} ({nonzero} non-zero bytes)"


def tree_diff(local: dict, mnt: dict) -> str:
    lines = []
    for k in sorted(set(local) | set(mnt)):
        if local.get(k) != mnt.get(k):
            lines.append(f"  {k}: local={local.get(k, '(missing)')!r} mount={mnt.get(k, '(missing)')!r}")
    return "\n".join(lines)


def clear(root: Path) -> None:
    """Remove everything below ``root`` without following links (chmod 000 does not stop root)."""
    for name in os.listdir(root):
        p = root / name
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)


class Differ:
    """Applies ops to the mount and the local dir; compares outcomes and trees."""

    def __init__(self, mnt, local: Path, s3=None, proxy=None) -> None:
        self.mnt = mnt
        self.local = local
        self.s3 = s3
        self.proxy = proxy  # in front of the endpoint: ("cut",) and ("restore",) steps
        self.ops: list[tuple] = []
        self.log_offset = 0  # daemon.log is checked from here on
        self.stats: Counter[str] = Counter()  # "op:ok" / "op:ERRNO" over the whole run

    def history(self) -> str:
        return "ops = [\n" + "".join(f"    {fmt_op(op)},\n" for op in self.ops) + "]"

    def fail(self, what: str) -> None:
        raise AssertionError(f"{what}\n{self.history()}\n{self.mnt.log_tail(15)}")

    def step(self, op: tuple):
        self.ops.append(op)
        if op[0] in ("wait", "nap"):
            self.stats[op[0]] += 1
            time.sleep(TTL_WAIT if op[0] == "wait" else op[1] if len(op) > 1 else NAP)
            return None
        if op[0] in ("cut", "restore"):
            if self.proxy is None:
                raise AssertionError(f"{op[0]} needs the proxy")
            self.stats[op[0]] += 1
            self.proxy.cut() if op[0] == "cut" else self.proxy.restore()
            return None
        if op[0] == "other_put":
            self.stats["other_put"] += 1
            self.other_put(*op[1:])
            return None
        if op[0] == "sync":
            self.stats["sync"] += 1
            self.mnt.sync()
            self.check_log(" after sync")
            if self.s3 is not None:
                self.check_bucket()
            return None
        want = outcome(self.local, op)
        got = outcome(self.mnt.mountpoint, op)
        if want != got:
            self.fail(f"{fmt_op(op)}: local dir gave {want!r}, mount gave {got!r}")
        self.stats[f"{op[0]}:{want[1] if want[0] == 'err' else 'ok'}"] += 1
        return want

    def other_put(self, path: str, data: bytes, wait: bool = True) -> None:
        """Another writer: the object goes straight into the bucket (with the s3fs mode header,
        as the local file has 0644), the same file into the local dir; then (``wait``) past the
        TTL. Without ``wait`` an op that shows the key at once must follow (a directory rename)."""
        if self.s3 is None:
            raise AssertionError("other_put needs the s3 client")
        self.s3.put_object(Bucket=self.mnt.bucket, Key=path, Body=data, Metadata={"mode": str(0o100644)})
        p = self.local / path
        parent = os.stat(p.parent)  # another writer's key does not touch the directory's attributes
        p.write_bytes(data)
        os.chmod(p, 0o644)
        os.utime(p.parent, ns=(parent.st_atime_ns, parent.st_mtime_ns))
        if wait:
            time.sleep(TTL_WAIT)

    def check_tree(self, when: str = "") -> None:
        want = snapshot(self.local)
        got = snapshot(self.mnt.mountpoint)
        if want != got:
            self.fail(f"trees differ{when}:\n{tree_diff(want, got)}")
        self.check_log(when)

    def check_log(self, when: str = "") -> None:
        """A single writer never meets a conflict, and nothing here deserves a WARNING: a new
        WARNING/ERROR line in daemon.log fails the step that caused it (the fixture's scan at
        teardown would only blame the whole test)."""
        try:
            with open(self.mnt.log_file, "rb") as f:
                f.seek(self.log_offset)
                new = f.read()
        except FileNotFoundError:
            return
        complete = new[:new.rfind(b"\n") + 1]
        self.log_offset += len(complete)
        bad = [line for line in complete.decode(errors="replace").splitlines()
               if " WARNING " in line or " ERROR " in line or "Traceback" in line]
        if bad:
            self.fail(f"daemon.log{when}:\n" + "\n".join(bad[:10]))

    def check_bucket(self) -> None:
        """After ``sync``: the bucket holds the local tree (SPEC §5/§6, docs/SEMANTICS.md *Attributes*).

        Every file and symlink is an object with the same body (a link's body is its target) and
        ``x-amz-meta-mode`` equal to the local ``st_mode`` (mtime to the second where set by utime);
        no other object; a directory marker only for a local directory (a stale marker would make
        a deleted directory reappear), and its mode, when stored, is the local one."""
        want = snapshot(self.local)
        problems = []
        keys = list_keys(self.s3, self.mnt.bucket)
        objects = {k for k in keys if not k.endswith("/")}
        markers = {k[:-1] for k in keys if k.endswith("/")}
        expected = {p for p, d in want.items() if d[0] in ("file", "link")}
        dirs = {p for p, d in want.items() if d[0] == "dir"}
        for k in sorted(objects - expected):
            problems.append(f"  object {k!r} is in the bucket but not in the tree ({want.get(k, ('missing',))[0]})")
        for k in sorted(expected - objects):
            problems.append(f"  {k!r} ({want[k][0]}) is not in the bucket")
        for k in sorted(markers - dirs):
            problems.append(f"  directory marker {k + '/'!r} in the bucket, but no directory {k!r}")
        for d in sorted(dirs):
            if d not in markers and not any(k.startswith(d + "/") for k in keys):
                problems.append(f"  directory {d!r} is not in the bucket (no marker, no keys below)")
        for k in sorted(objects & expected):
            obj = self.s3.get_object(Bucket=self.mnt.bucket, Key=k)
            body, meta = obj["Body"].read(), obj.get("Metadata", {})
            st_ = os.lstat(self.local / k)
            wanted = os.readlink(self.local / k).encode() if want[k][0] == "link" else (self.local / k).read_bytes()
            if body != wanted:
                problems.append(f"  {k!r}: bucket body {body[:40]!r}... ({len(body)} B) != local "
                                f"{wanted[:40]!r}... ({len(wanted)} B)")
            if "mode" in meta and int(meta["mode"]) != st_.st_mode:
                problems.append(f"  {k!r}: x-amz-meta-mode {oct(int(meta['mode']))} != local {oct(st_.st_mode)}")
            if _explicit(st_.st_mtime_ns) and meta.get("mtime") != str(st_.st_mtime_ns // 10**9):
                problems.append(f"  {k!r}: x-amz-meta-mtime {meta.get('mtime')} != local {st_.st_mtime_ns // 10**9}")
        for d in sorted(markers & dirs):
            meta = self.s3.head_object(Bucket=self.mnt.bucket, Key=d + "/").get("Metadata", {})
            st_ = os.lstat(self.local / d)
            if "mode" in meta and int(meta["mode"]) != st_.st_mode:
                problems.append(f"  marker {d + '/'!r}: x-amz-meta-mode {oct(int(meta['mode']))} != local "
                                f"{oct(st_.st_mode)}")
        if problems:
            self.fail("after sync the bucket does not match the tree:\n" + "\n".join(problems))

    def reset(self) -> None:
        """Empty both sides; through the mount (--allow-delete), then sync; the bucket must be empty."""
        s3 = self.s3
        clear(self.local)
        try:
            clear(self.mnt.mountpoint)
        except OSError as exc:
            self.fail(f"clearing the mount failed: {exc!r}")
        self.mnt.sync()
        self.check_log(" while clearing both sides")
        left = os.listdir(self.mnt.mountpoint)
        if left:
            self.fail(f"mount not empty after clearing + sync: {left}")
        if s3 is not None:
            keys = list_keys(s3, self.mnt.bucket)
            if keys:
                self.fail(f"bucket not empty after clearing the mount + sync: {keys}")
        self.ops = []


def run_ops(mnt, local: Path, ops: list[tuple], s3=None, tree_after_each_op: bool = True, proxy=None) -> None:
    """Replay an explicit op list against the mount and ``local``, checking as the machine does;
    at the end a sync (+ bucket check), a wait past the TTL and a last tree comparison.

    ``tree_after_each_op=False`` compares the trees only after ``sync``/``wait`` and at the end:
    for races whose window (an upload in flight) is shorter than reading both trees."""
    d = Differ(mnt, local, s3, proxy)
    d.reset()
    d.check_tree(" at the start")
    for op in ops:
        d.step(op)
        if tree_after_each_op or op[0] in ("sync", "wait"):
            d.check_tree(f" after {fmt_op(op)}")
    d.step(("sync",))
    d.step(("wait",))
    d.check_tree(" after the final sync + wait")

