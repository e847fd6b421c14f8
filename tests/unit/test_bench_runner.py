"""The benchmark runner's bounds and skips (bench/run.py, bench/context.py), without mounts.

A sample runs in a thread bounded by its system's time (raw and mountsync
``Sizes.timeout``, a peer ``Sizes.peer_timeout``, a group's own bound first); a
failed cell is recorded with its reason and that system is not sampled again
in the group. These are what make one full run fit a session, so they are
checked here on fakes.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

import pytest

from bench.cases import Group, Row, groups
from bench.context import Sizes, bounded
from bench.run import Runner
from bench.systems import BenchError


def test_bounded_returns_the_value_and_reraises_the_error():
    assert bounded(lambda: 42, 5.0, lambda: None) == 42

    def boom() -> object:
        raise ValueError("inside the sample")

    with pytest.raises(ValueError, match="inside the sample"):
        bounded(boom, 5.0, lambda: None)


def test_bounded_overrun_unblocks_the_sample_and_says_so():
    released = threading.Event()
    finished = threading.Event()

    def stuck() -> object:
        released.wait(60)  # blocks until on_timeout releases it (like killing the mount)
        finished.set()
        return None

    with pytest.raises(BenchError, match="timed out after 0 s"):
        bounded(stuck, 0.01, released.set)
    assert released.is_set() and finished.is_set()


class FakeCtx:
    """What Runner._one touches on a Ctx: the profile, the deadline, the clean-up calls."""

    def __init__(self) -> None:
        self.profile = "loopback"
        self.deadline = 0.0
        self.killed = 0
        self.cleaned = 0

    def kill_all(self) -> None:
        self.killed += 1

    def clean_samples(self) -> None:
        self.cleaned += 1


def runner(tmp_path: Path, sizes: Sizes) -> Runner:
    return Runner(argparse.Namespace(), sizes, tmp_path)


ROWS = (Row("a", "case a"), Row("b", "case b"))


def test_one_records_every_row_and_cleans_up(tmp_path):
    r = runner(tmp_path, Sizes())
    ctx = FakeCtx()
    group = Group("g", ROWS, ("mountsync",), lambda c, s: {("a", s): (1.5, None), ("b", s): (2.5, "a note")})
    r._one(ctx, group, "mountsync", {"a": "s", "b": "s"})  # type: ignore[arg-type]
    assert r.results[("loopback", "a", "mountsync")].samples == [1.5]
    assert r.results[("loopback", "b", "mountsync")].note == "a note"
    assert ctx.killed == 1 and ctx.cleaned == 1
    assert r.failed("loopback", group) == frozenset()


@pytest.mark.parametrize(("system", "bound"), [("mountsync", 600.0), ("raw", 600.0), ("rclone", 90.0),
                                               ("s3fs", 90.0)])
def test_a_peer_has_its_own_bound(tmp_path, monkeypatch, system, bound):
    seen: list[float] = []

    def fake_bounded(fn, timeout, on_timeout):
        seen.append(timeout)
        return fn()

    monkeypatch.setattr("bench.run.bounded", fake_bounded)
    r = runner(tmp_path, Sizes(timeout=600.0, peer_timeout=90.0))
    ctx = FakeCtx()
    r._one(ctx, Group("g", ROWS, (system,), lambda c, s: {}), system, {})  # type: ignore[arg-type]
    assert seen == [bound + 30]  # the 30 s on top lets the sample's own deadline fire first
    assert ctx.deadline > 0


def test_a_groups_own_bound_wins(tmp_path, monkeypatch):
    seen: list[float] = []
    monkeypatch.setattr("bench.run.bounded", lambda fn, timeout, on: seen.append(timeout) or fn())
    r = runner(tmp_path, Sizes())
    r._one(FakeCtx(), Group("g", ROWS, ("s3fs",), lambda c, s: {}, timeout=1800.0), "s3fs", {})  # type: ignore[arg-type]
    assert seen == [1830.0]


def test_a_failed_sample_fails_every_row_of_that_system_only(tmp_path):
    r = runner(tmp_path, Sizes())

    def sample(ctx, system):
        if system == "s3fs":
            raise BenchError("s3fs exited 1")
        return {("a", system): (1.0, None), ("b", system): (2.0, None)}

    group = Group("g", ROWS, ("mountsync", "s3fs"), sample)
    for system in ("mountsync", "s3fs"):
        r._one(FakeCtx(), group, system, {"a": "s", "b": "s"})  # type: ignore[arg-type]
    assert r.failed("loopback", group) == {("a", "s3fs"), ("b", "s3fs")}
    assert r.results[("loopback", "a", "s3fs")].error == "s3fs exited 1"
    assert r.failed_before("loopback", group, "s3fs")
    assert not r.failed_before("loopback", group, "mountsync")
    assert not r.failed_before("latency", group, "s3fs")  # another profile starts afresh


def test_run_profile_does_not_sample_a_failed_system_again(tmp_path, monkeypatch):
    """Three samples: the system that failed in the first is not run in the other two."""
    calls: list[str] = []

    def sample(ctx, system):
        calls.append(system)
        if system == "rclone":
            raise BenchError("rclone mount exited 1")
        return {("a", system): (float(len(calls)), None)}

    group = Group("g", (Row("a", "case a"),), ("mountsync", "rclone"), sample)
    r = Runner(argparse.Namespace(systems=["mountsync", "rclone"]), Sizes(samples=3), tmp_path)

    class Proxy:
        endpoint = "http://127.0.0.1:1"

        def __init__(self, *args) -> None:
            pass

        def close(self) -> None:
            pass

    monkeypatch.setattr("bench.run.DelayProxy", Proxy)
    monkeypatch.setattr("bench.run.Ctx", lambda **kw: FakeCtx())
    monkeypatch.setattr("bench.run.ALL_SYSTEMS", {})
    monkeypatch.setattr("bench.run.Raw", lambda endpoint: None)
    base = {"moto_port": 1, "missing": {}, "admin": None, "blob": b"", "data_bucket": "d", "list_bucket": "l",
            "rss_bucket": "r", "tar": tmp_path / "t.tar", "git": tmp_path / "repo"}
    r.run_profile("loopback", base, [group])
    assert calls == ["mountsync", "rclone", "mountsync", "mountsync"]
    assert len(r.results[("loopback", "a", "mountsync")].samples) == 3
    assert r.results[("loopback", "a", "rclone")].error == "rclone mount exited 1"


def test_the_issues_listing_targets_are_on_the_smaller_listing():
    ls = next(g for g in groups(Sizes()) if g.name == "ls")
    cold = {row.id: row for row in ls.rows if row.id.startswith("ls_cold_")}
    assert [t.text for t in cold["ls_cold_2000"].targets] == ["≤ 2× raw LIST + 16 concurrent HEADs", "< 3 s"]
    assert cold["ls_cold_10000"].targets == ()
