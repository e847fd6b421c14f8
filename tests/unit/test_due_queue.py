"""The write-back queue's due times: a mapping with items handed out in time order."""

import math

from mountsync.reconciler.due import DueQueue
from mountsync.reconciler.items import Delete, Upload


def test_pop_due_returns_only_due_items_earliest_first_and_removes_them():
    q = DueQueue()
    q[Upload(1)] = 5.0
    q[Upload(2)] = 1.0
    q[Delete("a")] = 3.0
    assert q.pop_due(3.0) == [(Upload(2), 1.0), (Delete("a"), 3.0)]
    assert dict(q) == {Upload(1): 5.0}
    assert q.next_time() == 5.0


def test_rescheduled_and_removed_items_leave_no_stale_entry():
    q = DueQueue()
    q[Upload(1)] = 1.0
    q[Upload(1)] = 10.0  # moved later: not due at 1
    q[Upload(2)] = 2.0
    del q[Upload(2)]
    q[Upload(3)] = 4.0
    q[Upload(3)] = 4.0  # set twice at the same time: handed out once
    assert q.next_time() == 4.0
    assert q.pop_due(5.0) == [(Upload(3), 4.0)]
    assert q.pop_due(5.0) == []
    assert q.pop(Upload(1)) == 10.0
    assert q.next_time() == math.inf and len(q) == 0


def test_many_reschedules_keep_the_heap_bounded():
    q = DueQueue()
    for i in range(10_000):
        q[Upload(i % 10)] = float(i)
    assert len(q) == 10
    assert len(q._heap) <= 2 * len(q) + 65
    assert [w for _i, w in q.pop_due(math.inf)] == [float(i) for i in range(9990, 10_000)]
