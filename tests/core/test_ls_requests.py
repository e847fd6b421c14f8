"""`ls -l` of a big directory, counted in requests (the performance issue): attributes come
from the listing plus one HEAD per new or changed object, issued concurrently; a persistent
metadata cache keyed by key + ETag spares the HEADs across restarts; revalidation after the
TTL is one LIST per directory.

The clock is a ``MockClock`` that moves only when the test jumps it, so "within the TTL"
and "after the TTL" are states, not timings."""

from __future__ import annotations

import stat
import threading
import time

import trio
import trio.testing

from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from mountsync.core.listings import RELIST_MAX
from mountsync.core.namespace import RELIST_SPACING
from tests.support.rig import ROOT_INO, run_rig, wait_until

N = 1000
TTL = 60.0


def _meta(mode: int, uid: int = 1000) -> dict[str, str]:
    return {"mode": str(stat.S_IFREG | mode), "uid": str(uid), "gid": "100", "mtime": "1700000000"}


def _fill(store: MemoryStore) -> None:
    for i in range(N):
        store.put(f"d/f{i:04d}", b"x" * (i % 7), _meta(0o640))


async def _ls_l(rig, path: str = "d") -> dict[str, object]:
    """What `ls -l` does: readdir, then lookup + getattr of every name."""
    d = await rig.ino(path)
    dh = await rig.fs.opendir(d)
    try:
        names = [name for name, _a, _n in await rig.fs.readdir(dh, 0)]
    finally:
        rig.fs.releasedir(dh)
    out = {}
    for name in names:
        a = await rig.fs.lookup(d, name)
        out[name] = await rig.fs.getattr(a.ino)
    return out


async def _settle(pred) -> bool:
    """Wait for ``pred`` in real time (up to 60 s): the mock clock stands still meanwhile."""
    for _ in range(3000):
        if pred():
            return True
        await trio.to_thread.run_sync(time.sleep, 0.02)
    return pred()


def _requests(store: MemoryStore) -> dict[str, int]:
    return {op: n for op, n in store.stats.requests.items() if n}


def test_ls_l_heads_concurrently_then_lists_only(tmp_path):
    inner = MemoryStore("b")
    _fill(inner)
    store = FaultyStore(inner)
    clock = trio.testing.MockClock()

    async def body(rig):
        await rig.fs.lookup(ROOT_INO, "d")
        inner.stats.reset()
        gate = store.hold("head")
        result: dict[str, object] = {}

        async def ls():
            result.update(await _ls_l(rig))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ls)
            # more than one HEAD is in flight at once (held at the gate), not one after another
            concurrent = await trio.to_thread.run_sync(lambda: gate.wait_held(2, timeout=5))
            gate.release()
        assert concurrent, "HEADs were issued one at a time"
        assert len(result) == N
        a = result["f0003"]
        assert stat.S_IMODE(a.mode) == 0o640 and a.uid == 1000 and a.size == 3
        first = _requests(inner)
        assert set(first) == {"list", "head"} and first["head"] <= N, first

        inner.stats.reset()  # within the TTL: nothing asked
        await _ls_l(rig)
        assert _requests(inner) == {}

        clock.jump(TTL + 1)  # after the TTL, nothing changed: LIST only
        await _ls_l(rig)
        assert set(_requests(inner)) == {"list"}, _requests(inner)

        inner.put("d/f0007", b"changed", _meta(0o600, uid=7))  # another writer
        clock.jump(TTL + 1)
        inner.stats.reset()
        after = await _ls_l(rig)
        assert _requests(inner).get("head") == 1, _requests(inner)
        assert set(_requests(inner)) == {"list", "head"}
        a = after["f0007"]
        assert stat.S_IMODE(a.mode) == 0o600 and a.uid == 7 and a.size == 7

    run_rig(body, tmp_path, store, mock_clock=clock, metadata_ttl=TTL)


def test_after_a_restart_an_unchanged_bucket_costs_lists_only(tmp_path):
    store = MemoryStore("b")
    _fill(store)
    store.put("d/link", b"f0001", {"mode": str(stat.S_IFLNK | 0o777)})
    clock = trio.testing.MockClock()

    async def body(rig):
        before = await _ls_l(rig)
        assert stat.S_ISLNK(before["link"].mode)
        await rig.restart()
        store.stats.reset()
        after = await _ls_l(rig)
        assert set(_requests(store)) == {"list"}, _requests(store)
        assert await rig.readlink("d/link") == "f0001"
        assert set(_requests(store)) == {"list"}, _requests(store)
        for name, a in before.items():
            b = after[name]
            assert (a.mode, a.uid, a.gid, a.size, a.mtime_ns) == (b.mode, b.uid, b.gid, b.size, b.mtime_ns), name

    run_rig(body, tmp_path, store, mock_clock=clock, metadata_ttl=TTL)


