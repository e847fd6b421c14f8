"""Criteria 3 and 4: overwriting works without --allow-delete; deletes need it."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from tests.support.mount_helpers import etags, file_keys, get_bytes, list_keys

pytestmark = [pytest.mark.fuse, pytest.mark.moto]


def _put(s3, bucket, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_overwrites_work_without_allow_delete(mount, s3, bucket):
    original = {
        "edit.bin": bytes(range(256)) * 64,  # 16 KiB
        "conf/settings.txt": b"name = old\nmode = fast\nname = old again\n",
        "ckpt/model.pt": b"checkpoint v1" * 1000,
    }
    _put(s3, bucket, original)
    m = mount()

    # edit in place: open r+b, seek, write, close
    with open(m.path("edit.bin"), "r+b") as f:
        f.seek(5000)
        f.write(b"PATCHED!")
    edited = bytearray(original["edit.bin"])
    edited[5000:5008] = b"PATCHED!"

    # sed -i (temp file in the same directory, renamed over the original)
    r = subprocess.run(["sed", "-i", "s/old/new/g", str(m.path("conf/settings.txt"))],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr

    # write a temp file, then os.replace over the uploaded one (checkpoint writers)
    tmp = m.path("ckpt/.model.pt.tmp")
    tmp.write_bytes(b"checkpoint v2" * 2000)
    os.replace(tmp, m.path("ckpt/model.pt"))

    assert m.path("edit.bin").read_bytes() == bytes(edited)
    m.sync()
    assert get_bytes(s3, bucket, "edit.bin") == bytes(edited)
    assert get_bytes(s3, bucket, "conf/settings.txt") == b"name = new\nmode = fast\nname = new again\n"
    assert get_bytes(s3, bucket, "ckpt/model.pt") == b"checkpoint v2" * 2000
    assert file_keys(s3, bucket) == set(original), "temp files or conflict copies reached the bucket"


OBJECTS = {
    "keep/file.txt": b"precious\n",
    "emptydir/": b"",  # directory marker
    "full/a.txt": b"a\n",
    "full/sub/b.txt": b"b\n",
}


def _expect_eperm(fn, *args) -> None:
    with pytest.raises(PermissionError) as info:
        fn(*args)
    assert info.value.errno == errno.EPERM, info.value


def test_deletes_need_allow_delete(mount, s3, bucket):
    _put(s3, bucket, OBJECTS)
    before = etags(s3, bucket)
    m = mount()

    # the syscalls: EPERM
    _expect_eperm(os.unlink, m.path("keep/file.txt"))
    _expect_eperm(os.rmdir, m.path("emptydir"))
    _expect_eperm(os.rename, m.path("keep/file.txt"), m.path("keep/moved.txt"))
    _expect_eperm(os.rename, m.path("full"), m.path("full-renamed"))
    with pytest.raises(OSError) as info:
        os.rmdir(m.path("full"))
    assert info.value.errno in (errno.EPERM, errno.ENOTEMPTY), info.value

    # the programs: fail, say "Operation not permitted"
    for argv in (["rm", "-f", str(m.path("keep/file.txt"))],
                 ["rmdir", str(m.path("emptydir"))],
                 ["mv", str(m.path("keep/file.txt")), str(m.path("moved.txt"))],
                 ["rm", "-rf", str(m.path("full"))]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert r.returncode != 0, f"{argv[0]} succeeded without --allow-delete"
        assert "Operation not permitted" in r.stderr, (argv, r.stderr)

    assert m.path("keep/file.txt").read_bytes() == b"precious\n"
    assert sorted(os.listdir(m.mountpoint)) == ["emptydir", "full", "keep"]
    assert sorted(os.listdir(m.path("full"))) == ["a.txt", "sub"]
    m.sync()
    assert etags(s3, bucket) == before
    r = m.unmount()
    assert r.returncode == 0, r.stderr

    # with --allow-delete the same programs reach the bucket
    m2 = mount("--allow-delete")
    for argv in (["rm", str(m2.path("keep/file.txt"))],
                 ["rmdir", str(m2.path("emptydir"))],
                 ["mv", str(m2.path("full/a.txt")), str(m2.path("moved-a.txt"))],
                 ["rm", "-r", str(m2.path("full/sub"))]):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, (argv, r.stderr)
    m2.sync()
    keys = set(list_keys(s3, bucket))
    assert "keep/file.txt" not in keys
    assert "emptydir/" not in keys
    assert "full/a.txt" not in keys and get_bytes(s3, bucket, "moved-a.txt") == b"a\n"
    assert not any(k.startswith("full/sub/") for k in keys), keys


def test_own_creations_are_removable_until_another_writer_changes_them(mount, s3, bucket):
    """SPEC §6 on a real mount: what this cache dir created may be removed and renamed
    without --allow-delete, also after a remount with the same cache dir; another writer's
    change protects it again, and a fresh cache dir protects everything."""
    s3.put_object(Bucket=bucket, Key="before.txt", Body=b"existed before\n")
    m = mount("--metadata-ttl", "0")
    for name in ("mine1", "mine2", "mine3", "theirs-later"):
        m.path(name).write_bytes(name.encode())
    m.path("dir").mkdir()
    m.path("dir/inner").write_bytes(b"inner")
    m.sync()
    os.unlink(m.path("mine1"))
    os.rename(m.path("dir"), m.path("dir2"))
    for op in (lambda: os.unlink(m.path("before.txt")), lambda: os.rename(m.path("before.txt"), m.path("x"))):
        with pytest.raises(OSError) as info:
            op()
        assert info.value.errno == errno.EPERM
    s3.put_object(Bucket=bucket, Key="theirs-later", Body=b"changed by another writer\n")
    assert m.path("theirs-later").read_bytes() == b"changed by another writer\n"
    with pytest.raises(OSError) as info:
        os.unlink(m.path("theirs-later"))
    assert info.value.errno == errno.EPERM
    m.sync()
    assert m.unmount().returncode == 0

    again = mount(mountpoint=m.mountpoint, cache_dir=m.cache_dir)  # same cache dir
    os.rename(again.path("mine2"), again.path("mine2-renamed"))
    again.sync()
    assert again.unmount().returncode == 0

    fresh = mount(mountpoint=m.mountpoint)  # a fresh cache dir has created nothing
    for name in ("mine3", "mine2-renamed", "dir2/inner"):
        with pytest.raises(OSError) as info:
            os.unlink(fresh.path(name))
        assert info.value.errno == errno.EPERM, name
    fresh.sync()
    assert file_keys(s3, bucket) == {"before.txt", "mine2-renamed", "mine3", "theirs-later", "dir2/inner"}
    assert get_bytes(s3, bucket, "theirs-later") == b"changed by another writer\n"
