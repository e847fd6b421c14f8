"""docs/benchmarks.md and its plots, from the results of a run.

``render_table`` and ``render_markdown`` are pure (tested in
tests/unit/test_bench_stats.py); ``plot`` needs matplotlib (the ``bench`` extra)
and writes one PNG per profile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.cases import Group, Row
from bench.context import Sizes
from bench.stats import Key, Result, Verdict, evaluate, fmt_ratio, fmt_value, ratio

FULL = Sizes()  # the full run's sizes and bounds, named in the method text

COLUMNS = ("native", "raw", "mountsync", "rclone", "s3fs")


def raw_variants(profile: str, row: Row, results: Mapping[Key, Result]) -> list[Result]:
    return sorted((r for (p, c, s), r in results.items() if p == profile and c == row.id and s.startswith("raw/")),
                  key=lambda r: r.system)


def reference(profile: str, row: Row, results: Mapping[Key, Result]) -> tuple[str, float] | None:
    """What a mount's value is compared with in the table and plots.

    The system the row's target refers to (native or a raw variant) when it
    was measured, else native, else the best raw variant.
    """
    for t in row.targets:
        if t.applies(profile):
            for ref in t.refs:
                r = results.get((profile, ref.case, ref.system))
                if r is not None and r.value is not None:
                    return ref.system.replace("raw/", "raw "), r.value
    nat = results.get((profile, row.id, "native"))
    if nat is not None and nat.value is not None:
        return "native", nat.value
    raws = [(r.system.removeprefix("raw/"), r.value) for r in raw_variants(profile, row, results)
            if r.value is not None]
    if raws:
        name, v = min(raws, key=lambda x: x[1])
        return f"raw {name}", v
    return None


def verdict_for(profile: str, row: Row, results: Mapping[Key, Result]) -> tuple[str, Verdict] | None:
    """The row's applicable targets (joined with "and") and the verdict of the tightest one missed,
    else of the first met."""
    found = [(t.text, evaluate(t, profile, results.get((profile, row.id, "mountsync")), results))
             for t in row.targets if t.applies(profile)]
    if not found:
        return None
    text = " and ".join(t for t, _ in found)
    missed = [v for _, v in found if v.status == "missed"]
    if missed:
        return text, min(missed, key=lambda v: v.limit if v.limit is not None else 0.0)
    return text, found[0][1]


def _cell(r: Result | None, ref: tuple[str, float] | None, notes: list[str]) -> str:
    if r is None:
        return ""
    if r.error is not None:
        notes.append(f"{r.system}, {r.case}: {r.error}")
        return f"✗ failed [{len(notes)}]"
    text = fmt_value(r.value, r.unit)
    rr = ratio(r.value, ref[1]) if ref is not None and r.unit == "s" else None
    if rr is not None:
        text += f" ({fmt_ratio(rr)})"
    if r.note:
        notes.append(f"{r.system}, {r.case}: {r.note}")
        text += f" [{len(notes)}]"
    return text


def render_table(profile: str, rows: Sequence[Row], results: Mapping[Key, Result]) -> str:
    """One profile's Markdown table, followed by its numbered notes (failure reasons, extras)."""
    notes: list[str] = []
    head = "| case | " + " | ".join(COLUMNS) + " | target (mountsync) | result |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    for row in rows:
        cells = []
        if not any(p == profile and c == row.id for (p, c, _s) in results):
            continue
        ref = reference(profile, row, results)
        for col in COLUMNS:
            if col == "raw":
                parts = []
                for r in raw_variants(profile, row, results):
                    label = r.system.removeprefix("raw/")
                    if r.error is not None:
                        notes.append(f"raw {label}, {row.id}: {r.error}")
                        parts.append(f"{label} ✗ [{len(notes)}]")
                    else:
                        parts.append(f"{label} {fmt_value(r.value, r.unit)}")
                raw_err = results.get((profile, row.id, "raw"))
                if raw_err is not None and raw_err.error:
                    notes.append(f"raw, {row.id}: {raw_err.error}")
                    parts.append(f"✗ failed [{len(notes)}]")
                cells.append(" · ".join(parts))
            else:
                cells.append(_cell(results.get((profile, row.id, col)), ref if col != "native" else None, notes))
        v = verdict_for(profile, row, results)
        if v is None:
            target, outcome = "–", ""
        else:
            target, ver = v
            unit = row.unit
            limit = f" (limit {fmt_value(ver.limit, unit)})" if ver.limit is not None else ""
            mark = {"met": "✓ met", "missed": "**✗ missed**", "n/a": "n/a"}[ver.status]
            outcome = f"{mark}{limit}, {ver.margin}" if ver.status != "n/a" else f"n/a ({ver.margin})"
            if ver.status == "missed" and ver.measured is None:
                outcome = f"**✗ missed** ({ver.margin[:80]})"
        lines.append(f"| {row.title} | " + " | ".join(cells) + f" | {target} | {outcome} |")
    if notes:
        lines.append("")
        lines += [f"{i}. {n}" for i, n in enumerate(notes, 1)]
    return "\n".join(lines)


