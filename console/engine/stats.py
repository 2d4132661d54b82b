"""Triage statistics from history: pass rates, top fingerprints, the three outcome
measures and LLM spend.  A blocking read of every finished run: call from a thread."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from storage.history import RUN_FACT_COLUMNS, run_facts
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

_I = {name: index for index, name in enumerate(RUN_FACT_COLUMNS)}


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
    """Read history and compute the report (``since``: epoch seconds)."""
    facts = run_facts(db, since=since)
    report = stats_from_facts(facts)
    report.spend = {by: usage_totals(db, by=by, since=since) for by in ("model", "feature", "user")}
    return report


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def stats_from_facts(facts: list[tuple[Any, ...]]) -> StatsReport:
    """The report from run tuples (:data:`~storage.history.RUN_FACT_COLUMNS`, oldest first)."""
    spec_i, prompt_i, model_i = _I["spec"], _I["prompt"], _I["model"]
    verdict_i, fp_i, started_i, finished_i = _I["verdict"], _I["fingerprint"], _I["started"], _I[
        "finished"]
    run_i, rerun_i = _I["run_id"], _I["rerun_of"]

    rates: dict[tuple[str, str], list[int]] = {}
    by_id: dict[str, tuple[Any, ...]] = {}
    combo_first_fail: dict[tuple[str, str, str], float] = {}
    combo_first_fix: dict[tuple[str, str, str], float] = {}
    failing_combo_of_run: dict[str, tuple[str, str, str]] = {}
    rescued: set[tuple[str, str, str]] = set()
    fp_stats: dict[str, list[Any]] = {}  # fp -> [count, first, last, example, fixed_at, back]
    fps_of_combo: dict[tuple[str, str, str], set[str]] = {}
    fps_of_run: dict[str, str] = {}

    for row in facts:
        combo = (row[spec_i], row[prompt_i], row[model_i])
        passed = row[verdict_i] == "pass"
        cell = rates.setdefault((row[model_i], row[prompt_i]), [0, 0])
        cell[0] += passed
        cell[1] += 1
        by_id[row[run_i]] = row
        started = float(row[started_i] or 0.0)
        ended = float(row[finished_i] or started)
        if not passed:
            combo_first_fail.setdefault(combo, ended)
            failing_combo_of_run[row[run_i]] = combo
            fp = row[fp_i]
            if fp:
                stat = fp_stats.get(fp)
                if stat is None:
                    fp_stats[fp] = [1, started, started, "/".join(combo), None, False]
                else:
                    stat[0] += 1
                    stat[2] = started
                    if stat[4] is not None and started > stat[4]:
                        stat[5] = True
                fps_of_combo.setdefault(combo, set()).add(fp)
                fps_of_run[row[run_i]] = fp
            continue
        if combo in combo_first_fail and combo not in combo_first_fix:
            combo_first_fix[combo] = ended
        origin = row[rerun_i]
        fixed_fps: set[str] = set(fps_of_combo.pop(combo, set()))
        if origin and origin in failing_combo_of_run:
            rescued.add(failing_combo_of_run[origin])
            if origin in fps_of_run:
                fixed_fps.add(fps_of_run[origin])
        for fp in fixed_fps:
            stat = fp_stats[fp]
            if stat[4] is None:
                stat[4] = started

    pass_rates = [
        PassRate(model, prompt, passed, total)
        for (model, prompt), (passed, total) in sorted(rates.items())
    ]
    waits = [combo_first_fix[c] - combo_first_fail[c] for c in combo_first_fix]
    fixed = [s for s in fp_stats.values() if s[4] is not None]
    measures = {
        "time_to_fix": Measure(
            "time from first failure to first pass",
            statistics.median(waits) if waits else None,
            len(waits),
            len(combo_first_fail),
            DEFINITIONS["time_to_fix"],
        ),
        "rerun_rescue": Measure(
            "failing combinations rescued by a rerun or fan-out",
            _rate(len(rescued), len(combo_first_fail)),
            len(rescued),
            len(combo_first_fail),
            DEFINITIONS["rerun_rescue"],
        ),
        "regression": Measure(
            "fixed fingerprints that came back",
            _rate(sum(1 for s in fixed if s[5]), len(fixed)),
            sum(1 for s in fixed if s[5]),
            len(fixed),
            DEFINITIONS["regression"],
        ),
    }
    top = sorted(fp_stats.items(), key=lambda item: (-item[1][0], -item[1][2], item[0]))
    return StatsReport(
        runs=len(facts),
        pass_rates=pass_rates,
        sparklines=_sparklines(facts),
        top_fingerprints=[
            FingerprintStat(fp, s[0], s[1], s[2], s[4] is not None, s[5], s[3])
            for fp, s in top[:TOP_FINGERPRINTS]
        ],
        fingerprints=len(fp_stats),
        measures=measures,
    )


def _sparklines(facts: list[tuple[Any, ...]]) -> dict[str, list[float | None]]:
    """Per model, the pass rate in each of :data:`SPARK_BUCKETS` equal spans of time."""
    if not facts:
        return {}
    started_i, model_i, verdict_i = _I["started"], _I["model"], _I["verdict"]
    first = float(facts[0][started_i] or 0.0)
    last = float(facts[-1][started_i] or 0.0)
    span = max(last - first, 1e-9)
    counts: dict[str, list[list[int]]] = {}
    for row in facts:
        slot = min(int((float(row[started_i] or 0.0) - first) / span * SPARK_BUCKETS),
                   SPARK_BUCKETS - 1)
        buckets = counts.setdefault(row[model_i], [[0, 0] for _ in range(SPARK_BUCKETS)])
        buckets[slot][0] += row[verdict_i] == "pass"
        buckets[slot][1] += 1
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
