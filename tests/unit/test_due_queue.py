"""The write-back queue's due times: a mapping whose earliest item is found in O(log n)."""

from mountsync.reconciler.due import DueQueue
from mountsync.reconciler.items import Delete, Upload


def _pop_due(q: DueQueue, now: float) -> list:
    out = []
    while (head := q.first()) is not None and head[1] <= now:
        out.append(head)
        del q[head[0]]
    return out


def test_first_is_the_earliest_item_and_ties_keep_their_order():
    q = DueQueue()
    q[Upload(1)] = 5.0
    q[Upload(2)] = 1.0
    q[Delete("a")] = 3.0
    q[Delete("b")] = 3.0
    assert _pop_due(q, 3.0) == [(Upload(2), 1.0), (Delete("a"), 3.0), (Delete("b"), 3.0)]
    assert dict(q.items()) == {Upload(1): 5.0}
    assert q.first() == (Upload(1), 5.0)


def test_rescheduled_and_removed_items_leave_no_stale_entry():
    q = DueQueue()
    q[Upload(1)] = 1.0
    q[Upload(1)] = 10.0  # moved later: not due at 1
    q[Upload(2)] = 2.0
    del q[Upload(2)]
    q[Upload(3)] = 4.0
    q[Upload(3)] = 4.0  # set twice at the same time: handed out once
    assert q.first() == (Upload(3), 4.0)
    assert _pop_due(q, 5.0) == [(Upload(3), 4.0)]
    assert _pop_due(q, 5.0) == []
    assert q.pop(Upload(1)) == 10.0
    assert q.first() is None and len(q) == 0


def test_many_reschedules_keep_the_heap_bounded():
    q = DueQueue()
    for i in range(10_000):
        q[Upload(i % 10)] = float(i)
    assert len(q) == 10
    assert len(q._heap) <= 2 * len(q) + 65
    assert [w for _i, w in _pop_due(q, float("inf"))] == [float(i) for i in range(9990, 10_000)]
