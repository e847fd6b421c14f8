"""While programs use the mount, only a few uploads start; the rest start once it is quiet.

The clock is trio's MockClock, moved only by the test: nothing here depends on how fast
the machine is. A gate on PUT keeps started uploads in flight so they can be counted.
"""

from __future__ import annotations

import trio
import trio.testing

from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore
from mountsync.reconciler.pace import BUSY_SLOTS, QUIET
from tests.support.rig import run_rig


def test_uploads_wait_for_a_pause_in_foreground_requests(tmp_path):
    inner = MemoryStore("b")
    store = FaultyStore(inner)
    clock = trio.testing.MockClock()  # moves only when jumped

    async def body(rig):
        rec = rig.stack.reconciler
        gate = store.hold("put")
        rec.foreground()  # a program is using the mount (the adapter calls this per request)
        for i in range(6):
            await rig.write_file(f"f{i}", b"x")
        assert await trio.to_thread.run_sync(gate.wait_held, BUSY_SLOTS)
        await trio.testing.wait_all_tasks_blocked()
        assert len(rec.inflight) == BUSY_SLOTS
        clock.jump(QUIET)  # no request for QUIET seconds: all workers
        assert await trio.to_thread.run_sync(gate.wait_held, 6)
        assert len(rec.inflight) == 6
        gate.release()
        assert (await rig.sync()).ok
        assert sorted(inner.objects()) == [f"f{i}" for i in range(6)]

    run_rig(body, tmp_path, store, mock_clock=clock, write_back_delay=0, upload_workers=8)
