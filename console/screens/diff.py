"""Two attempts side by side, and the unified diff of their generated files."""

from __future__ import annotations

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

if TYPE_CHECKING:
    from console.engine.attempt_diff import AttemptDiff, AttemptSide


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
        yield Footer()

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
