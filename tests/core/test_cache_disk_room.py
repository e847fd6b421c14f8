"""A write on a nearly full cache disk makes room by evicting clean cached data, and keeps
evicting until the room is really there (found by the disk-full mount test, which failed
now and then: eviction freed exactly the shortfall, the journal's own writes for the
evictions took a little of it back, and the write failed with ENOSPC although clean data
was left to evict)."""

from __future__ import annotations

from mountsync.core.files import DISK_RESERVE
from tests.support.rig import run_rig

MiB = 1024 * 1024


def test_eviction_makes_all_the_room_a_write_needs(tmp_path):
    async def body(rig):
        for i in range(8):
            await rig.write_file(f"clean-{i}", bytes([i]) * MiB)
        assert (await rig.sync()).ok
        items = rig.stack.items
        data = items.data
        overhead = {"bytes": 0}
        real_evict = items.evict

        def evict_with_journal_cost(entry_id: int) -> None:
            real_evict(entry_id)
            overhead["bytes"] += 64 * 1024  # what the journal's rows take on the same disk

        items.evict = evict_with_journal_cost
        # a disk that has room for the reserve and 1 MiB once 2 MiB of clean data go
        capacity = data.disk_usage() + DISK_RESERVE + MiB - 2 * MiB
        data.free_bytes = lambda: capacity - data.disk_usage() - overhead["bytes"]

        await rig.write_file("new", b"n" * MiB)
        assert await rig.read_file("new") == b"n" * MiB
        assert data.free_bytes() >= DISK_RESERVE
        evicted = [i for i in range(8) if not items.data.allocated(rig.stack.journal.get(f"clean-{i}").saved_id)]
        assert len(evicted) >= 3, evicted  # 2 MiB did not suffice with the journal's share
        assert await rig.read_file("clean-0") == bytes([0]) * MiB  # fetched again from the bucket

    run_rig(body, tmp_path, write_back_delay=60)