def summary(profiles: Sequence[str], rows: Sequence[Row], results: Mapping[Key, Result]) -> tuple[int, int, int]:
    met = missed = na = 0
    for p in profiles:
        for row in rows:
            v = verdict_for(p, row, results)
            if v is None or not any(pp == p and c == row.id for (pp, c, _s) in results):
                continue
            met += v[1].status == "met"
            missed += v[1].status == "missed"
            na += v[1].status == "n/a"
    return met, missed, na


QUICK_CAVEAT = ("A quick run (`--quick`: smaller sizes, one sample per cell, 20 s bound per sample) on a "
                "2-core machine that other jobs were loading at the same time: the figures are indicative, "
                "and absolute times are inflated. Sizes and counts in the row titles are the quick ones; "
                "`make bench` runs the full sizes with medians of 3.")

PROFILE_TEXT = {
    "loopback": "Loopback: every client talks to moto on 127.0.0.1 through the counting proxy, no added delay.",
    "latency": "20 ms: the same proxy sleeps 20 ms before forwarding each request (a model of a real endpoint; "
               "serial request patterns show here).",
}


def render_markdown(meta: Mapping, groups: Sequence[Group], results: Mapping[Key, Result],
                    profiles: Sequence[str], plots: Mapping[str, str], analysis: str = "") -> str:
    """The report; ``analysis`` (hand-written Markdown: why targets are missed, with the
    profile evidence) is appended under its own heading."""
    rows = [r for g in groups for r in g.rows]
    met, missed, na = summary(profiles, rows, results)
    caveat = meta.get("caveat") or (QUICK_CAVEAT if "quick" in str(meta.get("kind", "")).lower() else "")
    out = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (bench/run.py); do not edit by hand: run it again.",
        "",
        f"**{meta.get('kind', 'Run')}**: {meta.get('date', '?')}, mountsync commit `{meta.get('commit', '?')}`. "
        f"{caveat}".rstrip(),
        "",
        f"Targets (mountsync, this run): {met} met, {missed} missed, {na} not applicable or not measured.",
        "",
        "## How it is measured",
        "",
        ("- Systems: a native directory on the same disk; raw boto3 (the server's limit, same proxy path); "
        "mountsync (`--write-back-delay 1`); rclone `mount --vfs-cache-mode full --vfs-write-back 1s`; "
        "s3fs with `use_cache`."),
        ("- Server: a moto server started for the run on 127.0.0.1. All S3 traffic of the clients being "
        "measured passes a small threaded proxy on 127.0.0.1 that counts response bytes (\"bytes fetched\") "
        "and, in the latency profile, sleeps before forwarding each request. Set-up and \"is it in the "
        "bucket yet\" polling go to moto directly and are not counted."),
        (f"- Each cell is the median of {meta.get('samples', '?')} sample(s) (the peak-RSS rows: one sample, "
        "loopback only: memory, not time; remount \"until all uploaded\": the first "
        f"{FULL.upload_wait_samples} sample(s), the others time \"until usable\" and stop there; "
        "`ls -l` of the bigger listing: raw is one LIST pass only, its HEADs are measured on the smaller "
        "one, the target's reference); every sample uses a fresh mount "
        "and a fresh cache dir (and, for writes, a fresh bucket). Times are wall-clock from the first "
        "operation. In brackets after a time: the ratio to the system the row's target refers to "
        "(native or raw), else to native, else to the best raw figure."),
        ("- \"Until in the bucket\": HEAD/LIST polling of moto every 50–250 ms. Peak RSS: `VmHWM` of the "
        "daemon's /proc/PID/status. \"Cold\" native reads evict the file from the page cache first "
        "(`posix_fadvise DONTNEED`); native `ls -l` is never cold."),
        "- A sample that fails or overruns its time bound is shown as ✗ with the reason; the run goes on, "
        f"and a failed cell is not sampled again (it would stay failed). Bounds (full run): {FULL.timeout:g} s "
        f"per sample of raw and mountsync, {FULL.peer_timeout:g} s per sample of a peer (rclone, s3fs: "
        "references, not subjects, whose slowest cases would make one run longer than the time it has), "
        f"{FULL.listing_timeout:g} s per `ls -l` in the listing cases.",
        "",
        "## Machine and versions",
        "",
    ]
    for k, v in meta.get("machine", {}).items():
        out.append(f"- {k}: {v}")
    out.append("- versions: " + "; ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()))
    if meta.get("duration"):
        out.append(f"- duration of the run: {meta['duration']}")
    sizes = meta.get("sizes")
    if sizes:
        out.append(f"- sizes: {sizes}")
    for p in profiles:
        out += ["", f"## Profile: {p}", "", PROFILE_TEXT.get(p, p), ""]
        if p in plots:
            out += [f"![{p}]({plots[p]})", ""]
        out.append(render_table(p, rows, results))
    if analysis.strip():
        out += ["", "## Where targets are missed, and why", "", analysis.strip()]
    out.append("")
    return "\n".join(out)


def plot(profile: str, groups: Sequence[Group], results: Mapping[Key, Result], path: Path) -> bool:
    """Bars per case (one per system and raw variant), labelled with the ratio to the reference."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for g in groups for r in g.rows
            if any((profile, r.id, s) in results for s in COLUMNS) or any(
                p == profile and c == r.id for (p, c, _s) in results)]
    if not rows:
        return False
    cols = 3
    nrows = -(-len(rows) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(12, 2.4 * nrows), squeeze=False)
    colors = {"native": "#888888", "mountsync": "#1f77b4", "rclone": "#ff7f0e", "s3fs": "#2ca02c"}
    for ax, row in zip(axes.flat, rows, strict=False):  # the grid may have spare cells
        ref = reference(profile, row, results)
        bars = [(s, results.get((profile, row.id, s))) for s in ("native",)]
        bars += [(r.system, r) for r in raw_variants(profile, row, results)]
        bars += [(s, results.get((profile, row.id, s))) for s in ("mountsync", "rclone", "s3fs")]
        bars = [(s, r) for s, r in bars if r is not None]
        labels = [s.replace("raw/", "raw ") for s, _ in bars]
        vals = [r.value if r.value is not None else 0.0 for _, r in bars]
        scale, unit = (1 / 1048576, "MiB") if row.unit == "B" else (1.0, "s")
        ax.barh(labels, [v * scale for v in vals], color=[colors.get(s, "#9467bd") for s, _ in bars])
        for i, (_s, r) in enumerate(bars):
            if r.value is None:
                txt = "✗ failed"
            else:
                rr = ratio(r.value, ref[1]) if ref and row.unit == "s" else None
                txt = fmt_value(r.value, r.unit) + (f"  {fmt_ratio(rr)}" if rr is not None else "")
            ax.text(max(vals) * scale * 0.02 if r.value is None else r.value * scale, i, " " + txt,
                    va="center", fontsize=7)
        ax.set_title(row.title.replace("`", "")[:60], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_xlabel(unit, fontsize=7)
        ax.set_xlim(0, max(vals or [1]) * scale * 1.6 or 1)
        ax.invert_yaxis()
    for ax in list(axes.flat)[len(rows):]:
        ax.axis("off")
    fig.suptitle(f"{profile}: ratio to the target's reference, else native, else best raw", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=60)
    plt.close(fig)
    return True
