"""FaultyStore: scheduled, random, down, delayed and held failures around a MemoryStore."""

from __future__ import annotations

import threading
import time

import pytest

from mountsync.backend.base import (
    AccessDeniedError,
    NotFoundError,
    TransientError,
    UnreachableError,
)
from mountsync.backend.faulty import FaultyStore
from mountsync.backend.memory import MemoryStore


@pytest.fixture
def inner():
    return MemoryStore()


@pytest.fixture
def faulty(inner):
    store = FaultyStore(inner)
    yield store
    store.clear()  # never leave a thread blocked at a gate


def run_in_thread(fn):
    """Start ``fn`` in a thread; returns (thread, box) where box gets 'result' or 'error'."""
    box: dict = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def test_fail_next_before_does_not_reach_inner(faulty, inner):
    faulty.fail_next("put", TransientError("boom"))
    with pytest.raises(TransientError, match="boom"):
        faulty.put("k", b"v")
    assert inner.objects() == {}
    assert inner.stats.snapshot()["requests"] == {}
    faulty.put("k", b"v")  # only the next call failed
    assert inner.objects() == {"k": b"v"}
    assert [c.outcome for c in faulty.calls_to("put")] == ["injected:TransientError", "ok"]


def test_fail_next_times_and_key_filter(faulty, inner):
    faulty.fail_next("put", AccessDeniedError, times=2, key="locked")
    faulty.put("free", b"1")
    for _ in range(2):
        with pytest.raises(AccessDeniedError, match="injected failure in put"):
            faulty.put("locked", b"2")
    faulty.put("locked", b"3")
    assert inner.objects() == {"free": b"1", "locked": b"3"}


def test_fail_next_after_applies_the_change_then_raises(faulty, inner):
    faulty.fail_next("complete_multipart", TransientError, when="after")
    upload_id = faulty.create_multipart("mp")
    etag = faulty.upload_part("mp", upload_id, 1, b"data")
    with pytest.raises(TransientError):
        faulty.complete_multipart("mp", upload_id, [(1, etag)])
    assert inner.objects() == {"mp": b"data"}  # the server did it; the response was lost
    with pytest.raises(NotFoundError):  # a retry of the complete now finds no upload
        faulty.complete_multipart("mp", upload_id, [(1, etag)])


def test_exception_factory_and_wildcard_op(faulty):
    made = []

    def factory():
        made.append(1)
        return UnreachableError("from factory")

    faulty.fail_next("*", factory, times=2)
    with pytest.raises(UnreachableError, match="from factory"):
        faulty.head("x")
    with pytest.raises(UnreachableError, match="from factory"):
        faulty.list_page("")
    assert len(made) == 2
    assert faulty.list_page("").objects == []


def test_instance_is_raised_as_a_fresh_copy(faulty):
    original = TransientError("same", code="SlowDown")
    faulty.fail_next("get", original, times=2)
    raised = []
    for _ in range(2):
        with pytest.raises(TransientError) as info:
            faulty.get("k")
        raised.append(info.value)
    assert raised[0] is not raised[1] and raised[0] is not original
    assert all(e.code == "SlowDown" for e in raised)


def test_failure_rate_is_seeded_and_filtered(inner):
    def pattern(seed):
        store = FaultyStore(MemoryStore())
        store.set_failure_rate(0.3, ops=["put"], seed=seed)
        out = []
        for i in range(200):
            try:
                store.put(f"k{i}", b"")
                out.append(True)
            except TransientError:
                out.append(False)
        stored = [f"k{i}" for i, ok in enumerate(out) if ok]
        assert all(store.head(k).size == 0 for k in stored)  # "head" is not in ops: never failed
        return out

    a, b, c = pattern(7), pattern(7), pattern(8)
    assert a == b
    assert a != c
    failures = a.count(False)
    assert 30 <= failures <= 90  # 0.3 * 200 = 60 expected

    store = FaultyStore(inner)
    store.set_failure_rate(1.0, lambda: AccessDeniedError("nope"), ops=["get"])
    store.put("k", b"v")
    with pytest.raises(AccessDeniedError):
        store.get("k")
    store.set_failure_rate(0.0)
    assert store.get("k") == b"v"


