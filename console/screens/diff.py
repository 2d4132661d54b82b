"""Two attempts side by side, and the unified diff of their generated files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from console.triage_text import render_diff

if TYPE_CHECKING:
    from console.engine.attempt_diff import AttemptDiff


class DiffScreen(Screen[None]):
    """Attempt ``run_a`` against ``run_b``."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="diff_back")]

    def __init__(self, run_a: str, run_b: str) -> None:
        super().__init__()
        self.run_a, self.run_b = run_a, run_b
        self.diff: AttemptDiff | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(Text("reading…", style="dim"), id="diff-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#detail").border_title = f"diff {self.run_a} → {self.run_b}"
        self.load()

    @work(thread=True, group="diff", exclusive=True, exit_on_error=False)
    def load(self) -> None:
        """Read both attempts off the loop."""
        from console.engine.attempt_diff import diff_runs
        from console.errors import UsageError

        db = self.app.read_db  # type: ignore[attr-defined]
        try:
            diff = diff_runs(db, self.run_a, self.run_b)
        except UsageError as exc:
            self.app.call_from_thread(
                self.query_one("#diff-body", Static).update, Text(str(exc), style="red")
            )
            return
        self.app.call_from_thread(self._show, diff)

    def _show(self, diff: AttemptDiff) -> None:
        self.diff = diff
        self.query_one("#diff-body", Static).update(render_diff(diff))
