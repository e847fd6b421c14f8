"""The conditional-request probe (docs/SEMANTICS.md *Conflicts*): conditional deletes are
relied on only where the server honours them."""

from __future__ import annotations

from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig

CONFLICT_LOG = r"conflict on "


class IgnoresDeleteIfMatch(MemoryStore):
    def delete(self, key, *, if_match=None):
        return super().delete(key)


def test_server_ignoring_if_match_on_delete_is_detected(tmp_path, allow_log):
    """A server that honours PUT If-None-Match but ignores DELETE If-Match: the probe notices,
    and a delete of a file another writer changed HEADs first, so their version stays
    (before: the probe checked PUT only and the other writer's version was deleted)."""
    allow_log(CONFLICT_LOG)
    allow_log("ignores conditional deletes")
    store = IgnoresDeleteIfMatch("b")

    async def body(rig):
        await rig.write_file("f", b"mine")
        assert (await rig.sync()).ok
        store.put("f", b"other")  # another writer, unseen by the mount
        await rig.unlink("f")
        assert (await rig.sync()).ok
        assert store.objects() == {"f": b"other"}
        (c,) = rig.stack.journal.conflicts()
        assert c.kind == "delete-refused"
        caps = rig.stack.store.caps
        assert caps.conditional_writes and not caps.conditional_deletes
        assert rig.stack.journal.get_meta("conditional_deletes") == "no"

    run_rig(body, tmp_path, store, write_back_delay=60, metadata_ttl=60, allow_delete=True,
            conditional_writes="auto")


def test_probe_on_a_server_honouring_everything(tmp_path):
    store = MemoryStore("b")

    async def body(rig):
        caps = rig.stack.store.caps
        assert caps.conditional_writes and caps.conditional_deletes and caps.conditional_copies
        assert store.objects() == {}  # the probe objects are gone

    run_rig(body, tmp_path, store, conditional_writes="auto")