def test_set_down(faulty, inner):
    inner.put("k", b"v")
    faulty.set_down(True)
    assert faulty.is_down
    for call in (lambda: faulty.get("k"), faulty.check_bucket, lambda: faulty.put("k", b"w")):
        with pytest.raises(UnreachableError) as info:
            call()
        assert info.value.transient
    faulty.set_down(False)
    assert faulty.get("k") == b"v"


def test_hold_freezes_a_call_before_it_reaches_the_store(faulty, inner):
    gate = faulty.hold("put", key="slow")
    thread, box = run_in_thread(lambda: faulty.put("slow", b"payload"))
    assert gate.wait_held(1, timeout=5)
    assert "slow" not in inner.objects()
    faulty.put("fast", b"other")  # other calls go on meanwhile
    assert faulty.get("fast") == b"other"
    gate.release()
    thread.join(5)
    assert not thread.is_alive()
    assert box["result"].etag == inner.etag_of("slow")
    assert inner.objects()["slow"] == b"payload"
    assert gate.held == 0 and gate.passed == 1


def test_hold_after_the_store_applied_the_change(faulty, inner):
    gate = faulty.hold("delete", when="after")
    inner.put("k", b"v")
    thread, box = run_in_thread(lambda: faulty.delete("k"))
    assert gate.wait_held(1, timeout=5)
    assert "k" not in inner.objects()  # already deleted, response still held
    assert thread.is_alive()
    gate.release()
    thread.join(5)
    assert box == {"result": None}


def test_clear_releases_gates_and_removes_faults(faulty):
    gate = faulty.hold("get")
    faulty.fail_next("put", TransientError, times=5)
    faulty.set_down(True)
    faulty.clear()
    assert gate.released
    faulty.put("k", b"v")
    assert faulty.get("k") == b"v"


def test_gate_timeout_raises(faulty):
    faulty.hold("head", timeout=0.2)
    with pytest.raises(RuntimeError, match="never released"):
        faulty.head("k")


def test_delay(faulty):
    faulty.set_delay("head", 0.2)
    faulty.put("k", b"v")
    t0 = time.monotonic()
    faulty.head("k")
    assert time.monotonic() - t0 >= 0.2
    faulty.set_delay("head", 0)
    t0 = time.monotonic()
    faulty.head("k")
    assert time.monotonic() - t0 < 0.2


def test_stats_are_the_inner_stores(faulty, inner):
    assert faulty.stats is inner.stats
    faulty.put("k", b"abc")
    faulty.fail_next("get", TransientError)
    with pytest.raises(TransientError):
        faulty.get("k")
    faulty.get("k")
    assert inner.stats.snapshot() == {"requests": {"put": 1, "get": 1}, "bytes_down": 3, "bytes_up": 3}


def test_calls_record_inner_errors_and_aliases(faulty):
    with pytest.raises(NotFoundError):
        faulty.head("missing")
    faulty.fail_next("list", TransientError)  # "list" is the stats name of list_page
    with pytest.raises(TransientError):
        faulty.list_page("p/")
    assert [(c.op, c.key, c.outcome) for c in faulty.calls] == [
        ("head", "missing", "NotFoundError"),
        ("list_page", "p/", "injected:TransientError"),
    ]
    faulty.reset_calls()
    assert faulty.calls == []
    with pytest.raises(ValueError):
        faulty.fail_next("nonsense", TransientError)
    with pytest.raises(ValueError):
        faulty.hold("get", when="during")


def test_describe_wraps_inner(faulty):
    assert faulty.describe() == "faulty(memory://memory-bucket)"
