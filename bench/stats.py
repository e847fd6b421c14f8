"""Pure parts of the benchmark: results, medians, ratios, targets, formatting.

Nothing here does I/O; ``tests/unit/test_bench_stats.py`` covers it.

A ``Result`` is one (profile, case, system) cell: the samples taken (seconds,
bytes, ...) or the reason none could be (``error``). A ``Target`` says what
mountsync's value of a case should be, either an absolute bound or a multiple of
another system's value (plus a constant), and ``evaluate`` turns a target and the
results of one profile into a ``Verdict``: measured, limit, met or missed and by
how much.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

MiB = 1024 * 1024


def median(values: Sequence[float]) -> float | None:
    """Median of ``values`` (the mean of the two middle ones for an even count); None if empty."""
    xs = sorted(v for v in values if v is not None and not math.isnan(v))
    if not xs:
        return None
    mid = len(xs) // 2
    if len(xs) % 2:
        return xs[mid]
    return (xs[mid - 1] + xs[mid]) / 2


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, or None when either is missing or the reference is not positive."""
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


@dataclass
class Result:
    """Samples of one metric of one system in one case and profile.

    ``unit`` is ``"s"`` (seconds), ``"B"`` (bytes) or ``"n"`` (a count).
    ``error`` is set when a sample failed or timed out; samples taken before
    it are kept but the cell is shown as failed.
    """

    profile: str
    case: str
    system: str
    unit: str = "s"
    samples: list[float] = field(default_factory=list)
    error: str | None = None
    note: str | None = None

    @property
    def value(self) -> float | None:
        if self.error is not None:
            return None
        return median(self.samples)

    def to_json(self) -> dict:
        return {"profile": self.profile, "case": self.case, "system": self.system, "unit": self.unit,
                "samples": list(self.samples), "error": self.error, "note": self.note}

    @classmethod
    def from_json(cls, d: Mapping) -> Result:
        return cls(profile=d["profile"], case=d["case"], system=d["system"], unit=d.get("unit", "s"),
                   samples=list(d.get("samples", [])), error=d.get("error"), note=d.get("note"))


Key = tuple[str, str, str]  # (profile, case, system)


def index(results: Iterable[Result]) -> dict[Key, Result]:
    return {(r.profile, r.case, r.system): r for r in results}


@dataclass(frozen=True)
class Ref:
    """``factor`` × the value of ``system`` in ``case`` (same profile) + ``plus``.

    With several refs in a ``Target``, the smallest available one is the
    reference (e.g. "one PUT or parallel multipart, whichever raw does best").
    """

    case: str
    system: str
    factor: float = 1.0
    plus: float = 0.0


@dataclass(frozen=True)
class Target:
    """What mountsync's value should be: ``<= limit`` / ``< limit``, or ``<=`` a multiple of refs.

    ``profiles`` restricts where the target applies (empty: every profile).
    ``text`` is how the table shows it.
    """

    text: str
    limit: float | None = None
    strict: bool = False
    refs: tuple[Ref, ...] = ()
    profiles: tuple[str, ...] = ()

    def applies(self, profile: str) -> bool:
        return not self.profiles or profile in self.profiles


@dataclass(frozen=True)
class Verdict:
    measured: float | None
    limit: float | None
    status: str  # "met", "missed", "n/a" (no measurement or no reference)
    margin: str  # "by 12 % (0.3 s)", or the reason for n/a


def target_limit(target: Target, profile: str, results: Mapping[Key, Result]) -> float | None:
    """The bound a target sets in ``profile`` given the results (None if no reference was measured)."""
    bounds: list[float] = []
    if target.limit is not None:
        bounds.append(target.limit)
    if target.refs:
        candidates = []
        for ref in target.refs:
            r = results.get((profile, ref.case, ref.system))
            v = r.value if r is not None else None
            if v is not None:
                candidates.append(v * ref.factor + ref.plus)
        if not candidates:
            return None
        bounds.append(min(candidates))
    return min(bounds) if bounds else None


def evaluate(target: Target, profile: str, measured: Result | None,
             results: Mapping[Key, Result]) -> Verdict:
    """Compare mountsync's measurement with the target's bound in this profile."""
    value = measured.value if measured is not None else None
    if measured is None:
        return Verdict(None, None, "n/a", "not measured")
    if value is None:
        return Verdict(None, None, "missed", f"failed: {measured.error or 'no sample'}")
    limit = target_limit(target, profile, results)
    if limit is None:
        return Verdict(value, None, "n/a", "reference not measured")
    ok = value < limit if target.strict else value <= limit
    diff = value - limit
    rel = ratio(abs(diff), limit)
    how = f"{_pct(rel)} ({fmt_value(abs(diff), measured.unit)})"
    if ok:
        return Verdict(value, limit, "met", f"{how} under")
    return Verdict(value, limit, "missed", f"{how} over")


def _pct(x: float | None) -> str:
    if x is None:
        return "–"
    if x >= 10:
        return f"{x:.0f}×"
    return f"{x * 100:.0f} %"


def fmt_value(v: float | None, unit: str) -> str:
    """A value for the table: ``1.23 s``, ``45 ms``, ``12.0 MiB``, ``1,234``; ``–`` for None."""
    if v is None:
        return "–"
    if unit == "s":
        if v < 1:
            return f"{v * 1000:.0f} ms"
        if v < 100:
            return f"{v:.2f} s"
        return f"{v:.0f} s"
    if unit == "B":
        if v >= MiB:
            return f"{v / MiB:.1f} MiB"
        if v >= 1024:
            return f"{v / 1024:.0f} KiB"
        return f"{v:.0f} B"
    if unit == "n":
        return f"{v:,.0f}"
    return f"{v:g} {unit}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return ""
    if r >= 100:
        return f"{r:.0f}×"
    if r >= 10:
        return f"{r:.1f}×"
    return f"{r:.2f}×"


def fmt_size(n: int) -> str:
    """``256 MiB``, ``1 GiB``, ``4 KiB`` (for case titles)."""
    for unit, size in (("GiB", 1024 * MiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"
