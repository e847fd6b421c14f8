"""The pure parts of the benchmark harness (bench/): medians, ratios, targets, table rendering."""

from __future__ import annotations

import pytest

from bench.cases import Row, groups, select
from bench.context import Sizes
from bench.report import reference, render_markdown, render_table
from bench.stats import (
    MiB,
    Ref,
    Result,
    Target,
    evaluate,
    fmt_value,
    index,
    median,
    ratio,
    target_limit,
)


def res(case: str, system: str, *samples: float, unit: str = "s", error: str | None = None,
        profile: str = "loopback") -> Result:
    return Result(profile, case, system, unit, list(samples), error)


def test_median_odd_even_empty_and_nan():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([]) is None
    assert median([float("nan"), 5.0]) == 5.0


def test_ratio_needs_a_positive_reference():
    assert ratio(3.0, 1.5) == 2.0
    assert ratio(None, 1.0) is None
    assert ratio(1.0, 0.0) is None
    assert ratio(1.0, None) is None


def test_failed_result_has_no_value_even_with_samples():
    r = res("c", "mountsync", 1.0, 2.0, error="timed out after 30 s")
    assert r.value is None
    assert Result.from_json(r.to_json()) == r


def test_target_limit_takes_the_best_reference_plus_constant():
    results = index([res("w", "raw/PUT", 2.0, 2.2, 1.8), res("w", "raw/multipart", 1.0)])
    t = Target("≤ 1.3× best raw + 1 s", refs=(Ref("w", "raw/PUT", 1.3, 1.0), Ref("w", "raw/multipart", 1.3, 1.0)))
    assert target_limit(t, "loopback", results) == pytest.approx(2.3)
    assert target_limit(t, "latency", results) is None  # nothing measured in that profile


def test_evaluate_met_missed_and_by_how_much():
    results = index([res("w", "native", 1.0), res("w", "mountsync", 2.5)])
    t = Target("≤ 2× native", refs=(Ref("w", "native", 2.0),))
    v = evaluate(t, "loopback", results[("loopback", "w", "mountsync")], results)
    assert (v.status, v.measured, v.limit) == ("missed", 2.5, 2.0)
    assert v.margin == "25 % (500 ms) over"
    met = evaluate(Target("≤ 3 s", limit=3.0), "loopback", results[("loopback", "w", "mountsync")], results)
    assert met.status == "met" and met.margin.endswith("under")


def test_evaluate_strict_bound_and_failures():
    exact = res("r", "mountsync", 2.0)
    assert evaluate(Target("< 2 s", limit=2.0, strict=True), "loopback", exact, {}).status == "missed"
    assert evaluate(Target("≤ 2 s", limit=2.0), "loopback", exact, {}).status == "met"
    failed = res("r", "mountsync", error="mount exited 1")
    v = evaluate(Target("< 2 s", limit=2.0), "loopback", failed, {})
    assert v.status == "missed" and "mount exited 1" in v.margin
    assert evaluate(Target("< 2 s", limit=2.0), "loopback", None, {}).status == "n/a"
    no_ref = evaluate(Target("≤ 2× native", refs=(Ref("r", "native", 2),)), "loopback", exact, {})
    assert no_ref.status == "n/a"


def test_fmt_value_units():
    assert fmt_value(0.0123, "s") == "12 ms"
    assert fmt_value(1.234, "s") == "1.23 s"
    assert fmt_value(17 * MiB, "B") == "17.0 MiB"
    assert fmt_value(None, "s") == "–"


def test_table_row_shows_values_ratios_verdict_and_failure_notes():
    row = Row("w", "write 1 MiB until close", targets=(Target("≤ 2× native", refs=(Ref("w", "native", 2),)),))
    results = index([res("w", "native", 0.1), res("w", "mountsync", 0.15), res("w", "raw/PUT", 0.5),
                     res("w", "rclone", error="rclone mount timed out after 60 s")])
    table = render_table("loopback", [row], results)
    lines = table.splitlines()
    assert lines[0].startswith("| case | native | raw | mountsync | rclone | s3fs |")
    cells = [c.strip() for c in lines[2].split("|")[1:-1]]
    assert cells[0] == "write 1 MiB until close"
    assert cells[1] == "100 ms"
    assert cells[2] == "PUT 500 ms"
    assert cells[3] == "150 ms (1.50×)"
    assert cells[4] == "✗ failed [1]"
    assert cells[5] == ""
    assert cells[6] == "≤ 2× native"
    assert cells[7].startswith("✓ met (limit 200 ms)")
    assert "1. rclone, w: rclone mount timed out after 60 s" in lines


def test_table_skips_rows_not_measured_in_that_profile():
    rows = [Row("a", "A"), Row("b", "B")]
    table = render_table("latency", rows, index([res("a", "mountsync", 1.0, profile="latency")]))
    assert "| A |" in table and "| B |" not in table


def test_reference_prefers_the_targets_system():
    row = Row("ls", "ls", targets=(Target("t", refs=(Ref("ls", "raw/LIST+HEADs", 2),)),))
    results = index([res("ls", "native", 0.01), res("ls", "raw/LIST+HEADs", 0.5)])
    assert reference("loopback", row, results) == ("raw LIST+HEADs", 0.5)
    assert reference("loopback", Row("ls", "ls"), results) == ("native", 0.01)


def test_catalogue_rows_are_unique_and_selectable():
    gs = groups(Sizes.quick())
    ids = [r.id for g in gs for r in g.rows]
    assert len(ids) == len(set(ids))
    assert [g.name for g in select(gs, ["ls_warm_500"])] == ["ls"]
    assert select(gs, []) == gs
    with pytest.raises(ValueError, match="unknown case nope"):
        select(gs, ["nope"])


def test_markdown_has_summary_and_plot_links():
    gs = groups(Sizes.quick())
    results = index([res("write_close", "native", 0.01), res("write_close", "mountsync", 0.05)])
    md = render_markdown({"kind": "Quick run", "date": "2026-12-01", "commit": "abc1234", "samples": 1},
                         gs, results, ["loopback"], {"loopback": "bench/loopback.png"})
    assert "Targets (mountsync, this run): 0 met, 1 missed" in md
    assert "![loopback](bench/loopback.png)" in md
    assert "`abc1234`" in md


def test_all_applicable_targets_count_and_a_miss_wins():
    row = Row("ls", "ls", targets=(Target("≤ 2× raw", refs=(Ref("ls", "raw/LIST", 2),)),
                                   Target("< 3 s", limit=3.0, strict=True, profiles=("latency",))))
    results = index([res("ls", "raw/LIST", 2.0, profile="latency"), res("ls", "mountsync", 3.5, profile="latency")])
    line = render_table("latency", [row], results).splitlines()[2]
    assert "≤ 2× raw and < 3 s" in line
    assert "**✗ missed** (limit 3.00 s)" in line
