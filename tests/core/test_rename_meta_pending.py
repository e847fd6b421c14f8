"""A file whose only pending change is metadata (chmod, chown, touch) may have no bytes
in the cache. Renaming it must copy the object in the bucket, never upload the empty
cache file: found on main (the new key got zeros and the old key was deleted)."""

import pytest

from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig

BODY = b"remote bytes " * 1000


@pytest.mark.parametrize("allow_delete", [True, False])
def test_chmod_then_rename_of_an_uncached_file_keeps_its_bytes(tmp_path, allow_delete):
    store = MemoryStore("b")

    async def body(rig):
        if allow_delete:
            store.put("f", BODY)
        else:  # our own creation, its cached bytes evicted by a remount with a fresh cache
            await rig.write_file("f", BODY)
            assert (await rig.sync()).ok
            rig.stack.items.evict(rig.stack.journal.get("f").id)
        await rig.chmod("f", 0o600)  # metadata-only change, nothing downloaded
        await rig.rename("f", "g")
        assert await rig.read_file("g") == BODY
        assert (await rig.sync()).ok
        assert store.objects() == {"g": BODY}
        assert int(store.metadata_of("g")["mode"]) & 0o777 == 0o600

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=allow_delete)


def test_chmod_then_directory_rename_of_uncached_files_keeps_their_bytes(tmp_path):
    store = MemoryStore("b")
    store.put("d/f", BODY)

    async def body(rig):
        await rig.chmod("d/f", 0o600)
        await rig.rename("d", "e")
        assert await rig.read_file("e/f") == BODY
        assert (await rig.sync()).ok
        assert store.objects() == {"e/f": BODY}
        assert int(store.metadata_of("e/f")["mode"]) & 0o777 == 0o600

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)
