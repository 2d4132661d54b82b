"""A fingerprint's timeline: every run that had it, when it was first seen, whether and
when a rerun or fan-out fixed it, and whether it came back after being fixed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.triage_text import render_timeline

if TYPE_CHECKING:
    from console.engine.history import FingerprintTimeline

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
        yield Footer(compact=True)

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
