"""A fingerprint's timeline: every run that had it, when it was first seen, whether and
when a rerun or fan-out fixed it, and whether it came back after being fixed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
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
    from console.engine.history import FingerprintTimeline

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


class FingerprintScreen(Screen[None]):
    """One fingerprint over time."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="fingerprint_back")]

    def __init__(self, fingerprint: str) -> None:
        super().__init__()
        self.fingerprint = fingerprint
        self.timeline: FingerprintTimeline | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(Text("reading…", style="dim"), id="timeline-body")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#detail").border_title = f"fingerprint {self.fingerprint[:16]}"
        self.load()

    @work(thread=True, group="timeline", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        """Read the timeline off the loop."""
        from console.engine.history import fingerprint_timeline

        db = self.app.read_db  # type: ignore[attr-defined]
        if db is not None:
            self.app.call_from_thread(self._show, fingerprint_timeline(db, self.fingerprint))

    def _show(self, timeline: FingerprintTimeline) -> None:
        self.timeline = timeline
        self.query_one("#timeline-body", Static).update(render_timeline(timeline))
