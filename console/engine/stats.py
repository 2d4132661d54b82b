"""Triage statistics from history: pass rates, top fingerprints, the three outcome
measures and LLM spend.  Blocking SQLite reads: call from a thread."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from storage import history as store
from storage.llm_calls import UsageTotals, usage_totals

if TYPE_CHECKING:
    from storage.db import Database

SPARK_BUCKETS = 12
TOP_FINGERPRINTS = 10

DEFINITIONS = {
    "time_to_fix": "median time from a combination's first failing run ending to the end of"
    " its first passing run after it (combinations never fixed are left out)",
    "rerun_rescue": "share of failing combinations for which a rerun or fan-out of one of"
    " their failing runs passed (a passing prompt × model was found)",
    "regression": "share of fixed fingerprints seen again after their first fix (a fix: a"
    " rerun, fan-out or later attempt of the combination passed)",
}


@dataclass
class PassRate:
    """Passing runs of one model × prompt version."""

    model: str
    prompt: str
    passed: int
    total: int

    @property
    def rate(self) -> float:
        """passed / total."""
        return self.passed / self.total if self.total else 0.0


@dataclass
class FingerprintStat:
    """One fingerprint: how often, when, and whether it was fixed (and came back)."""

    fingerprint: str
    count: int
    first_seen: float
    last_seen: float
    fixed: bool
    came_back: bool
    example: str  # a combination that had it


@dataclass
class Measure:
    """An outcome measure with its definition and the counts behind it."""

    name: str
    value: float | None
    numerator: int
    denominator: int
    definition: str


@dataclass
class StatsReport:
    """Everything the stats screen and ``verdict stats`` show."""

    runs: int
    pass_rates: list[PassRate]
    sparklines: dict[str, list[float | None]]
    top_fingerprints: list[FingerprintStat]
    fingerprints: int
    measures: dict[str, Measure]
    spend: dict[str, list[UsageTotals]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``verdict stats --json`` object."""
        return {
            "runs": self.runs,
            "pass_rates": [{**asdict(p), "rate": round(p.rate, 4)} for p in self.pass_rates],
            "sparklines": self.sparklines,
            "fingerprints": self.fingerprints,
            "top_fingerprints": [asdict(f) for f in self.top_fingerprints],
            "measures": {k: asdict(m) for k, m in self.measures.items()},
            "spend": {k: [asdict(t) for t in v] for k, v in self.spend.items()},
        }


def compute_stats(db: Database, *, since: float | None = None) -> StatsReport:
    """Read history and compute the report (``since``: epoch seconds).

    The work is done by SQLite over its indexes and the per-fingerprint summary its
    triggers keep (rows per model × prompt × verdict, per combination that failed and per
    fingerprint come back), not by reading every run.
    """
    groups = store.outcome_groups(db, since=since)
    report = StatsReport(
        runs=sum(int(g["total"]) for g in groups),
        pass_rates=_pass_rates(groups),
        sparklines=_sparklines(store.outcome_buckets(db, groups, SPARK_BUCKETS)),
        top_fingerprints=[],
        fingerprints=0,
        measures={},
    )
    combos = store.failing_combinations(db, since=since)
    waits = [
        float(c["pass_end"]) - float(c["fail_end"]) for c in combos if c["pass_end"] is not None
    ]
    rescued = sum(1 for c in combos if c["rescued"])
    prints = []
    for row in store.fingerprint_rows(db, since=since):
        fixes = [t for t in (row["by_attempt"], row["by_rerun"]) if t is not None]
        fixed_at = min(fixes) if fixes else None
        prints.append(
            FingerprintStat(
                fingerprint=row["fingerprint"],
                count=int(row["count"]),
                first_seen=float(row["first_seen"]),
                last_seen=float(row["last_seen"]),
                fixed=fixed_at is not None,
                came_back=fixed_at is not None and float(row["last_seen"]) > fixed_at,
                example=row["example"],
            )
        )
    fixed = [p for p in prints if p.fixed]
    back = sum(1 for p in fixed if p.came_back)
    report.measures = {
        "time_to_fix": Measure(
            "time from first failure to first pass",
            statistics.median(waits) if waits else None,
            len(waits),
            len(combos),
            DEFINITIONS["time_to_fix"],
        ),
        "rerun_rescue": Measure(
            "failing combinations rescued by a rerun or fan-out",
            _rate(rescued, len(combos)),
            rescued,
            len(combos),
            DEFINITIONS["rerun_rescue"],
        ),
        "regression": Measure(
            "fixed fingerprints that came back",
            _rate(back, len(fixed)),
            back,
            len(fixed),
            DEFINITIONS["regression"],
        ),
    }
    prints.sort(key=lambda f: (-f.count, -f.last_seen, f.fingerprint))
    report.fingerprints = len(prints)
    report.top_fingerprints = prints[:TOP_FINGERPRINTS]
    report.spend = {by: usage_totals(db, by=by, since=since) for by in ("model", "feature", "user")}
    return report


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _pass_rates(groups: list[dict[str, Any]]) -> list[PassRate]:
    """Per model × prompt version, from the per-verdict counts."""
    rates: dict[tuple[str, str], PassRate] = {}
    for group in groups:
        key = (group["model"], group["prompt"])
        rate = rates.get(key) or rates.setdefault(key, PassRate(*key, passed=0, total=0))
        rate.total += int(group["total"])
        if group["verdict"] == "pass":
            rate.passed += int(group["total"])
    return [rates[key] for key in sorted(rates)]


def _sparklines(rows: list[dict[str, Any]]) -> dict[str, list[float | None]]:
    """Per model, the pass rate in each of :data:`SPARK_BUCKETS` equal spans of time."""
    counts: dict[str, list[list[int]]] = {}
    for row in rows:
        buckets = counts.get(row["model"])
        if buckets is None:
            buckets = counts[row["model"]] = [[0, 0] for _ in range(SPARK_BUCKETS)]
        span = buckets[int(row["bucket"])]
        span[1] += int(row["total"])
        if row["verdict"] == "pass":
            span[0] += int(row["total"])
    return {
        model: [p / t if t else None for p, t in buckets]
        for model, buckets in sorted(counts.items())
    }


SPARK_GLYPHS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """Rates 0..1 as block glyphs; a span without runs is a space."""
    out = []
    for value in values:
        if value is None:
            out.append(" ")
        else:
            out.append(SPARK_GLYPHS[min(int(value * len(SPARK_GLYPHS)), len(SPARK_GLYPHS) - 1)])
    return "".join(out)
