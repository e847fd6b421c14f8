"""The test write at mount (daemon.check_writable): bad storage options or read-only
credentials fail the mount with one line; the test object is removed."""

from __future__ import annotations

import pytest

from mountsync.backend.base import AccessDeniedError, InvalidRequestError
from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from mountsync.config import MountConfig
from mountsync.daemon import check_writable
from mountsync.errors import UserError


def _config(**kw) -> MountConfig:
    return MountConfig(bucket="b", mountpoint="/mnt/x", **kw)


def test_a_writable_bucket_passes_and_keeps_nothing():
    mem = MemoryStore("b")
    check_writable(FaultyStore(mem), _config(prefix="p/"))
    assert mem.objects() == {}
    assert mem.stats.requests.get("put") == 1 and mem.stats.requests.get("delete") == 1


def test_read_only_credentials_are_told_to_mount_read_only():
    store = FaultyStore(MemoryStore("b"))
    store.fail_next("put", AccessDeniedError("Access Denied"))
    with pytest.raises(UserError) as err:
        check_writable(store, _config())
    assert "may not write" in str(err.value) and "--read-only" in str(err.value)


def test_a_refused_storage_option_names_the_options():
    store = FaultyStore(MemoryStore("b"))
    store.fail_next("put", InvalidRequestError("InvalidStorageClass", code="InvalidStorageClass"))
    with pytest.raises(UserError) as err:
        check_writable(store, _config(storage_class="FROZEN", sse="aws:kms", sse_kms_key_id="k1"))
    msg = str(err.value)
    assert "refused a test write" in msg and "--storage-class FROZEN" in msg and "--sse-kms-key-id k1" in msg


def test_read_only_mounts_write_nothing():
    mem = MemoryStore("b")
    check_writable(mem, _config(read_only=True))
    assert not mem.stats.requests.get("put")


def test_a_refused_delete_fails_only_with_allow_delete(caplog, allow_log):
    allow_log("could not be deleted")
    store = FaultyStore(MemoryStore("b"))
    store.fail_next("delete", AccessDeniedError("Access Denied"))
    with pytest.raises(UserError) as err:
        check_writable(store, _config(allow_delete=True))
    assert "not delete" in str(err.value)
    store.fail_next("delete", AccessDeniedError("Access Denied"))
    check_writable(store, _config())
    assert any("could not be deleted" in r.getMessage() for r in caplog.records)
