"""mountsync.cache.ranges.RangeSet: sorted disjoint half-open intervals."""

from hypothesis import given, settings
from hypothesis import strategies as st

from mountsync.cache.ranges import RangeSet


def test_empty():
    r = RangeSet()
    assert r.to_list() == []
    assert r.total() == 0
    assert r.missing(0, 10) == [(0, 10)]
    assert not r.contains(0, 1)
    assert r.contains(5, 5)  # empty range is always contained


def test_add_ignores_empty_and_reversed():
    r = RangeSet()
    r.add(5, 5)
    r.add(7, 3)
    assert r.to_list() == []


def test_add_disjoint_sorted():
    r = RangeSet([(20, 30), (0, 5), (10, 12)])
    assert r.to_list() == [(0, 5), (10, 12), (20, 30)]
    assert r.total() == 17


def test_adjacent_ranges_merge():
    r = RangeSet([(0, 5), (5, 10)])
    assert r.to_list() == [(0, 10)]
    r.add(10, 11)
    assert r.to_list() == [(0, 11)]
    r.add(-3, 0)
    assert r.to_list() == [(-3, 11)]


def test_overlapping_and_bridging_add():
    r = RangeSet([(0, 2), (4, 6), (8, 10), (20, 25)])
    r.add(1, 9)
    assert r.to_list() == [(0, 10), (20, 25)]
    r.add(12, 30)
    assert r.to_list() == [(0, 10), (12, 30)]
    r.add(0, 100)
    assert r.to_list() == [(0, 100)]


def test_add_contained_is_noop():
    r = RangeSet([(0, 100)])
    r.add(10, 20)
    assert r.to_list() == [(0, 100)]


def test_contains():
    r = RangeSet([(0, 10), (20, 30)])
    assert r.contains(0, 10)
    assert r.contains(3, 7)
    assert r.contains(20, 30)
    assert not r.contains(5, 15)
    assert not r.contains(9, 21)
    assert not r.contains(10, 11)
    assert not r.contains(29, 31)
    assert not r.contains(-1, 2)


def test_missing():
    r = RangeSet([(10, 20), (30, 40)])
    assert r.missing(0, 50) == [(0, 10), (20, 30), (40, 50)]
    assert r.missing(10, 20) == []
    assert r.missing(15, 35) == [(20, 30)]
    assert r.missing(20, 30) == [(20, 30)]
    assert r.missing(0, 5) == [(0, 5)]
    assert r.missing(45, 60) == [(45, 60)]
    assert r.missing(12, 12) == []


def test_remove_from():
    r = RangeSet([(0, 10), (20, 30), (40, 50)])
    r.remove_from(25)
    assert r.to_list() == [(0, 10), (20, 25)]
    r.remove_from(20)
    assert r.to_list() == [(0, 10)]
    r.remove_from(10)
    assert r.to_list() == [(0, 10)]
    r.remove_from(100)
    assert r.to_list() == [(0, 10)]
    r.remove_from(0)
    assert r.to_list() == []


def test_clear():
    r = RangeSet([(0, 10)])
    r.clear()
    assert r.to_list() == [] and r.total() == 0


# ---------------------------------------------------------------- property test

N = 64
ranges = st.tuples(st.integers(0, N), st.integers(0, N))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), ranges),
        st.tuples(st.just("remove_from"), st.integers(0, N)),
    ),
    max_size=30,
)


def _intervals(model: set[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for b in sorted(model):
        if out and out[-1][1] == b:
            out[-1] = (out[-1][0], b + 1)
        else:
            out.append((b, b + 1))
    return out


@settings(max_examples=300, deadline=None)
@given(ops, st.lists(ranges, min_size=1, max_size=5))
def test_matches_set_of_bytes_model(script, queries):
    r = RangeSet()
    model: set[int] = set()
    for op, arg in script:
        if op == "add":
            s, e = arg
            r.add(s, e)
            model |= set(range(s, e))
        else:
            r.remove_from(arg)
            model = {b for b in model if b < arg}
        # invariant: canonical form equals the model's maximal runs
        assert r.to_list() == _intervals(model)
        assert r.total() == len(model)
    for s, e in queries:
        want = set(range(s, e))
        assert r.contains(s, e) == (want <= model)
        miss = r.missing(s, e)
        got = set()
        for a, b in miss:
            assert s <= a < b <= e
            got |= set(range(a, b))
        assert got == want - model
        assert miss == _intervals(want - model)  # sorted, maximal, disjoint
