"""Stats: pass rate by model × prompt version with a sparkline per model, top fingerprints,
the three outcome measures with their definitions, and LLM spend from the ledger."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.triage_text import render_stats

if TYPE_CHECKING:
    from console.engine.stats import StatsReport


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
        yield Footer(compact=True)

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
