"""Mounts of Google Cloud Storage (``gs://BUCKET``) on the GCS emulator (issue 13): the same
write-back cache and conflict rules as on S3, checked with Google's own SDK. The emulator
ignores generation preconditions (tests/support/gcs_emulator.py): the mount's probe finds
that and checks with HEAD first, as on moto."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.mount.test_conflicts import CONFLICT_WARNING, conflict_re
from tests.support.mount_helpers import is_mounted, make_tree, wait_gone

pytestmark = [pytest.mark.fuse, pytest.mark.gcs]


@pytest.fixture
def objects(gcs_emulator, gcs_bucket):
    """The test bucket, through Google's SDK."""
    return gcs_emulator.client().bucket(gcs_bucket)


def object_bytes(objects, name: str) -> bytes:
    return objects.blob(name).download_as_bytes()


def object_names(objects) -> set[str]:
    return {b.name for b in objects.client.list_blobs(objects)}


def test_copy_a_tree_in_and_read_it_with_the_google_sdk(gcs_mount, objects, tmp_path):
    m = gcs_mount()
    src = tmp_path / "src"
    tree = make_tree(src, count=30, seed=11, max_size=300_000)
    subprocess.run(["cp", "-r", str(src), str(m.path("tree"))], check=True)
    m.sync()
    for rel, local in tree.items():
        assert object_bytes(objects, f"tree/{rel}") == local.read_bytes(), rel
    first = sorted(tree)[0]
    meta = objects.get_blob(f"tree/{first}").metadata
    st = os.stat(m.path(f"tree/{first}"))
    assert int(meta["mode"]) == st.st_mode and int(meta["uid"]) == st.st_uid
    assert int(meta["mtime-ns"]) == st.st_mtime_ns  # GCS keeps the s3fs-style names as they are


def test_a_big_file_goes_up_as_a_composite_and_leaves_no_parts(gcs_mount, objects):
    m = gcs_mount("--multipart-threshold", "5MiB", "--part-size", "5MiB")
    data = os.urandom(12 * 1024 * 1024)
    m.path("big.bin").write_bytes(data)
    m.sync()
    assert object_bytes(objects, "big.bin") == data
    assert not [n for n in object_names(objects) if n.startswith(".mountsync-parts/")]


def test_edit_in_place_and_a_second_writer_keeps_both(gcs_mount, objects):
    m = gcs_mount("--write-back-delay", "60", "--metadata-ttl", "1")
    gcs_mount.allow_warning(CONFLICT_WARNING + r".*notes\.txt")
    objects.blob("notes.txt").upload_from_string(b"0123456789" * 10)
    with open(m.path("notes.txt"), "r+b") as f:
        f.seek(10)
        f.write(b"ABCDE")
    m.sync()
    assert object_bytes(objects, "notes.txt") == b"0123456789ABCDE56789" + b"0123456789" * 8

    with open(m.path("notes.txt"), "r+b") as f:
        f.write(b"local edit")
    objects.blob("notes.txt").upload_from_string(b"the other writer")
    m.sync()
    kept = [n for n in object_names(objects) if conflict_re("", "notes", ".txt").fullmatch(n)]
    assert len(kept) == 1, object_names(objects)
    assert object_bytes(objects, "notes.txt") == b"the other writer"
    assert object_bytes(objects, kept[0]).startswith(b"local edit")


def test_uploads_survive_a_killed_daemon(gcs_mount, objects):
    m = gcs_mount("--write-back-delay", "3600")
    m.path("unsaved.bin").write_bytes(b"y" * 100_000)
    os.kill(m.pid, signal.SIGKILL)
    assert wait_gone(m.pid, 30)
    subprocess.run(["fusermount3", "-u", "-z", str(m.mountpoint)], check=False, capture_output=True)
    again = gcs_mount("--write-back-delay", "3600", mountpoint=m.mountpoint, cache_dir=m.cache_dir)
    again.sync()
    assert object_bytes(objects, "unsaved.bin") == b"y" * 100_000


def test_writes_during_an_outage_go_up_when_it_ends(gcs_mount, gcs_emulator, objects):
    from tests.support.proxy import Proxy

    with Proxy(("127.0.0.1", gcs_emulator.port)) as proxy:
        m = gcs_mount("--write-back-delay", "0", endpoint=proxy.endpoint)
        m.path("before").write_bytes(b"1")
        m.sync()
        proxy.cut()
        m.path("during").write_bytes(b"written while the endpoint is away")
        assert m.path("during").read_bytes() == b"written while the endpoint is away"
        time.sleep(0.5)
        assert "during" not in object_names(objects)
        proxy.restore()
        m.sync()
        assert object_bytes(objects, "during") == b"written while the endpoint is away"
        m.unmount()
        assert not is_mounted(m.mountpoint)