def test_big_directory_is_shown_as_last_listed_while_it_is_relisted(tmp_path):
    """``ls`` of a directory of more than RELIST_MAX names after the TTL does not wait for
    its ten LIST pages: it shows the last listing while one background listing revalidates
    it; the next ``ls`` shows what that listing found."""
    store = MemoryStore("b")
    n = RELIST_MAX + 200
    for i in range(n):
        store.put(f"big/o{i:05d}", b"x")

    async def body(rig):
        assert len(await rig.listdir("big")) == n
        big = rig.fs.node(await rig.ino("big"))
        store.put("big/new", b"another writer's")
        await trio.sleep(0.6)  # past the TTL: the listing is stale
        lists_before = store.stats.requests.get("list", 0)
        names = await rig.listdir("big")
        assert "new" not in names and len(names) == n  # the last listing, at once
        assert await wait_until(lambda: "new" in (big.children or {}), timeout=60)
        assert store.stats.requests.get("list", 0) > lists_before  # relisted in the background
        assert "new" in await rig.listdir("big")

    run_rig(body, tmp_path, store, metadata_ttl=0.5)


def test_lookups_in_a_big_directory_after_the_ttl_relist_it_once_not_head_each_name(tmp_path):
    """`ls -l` of a directory bigger than one LIST page can outlive the TTL (100,000 names:
    minutes of HEADs for never-seen objects). A lookup after the TTL then shows the name as
    last known and one background listing revalidates the directory: no HEAD per name
    waited for. A change by another writer shows once that listing is in."""
    store = MemoryStore("b")
    n = RELIST_MAX + 200
    for i in range(n):
        store.put(f"big/o{i:05d}", b"x", _meta(0o640))
    clock = trio.testing.MockClock()

    async def body(rig):
        first = await _ls_l(rig, "big")
        assert len(first) == n
        d = await rig.ino("big")
        big = rig.fs.node(d)
        store.put("big/o00007", b"changed", _meta(0o600, uid=7))  # another writer
        clock.jump(TTL + 1)
        store.stats.reset()
        sizes = {}
        for i in range(n):  # the kernel's entries expired: a lookup of every name
            a = await rig.fs.lookup(d, f"o{i:05d}")
            sizes[f"o{i:05d}"] = a.size
        assert sizes["o00007"] == 1  # as last known, not waited for
        assert await _settle(lambda: big.children is not None and big.children["o00007"].size == 7)
        assert await _settle(lambda: "head" in _requests(store))  # the changed object's metadata
        requests = _requests(store)
        assert requests["head"] == 1, requests  # the changed object only
        assert requests["list"] == -(-n // 1000), requests  # one listing of the directory
        a = await rig.fs.lookup(d, "o00007")
        assert a.size == 7 and stat.S_IMODE(a.mode) == 0o600 and a.uid == 7

    run_rig(body, tmp_path, store, mock_clock=clock, metadata_ttl=TTL)


def test_a_big_directory_whose_listing_takes_long_is_not_relisted_back_to_back(tmp_path):
    """The background relisting of a big directory is spaced by what its listing took: on
    moto, listing 100,000 names takes minutes, and while `ls -l` looked each name up after
    the TTL the directory was relisted again as soon as each relisting ended, competing
    with the metadata HEADs for the server (the bench's `ls -l` of 100,000 objects took
    22 minutes). A relisting is due once the listing is older than the TTL and than
    RELIST_SPACING times what it took."""
    store = MemoryStore("b")
    n = RELIST_MAX + 200
    for i in range(n):
        store.put(f"big/o{i:05d}", b"x", _meta(0o640))
    clock = trio.testing.MockClock()
    gate = threading.Event()
    original = store.list_page

    def slow_list(prefix, *args, **kwargs):
        if prefix == "big/" and not gate.is_set():
            gate.wait(60)  # the test moves the clock on while the first page is "on the wire"
        return original(prefix, *args, **kwargs)

    store.list_page = slow_list  # type: ignore[method-assign]
    took = 100.0

    async def body(rig):
        d = await rig.ino("big")
        got: dict[str, object] = {}

        async def first_ls() -> None:
            got["first"] = await _ls_l(rig, "big")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first_ls)
            await trio.testing.wait_all_tasks_blocked()
            clock.jump(took)
            gate.set()
        assert len(got["first"]) == n  # type: ignore[arg-type]
        clock.jump(TTL + 1)
        store.stats.reset()
        for i in range(n):  # after the TTL, a lookup of every name, as `ls -l` does
            await rig.fs.lookup(d, f"o{i:05d}")
        await trio.to_thread.run_sync(time.sleep, 0.5)  # room for a background listing to start
        assert "list" not in _requests(store), _requests(store)
        clock.jump(RELIST_SPACING * took)
        await rig.fs.lookup(d, "o00001")
        assert await _settle(lambda: _requests(store).get("list") == -(-n // 1000)), _requests(store)

    run_rig(body, tmp_path, store, mock_clock=clock, metadata_ttl=TTL)
