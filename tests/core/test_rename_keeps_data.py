"""Renames never overwrite a conflict copy and never touch hidden keys (SPEC §3, §7;
docs/SEMANTICS.md *Renames*)."""

from __future__ import annotations

import time

import pytest
import trio

from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from tests.support.rig import run_rig, wait_until

CONFLICT_LOG = r"conflict on "


def test_two_conflict_copies_in_the_same_second_do_not_overwrite_each_other(tmp_path, allow_log, monkeypatch):
    """Two renames over a name another writer changed, in the same second on one host: each
    unseen version is kept under its own conflict name (before: the second copy took the
    first one's name, checked against the journal only, and overwrote it)."""
    allow_log(CONFLICT_LOG)
    real_gmtime = time.gmtime
    monkeypatch.setattr(time, "gmtime", lambda t=None: real_gmtime(1_700_000_000))  # one second
    store = MemoryStore("b")
    for k, v in {"a.txt": b"A0", "x": b"X", "y": b"Y"}.items():
        store.put(k, v)

    async def body(rig):
        assert await rig.read_file("a.txt") == b"A0"
        store.put("a.txt", b"V1")  # another writer; the mount has not shown it
        await rig.rename("x", "a.txt")
        assert (await rig.sync()).ok  # the rename's copy runs (renames are carried out later)
        store.put("a.txt", b"V2")  # and again
        await rig.rename("y", "a.txt")
        assert (await rig.sync()).ok
        objects = store.objects()
        assert objects["a.txt"] == b"Y"
        kept = sorted(v for k, v in objects.items() if k.startswith("a.conflict-"))
        assert kept == [b"V1", b"V2"], objects
        assert len(rig.stack.journal.conflicts()) == 2

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True, metadata_ttl=60)


def test_directory_rename_leaves_hidden_keys_in_place(tmp_path, allow_log):
    """Keys that cannot be shown below a renamed directory are never copied or deleted
    (before: they were copied to the new prefix and deleted)."""
    allow_log(r"cannot be shown .* left in place")
    store = MemoryStore("b")
    hidden = {"d//x": b"empty segment", "d/../y": b"dot-dot", "d/sub/./z": b"dot", "d/clash": b"file",
              "d/clash/k": b"dir wins"}
    for k, v in {**hidden, "d/ok": b"OK"}.items():
        store.put(k, v)

    async def body(rig):
        assert sorted(await rig.listdir("d")) == ["clash", "ok", "sub"]
        await rig.rename("d", "e")
        assert (await rig.sync()).ok
        objects = store.objects()
        for k, v in hidden.items():
            if k != "d/clash/k":
                assert objects.get(k) == v, f"hidden key {k!r} was modified"
        assert objects["e/ok"] == b"OK" and "d/ok" not in objects
        assert objects["e/clash/k"] == b"dir wins"
        assert not any(k.startswith("e/") and k[2:] in ("/x", "../y", "clash") for k in objects)
        assert "e/sub/./z" not in objects

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)


@pytest.mark.parametrize("how", ["local-src", "pending-src", "clean-src"])
def test_rename_onto_name_whose_delete_is_in_flight(tmp_path, how):
    """unlink b; mv c b while b's delete is in flight: the rename waits for it, so a single
    writer meets no conflict (before: the mount's own delete was taken for another writer's,
    or the conditional delete of the old b met the renamed file)."""
    inner = MemoryStore("b")
    store = FaultyStore(inner)

    async def body(rig):
        await rig.write_file("b", b"old")
        if how != "local-src":
            await rig.write_file("c", b"new")
        assert (await rig.sync()).ok
        if how == "local-src":
            await rig.write_file("c", b"new")
        elif how == "pending-src":
            await rig.write_at("c", 0, b"N")
        gate = store.hold("delete", "b")
        await rig.unlink("b")
        assert await trio.to_thread.run_sync(gate.wait_held)
        async with trio.open_nursery() as n:
            n.start_soon(rig.rename, "c", "b")
            await wait_until(lambda: bool(rig.stack.reconciler.held_paths))
            gate.release()
        res = await rig.sync()
        assert res.ok, res
        want = b"New" if how == "pending-src" else b"new"
        assert inner.objects() == {"b": want}
        assert await rig.read_file("b") == want
        assert rig.stack.journal.conflicts() == []

    run_rig(body, tmp_path, store, write_back_delay=60, allow_delete=True)
