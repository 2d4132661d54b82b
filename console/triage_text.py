"""How the triage figures read as text (rich renderables, no Textual): shared by the
console's screens and by ``verdict stats`` / ``verdict diff``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from console.engine.attempt_diff import AttemptDiff, AttemptSide
    from console.engine.history import FingerprintTimeline
    from console.engine.stats import Measure, StatsReport


def when(ts: float) -> str:
    """Month, day and time (short enough for an 80-column terminal)."""
    return time.strftime("%m-%d %H:%M", time.localtime(ts))


KIND_STYLE = {"seen": "red", "fixed": "green", "returned": "bold magenta"}


def render_timeline(timeline: FingerprintTimeline) -> Group:
    """The timeline as a heading and one row per event."""
    fixed = f"fixed {when(timeline.fixed_at)}" if timeline.fixed_at else "not fixed"
    back = " · came back after the fix" if timeline.came_back else ""
    first = when(timeline.first_seen) if timeline.first_seen else "-"
    head = Text.assemble(
        (f"{timeline.runs} run(s)", "bold"), f" · first seen {first} · ",
        (fixed, "green" if timeline.fixed_at else "red"), (back, "magenta"),
    )
    table = Table(box=None, padding=(0, 1, 0, 0))
    for name in ("when", "what", "run", "combination", "how"):
        table.add_column(name)
    for event in timeline.events:
        table.add_row(
            Text(when(event.ts)), Text(event.kind, style=KIND_STYLE.get(event.kind, "")),
            Text(event.run_id), Text(event.combination), Text(event.how),
        )
    return Group(head, Text(), table)


def _stages(side: AttemptSide) -> str:
    return " ".join(
        f"{name}:{status}{'' if ms is None else f' {ms:.0f}ms'}" for name, status, ms in side.stages
    )


def render_diff(diff: AttemptDiff) -> RenderableType:
    """The side-by-side table and the coloured unified diff (plain text, never markup)."""
    table = Table(box=None, padding=(0, 1, 0, 0), expand=True)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column(f"#{diff.a.attempt or '?'} {diff.a.run_id}", ratio=1)
    table.add_column(f"#{diff.b.attempt or '?'} {diff.b.run_id}", ratio=1)
    style = {True: "green", False: "red"}
    table.add_row("verdict", Text(diff.a.verdict or "-", style=style[diff.a.verdict == "pass"]),
                  Text(diff.b.verdict or "-", style=style[diff.b.verdict == "pass"]))
    for label, left, right in (
        ("port", diff.a.port, diff.b.port),
        ("took", _secs(diff.a.duration), _secs(diff.b.duration)),
        ("stages", _stages(diff.a), _stages(diff.b)),
        ("failure", diff.a.failure, diff.b.failure),
        ("reason", diff.a.reason, diff.b.reason),
    ):
        table.add_row(label, Text(str(left if left is not None else "-")),
                      Text(str(right if right is not None else "-")))
    lines = Text()
    for line in diff.diff:
        colour = ("green" if line.startswith("+") else "red" if line.startswith("-")
                  else "cyan" if line.startswith("@@") else "")
        lines.append(line + "\n", style=colour)
    changed = ", ".join(diff.changed_files) or "no file changed"
    parts: list[RenderableType] = [table, Text(), Text(f"generated files: {changed}", style="bold")]
    if diff.note:
        parts.append(Text(diff.note, style="dim"))
    parts.append(lines)
    return Group(*parts)


def _secs(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f}s"


def measure_value(key: str, measure: Measure) -> str:
    """A measure's figure as people read it."""
    if measure.value is None:
        return "-"
    if key == "time_to_fix":
        return _duration(measure.value)
    return f"{measure.value:.0%} ({measure.numerator}/{measure.denominator})"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def render_stats(report: StatsReport) -> RenderableType:
    """Every table of the stats screen."""
    from console.engine.stats import sparkline

    prompts = sorted({p.prompt for p in report.pass_rates})
    rates = Table(title=f"pass rate ({report.runs} runs)", title_justify="left", box=None,
                  padding=(0, 1, 0, 0))
    rates.add_column("model")
    for prompt in prompts:
        rates.add_column(prompt, justify="right")
    rates.add_column("over time")
    by_cell = {(p.model, p.prompt): p for p in report.pass_rates}
    for model in sorted({p.model for p in report.pass_rates}):
        cells = [
            Text(f"{by_cell[(model, pr)].rate:.0%}") if (model, pr) in by_cell else Text("-")
            for pr in prompts
        ]
        rates.add_row(Text(model), *cells,
                      Text(sparkline(report.sparklines.get(model, [])), style="cyan"))

    measures = Table(title="outcomes", title_justify="left", box=None, padding=(0, 1, 0, 0),
                     expand=True)
    measures.add_column("measure", ratio=2)
    measures.add_column("value", no_wrap=True)
    measures.add_column("definition", ratio=3, style="dim")
    for key, measure in report.measures.items():
        measures.add_row(Text(measure.name), Text(measure_value(key, measure), style="bold"),
                         Text(measure.definition))

    top = Table(title=f"top fingerprints ({report.fingerprints})", title_justify="left",
                box=None, padding=(0, 1, 0, 0))
    for name in ("fingerprint", "runs", "first", "last", "fixed", "e.g."):
        top.add_column(name)
    for fp in report.top_fingerprints:
        fixed = "fixed, came back" if fp.came_back else "fixed" if fp.fixed else "no"
        top.add_row(Text(fp.fingerprint[:12]), Text(str(fp.count)), Text(when(fp.first_seen)),
                    Text(when(fp.last_seen)),
                    Text(fixed, style="green" if fp.fixed and not fp.came_back else "red"),
                    Text(fp.example))

    spend = Table(title="LLM spend", title_justify="left", box=None, padding=(0, 1, 0, 0))
    for name in ("by", "key", "calls", "tokens in", "tokens out", "cost"):
        spend.add_column(name, justify="right" if name in ("calls", "cost") else "left")
    for by, totals in report.spend.items():
        for total in totals:
            spend.add_row(by, Text(total.key or "-"), str(total.calls), str(total.input_tokens),
                          str(total.output_tokens), f"${total.cost_usd:.4f}")
    return Group(measures, Text(), rates, Text(), top, Text(), spend)
