"""Mounts of Azure Blob Storage (``az://ACCOUNT/CONTAINER``) on Azurite (issue 13): the same
write-back cache and conflict rules as on S3, checked with Azure's own SDK."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.mount.test_conflicts import CONFLICT_WARNING, conflict_re
from tests.support.mount_helpers import is_mounted, make_tree, wait_gone

pytestmark = [pytest.mark.fuse, pytest.mark.azurite]


@pytest.fixture
def blobs(azurite, azure_container):
    """The test container, through Azure's SDK."""
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(azure_container)


def blob_bytes(blobs, name: str) -> bytes:
    return blobs.get_blob_client(name).download_blob().readall()


def blob_names(blobs) -> set[str]:
    return {b.name for b in blobs.list_blobs()}


def test_copy_a_tree_in_and_read_it_with_the_azure_sdk(azure_mount, blobs, tmp_path):
    m = azure_mount()
    src = tmp_path / "src"
    tree = make_tree(src, count=40, seed=7, max_size=300_000)
    subprocess.run(["cp", "-r", str(src), str(m.path("tree"))], check=True)
    os.chmod(m.path("tree/" + sorted(tree)[0]), 0o600)
    m.sync()
    for rel, local in tree.items():
        assert blob_bytes(blobs, f"tree/{rel}") == local.read_bytes(), rel
    first = sorted(tree)[0]
    meta = blobs.get_blob_client(f"tree/{first}").get_blob_properties().metadata
    st = os.stat(m.path(f"tree/{first}"))
    # s3fs-style attributes, with Azure's names: mtime-ns is stored as mtime_ns
    assert int(meta["mode"]) == st.st_mode and int(meta["uid"]) == st.st_uid and int(meta["gid"]) == st.st_gid
    assert int(meta["mtime_ns"]) == st.st_mtime_ns and int(meta["mtime"]) == st.st_mtime_ns // 10**9
    assert "mtime-ns" not in meta


def test_edit_in_place_and_a_second_writer_keeps_both(azure_mount, blobs):
    m = azure_mount("--write-back-delay", "60", "--metadata-ttl", "1")
    azure_mount.allow_warning(CONFLICT_WARNING + r".*notes\.txt")
    blobs.get_blob_client("notes.txt").upload_blob(b"0123456789" * 10, overwrite=True)
    with open(m.path("notes.txt"), "r+b") as f:  # edit in place: bytes 10..14
        f.seek(10)
        f.write(b"ABCDE")
    m.sync()
    assert blob_bytes(blobs, "notes.txt") == b"0123456789ABCDE56789" + b"0123456789" * 8

    with open(m.path("notes.txt"), "r+b") as f:
        f.write(b"local edit")
    blobs.get_blob_client("notes.txt").upload_blob(b"the other writer", overwrite=True)
    m.sync()
    kept = [n for n in blob_names(blobs) if conflict_re("", "notes", ".txt").fullmatch(n)]
    assert len(kept) == 1, blob_names(blobs)
    assert blob_bytes(blobs, "notes.txt") == b"the other writer"
    assert blob_bytes(blobs, kept[0]).startswith(b"local edit")


def test_uploads_survive_a_killed_daemon(azure_mount, blobs):
    m = azure_mount("--write-back-delay", "3600")
    m.path("unsaved.bin").write_bytes(b"x" * 100_000)
    assert "unsaved.bin" not in blob_names(blobs)
    os.kill(m.pid, signal.SIGKILL)
    assert wait_gone(m.pid, 30)
    subprocess.run(["fusermount3", "-u", "-z", str(m.mountpoint)], check=False, capture_output=True)
    again = azure_mount("--write-back-delay", "3600", mountpoint=m.mountpoint, cache_dir=m.cache_dir)
    again.sync()
    assert blob_bytes(blobs, "unsaved.bin") == b"x" * 100_000


def test_writes_during_an_outage_go_up_when_it_ends(azure_mount, azurite, blobs):
    from tests.support.proxy import Proxy

    with Proxy(("127.0.0.1", azurite.port)) as proxy:
        m = azure_mount("--write-back-delay", "0", endpoint=f"{proxy.endpoint}/devstoreaccount1")
        m.path("before").write_bytes(b"1")
        m.sync()
        proxy.cut()
        m.path("during").write_bytes(b"written while the endpoint is away")
        assert m.path("during").read_bytes() == b"written while the endpoint is away"
        time.sleep(0.5)
        assert "during" not in blob_names(blobs)
        proxy.restore()
        m.sync()
        assert blob_bytes(blobs, "during") == b"written while the endpoint is away"
        m.unmount()
        assert not is_mounted(m.mountpoint)
