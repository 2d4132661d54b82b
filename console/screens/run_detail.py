"""One run in full: verdict and reason, stages, failure with app frames, fingerprint,
reruns, generation, earlier attempts of its combination and the end of its log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    from console.engine.views import RunDetail

DETAIL_LOG_LINES = 30


def attempts_table(detail: RunDetail) -> RenderableType:
    """Every attempt of the run's combination, newest first."""
    table = Table(title="attempts of this combination", title_justify="left", box=None)
    for name in ("try", "run", "how", "verdict", "error"):
        table.add_column(name)
    for row in detail.attempts:
        mark = "▶ " if row.run_id == detail.record.run_id else "  "
        table.add_row(
            Text(f"{mark}{row.attempt}"),
            Text(row.run_id or "-"),
            Text(row.origin),
            Text(row.verdict or row.status or "queued"),
            Text((row.fingerprint or "-")[:8]),
        )
    return table


class RunDetailScreen(Screen[None]):
    """The detail of one run, read from SQLite in a thread worker."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="detail_back"),
        Binding("r", "rerun", "Rerun", id="detail_rerun", tooltip="rerun this combination"),
        Binding("e", "explain", "Explain", id="detail_explain", tooltip="explain this failure"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.detail: RunDetail | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail"):
            yield Static(Text(f"loading run {self.run_id}…", style="dim"), id="detail-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#detail").border_title = f"run {self.run_id}"
        self.load()

    @work(thread=True, group="detail", exclusive=True, exit_on_error=False, description="run")
    def load(self) -> None:
        """Read the run's detail off the loop."""
        from console.engine.views import run_detail
        from storage import runs

        db = self.app.read_db  # type: ignore[attr-defined]
        record = runs.get_run(db, self.run_id) if db is not None else None
        detail = run_detail(db, record, DETAIL_LOG_LINES) if record is not None else None
        self.app.call_from_thread(self._show, detail)

    def _show(self, detail: RunDetail | None) -> None:
        from console.commands.show import render

        body = self.query_one("#detail-body", Static)
        if detail is None:
            body.update(Text(f"no run {self.run_id} in the database", style="red"))
            return
        self.detail = detail
        parts: list[RenderableType] = [render(detail.to_json())]
        if len(detail.attempts) > 1:
            parts += [Text(), attempts_table(detail)]
        body.update(Group(*parts))

    def on_verdict_app_redraw(self, message: Any) -> None:
        # The run may have moved on (a verdict arrived): read it again.
        if self.detail is None or self.detail.record.status == "running":
            self.load()

    async def action_rerun(self) -> None:
        """Rerun this run's combination."""
        run_id = self.run_id
        try:
            job = await self.app.engine_call(  # type: ignore[attr-defined]
                lambda engine: engine.rerun(run_id)
            )
        except Exception as exc:  # noqa: BLE001 - said once, the console stays up
            self.notify(str(exc), severity="error")
            return
        self.notify(f"rerun queued: {job.combination.key} attempt {job.attempt}")

    def action_explain(self) -> None:
        """Explain this run's failure."""
        from console.screens.explain import ExplainScreen

        self.app.push_screen(ExplainScreen(self.run_id))
