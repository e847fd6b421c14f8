"""Changes made in the bucket by another tool, seen through a real mount (issue: a name
created in the bucket stayed ENOENT for the metadata TTL), and concurrent creates and
unlinks in one directory (issue: EIO from a journal collision)."""

from __future__ import annotations

import errno
import os
import random
import stat
import threading
import time

import pytest

from tests.support.mount_helpers import file_keys

pytestmark = [pytest.mark.fuse, pytest.mark.moto]

DEFAULT_TTL = 5.0  # --metadata-ttl default; the negative TTL follows it (docs/SEMANTICS.md)


def _seen(pred, within: float) -> bool:
    """Poll ``pred`` until it holds or ``within`` seconds passed (the documented bound)."""
    deadline = time.monotonic() + within
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def _read(p) -> bytes | None:
    try:
        return p.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        # documented: bytes not cached yet, of an object replaced since it was last
        # checked, fail the read (If-Match); the next open sees the new version
        if exc.errno == errno.EIO:
            return None
        raise


def test_external_changes_are_seen_at_once_with_both_ttls_zero(mount, s3, bucket):
    m = mount("--metadata-ttl", "0", "--negative-metadata-ttl", "0")
    f = m.path("created.txt")
    assert not f.exists()  # the kernel and the daemon both learn "missing" here
    s3.put_object(Bucket=bucket, Key="created.txt", Body=b"data\n")
    assert f.exists()
    assert f.read_bytes() == b"data\n"

    s3.put_object(Bucket=bucket, Key="created.txt", Body=b"new new\n")
    assert f.read_bytes() == b"new new\n"

    s3.put_object(Bucket=bucket, Key="directory/inside.txt", Body=b"data\n")
    assert m.path("directory").is_dir()
    assert "directory" in os.listdir(m.mountpoint)
    assert m.path("directory/inside.txt").read_bytes() == b"data\n"

    s3.copy_object(Bucket=bucket, Key="created.txt", CopySource={"Bucket": bucket, "Key": "created.txt"},
                   Metadata={"mode": str(stat.S_IFREG | 0o750)}, MetadataDirective="REPLACE")
    assert stat.S_IMODE(f.stat().st_mode) == 0o750

    s3.delete_object(Bucket=bucket, Key="created.txt")
    assert not f.exists()


def test_external_changes_are_seen_within_the_ttl_by_default(mount, s3, bucket):
    m = mount()
    mount.allow_warning(r"changed in the bucket while being read")
    f = m.path("created.txt")
    assert not f.exists()
    s3.put_object(Bucket=bucket, Key="created.txt", Body=b"data\n")
    # the daemon trusts "missing" for the negative TTL, the kernel for what is left of it
    assert _seen(f.exists, 2 * DEFAULT_TTL + 5)
    s3.put_object(Bucket=bucket, Key="created.txt", Body=b"new new\n")
    assert _seen(lambda: _read(f) == b"new new\n", 2 * DEFAULT_TTL + 5)
    s3.delete_object(Bucket=bucket, Key="created.txt")
    assert _seen(lambda: not f.exists(), 2 * DEFAULT_TTL + 5)


NAMES = [str(i) for i in range(1, 6)]
THREADS = 8
OPS_PER_THREAD = 40


def test_concurrent_directory_updates_never_fail_with_eio(mount, s3, bucket):
    """The s3fs-fuse concurrent-directory-updates pattern: threads list, read, remove,
    rename and re-create the same few names in one directory (bounded by operation count);
    afterwards the mount and the bucket hold the same names and bytes."""
    m = mount("--allow-delete", "--write-back-delay", "0")
    d = m.path("dir")
    d.mkdir()
    for n in NAMES:
        (d / n).write_bytes(b"foo\n")
    failures: list[str] = []

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        for _ in range(OPS_PER_THREAD):
            name = rnd.choice(NAMES)
            p = d / name
            try:
                op = rnd.choice(["cat", "rm", "write", "write", "ls", "mv"])
                if op == "cat":
                    p.read_bytes()
                elif op == "rm":
                    p.unlink()
                elif op == "write":
                    p.write_bytes(b"foo\n")
                elif op == "mv":
                    os.replace(p, d / rnd.choice(NAMES))
                else:
                    for entry in os.listdir(d):
                        os.stat(d / entry)
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.EEXIST):
                    failures.append(f"{op} {name}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    m.sync()
    shown = {f"dir/{n}": (d / n).read_bytes() for n in os.listdir(d)}
    keys = {k for k in file_keys(s3, bucket) if k.startswith("dir/") and k != "dir/"}
    assert set(shown) == keys
    assert all(v == b"foo\n" for v in shown.values())
    r = m.unmount()
    assert r.returncode == 0, r.stderr
