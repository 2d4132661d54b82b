"""Stats: pass rate by model × prompt version with a sparkline per model, top fingerprints,
the three outcome measures with their definitions, and LLM spend from the ledger."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.screens.history import when

if TYPE_CHECKING:
    from console.engine.stats import Measure, StatsReport


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


class StatsScreen(Screen[None]):
    """Triage figures from history (see the module docstring)."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="stats_back"),
        Binding("g", "reload", "Refresh", id="stats_reload", tooltip="read history again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.report: StatsReport | None = None
        self.took_ms = 0.0

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(Text("reading history…", style="dim"), id="stats-body")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail").border_title = "stats"
        self.load()

    @work(thread=True, group="stats", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        """Compute the report off the loop."""
        from console.engine.stats import compute_stats

        db = self.app.read_db  # type: ignore[attr-defined]
        if db is None:
            return
        started = time.perf_counter()
        report = compute_stats(db)
        took = (time.perf_counter() - started) * 1000
        self.app.call_from_thread(self._show, report, took)

    def _show(self, report: StatsReport, took_ms: float) -> None:
        self.report, self.took_ms = report, took_ms
        self.query_one("#stats-body", Static).update(render_stats(report))

    def action_reload(self) -> None:
        """Read history again."""
        self.load()
