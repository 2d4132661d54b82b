"""The dashboard: the matrix, the queue line, running sandboxes, and the selected run's log."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input

from console.engine.live import CellState
from console.model import Combination, LogLine
from widgets.log_pane import LogPane
from widgets.queue_bar import QueueBar, QueueFigures
from widgets.sandbox_table import SandboxRow, SandboxTable
from widgets.verdict_matrix import CellView, VerdictMatrix

if TYPE_CHECKING:
    from console.app import VerdictApp

LOG_PAGE = 1000  # lines read from storage when a run is opened or paged back
USAGE_INTERVAL = 2.0  # seconds between CPU/RSS samples of running sandboxes
QUEUED_ROWS = 20  # queued jobs listed under the running ones
HOST = socket.gethostname()
KAFKA_INTERVAL = 3.0  # seconds between looks at Kafka's consumer lag and DLQ


def cell_view(cell: CellState, fan_out: set[str]) -> CellView:
    """How the matrix shows a cell (a fan-out attempt that passed is starred)."""
    starred = cell.job_id in fan_out and cell.verdict is not None and cell.verdict == "pass"
    return CellView(
        status=cell.status,
        verdict=cell.verdict.value if cell.verdict else None,
        attempt=cell.attempt,
        stage=cell.stage,
        run_id=cell.run_id,
        star=starred,
    )


class Dashboard(Screen[None]):
    """What an on-call engineer watches while a matrix runs."""

    # In the order the footer shows them: what on-call reaches for first, so the ones an
    # 80-column footer has no room for are the rarer ones (all are in ``?`` and ctrl+p).
    BINDINGS = [
        Binding("enter", "open_run", "Open", id="open", tooltip="the selected run in full"),
        Binding("e", "explain", "Explain", id="explain", tooltip="explain the selected failure"),
        Binding("r", "rerun", "Rerun", id="rerun", tooltip="rerun the selected combination"),
        Binding(
            "x", "first_error", "1st error", id="first_error",
            tooltip="jump to the first error in the log",
        ),
        Binding("slash,backslash", "filter", "Filter", id="filter", tooltip="show matching lines"),
        Binding("f", "follow", "Follow", id="follow", tooltip="follow the log or stay put"),
        Binding("H", "history", "History", id="history", tooltip="past runs and explanations"),
        Binding("s", "stats", "Stats", id="stats", tooltip="pass rates, fingerprints, outcomes"),
        Binding("d", "diff", "Diff", id="diff", tooltip="the last two attempts side by side"),
        Binding(
            "R", "fan_out", "Fan out", id="fan_out",
            tooltip="try the spec with every other prompt version x model",
        ),
        Binding("c", "cancel_run", "Cancel", id="cancel", tooltip="stop the selected run"),
        Binding("m", "mark", "Mark", id="mark", tooltip="a marker line in the log"),
        Binding("left_square_bracket", "older", "Older", id="older", show=False,
                tooltip="load older log lines from storage"),
        Binding("escape", "clear_filter", "Back", id="back", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.selected: Combination | None = None
        self.shown_run: str | None = None
        self._usage: dict[str, tuple[float, int]] = {}
        self._kafka: tuple[int, int] | None = None  # (lag of verdict.jobs, DLQ records)

    @property
    def vapp(self) -> VerdictApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield QueueBar(id="queue")
        with Vertical(id="top"):
            yield VerdictMatrix(id="matrix")
            yield SandboxTable(id="sandboxes")
        yield LogPane(id="log", max_lines=self.vapp.settings.ui.log_lines)
        yield Input(placeholder="filter (regex or text); enter applies, esc clears", id="filter")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one(LogPane).border_title = "log"
        self.query_one("#top").border_title = "matrix"
        self._draw_all()
        self.set_interval(0.25, self._tick)
        self.set_interval(USAGE_INTERVAL, self.sample_usage)
        self.set_interval(KAFKA_INTERVAL, self.sample_kafka)
        self.query_one(VerdictMatrix).focus()

    # --- drawing ---------------------------------------------------------------------------
    def _draw_all(self) -> None:
        live = self.vapp.live
        self._draw_cells(set(live.cells))
        self._draw_sandboxes()
        self._draw_queue()

    def _draw_cells(self, keys: set[str]) -> None:
        matrix = self.query_one(VerdictMatrix)
        live = self.vapp.live
        with self.app.batch_update():
            for key in sorted(keys):
                cell = live.cells.get(key)
                if cell is not None:
                    matrix.set_cell(cell.combination, cell_view(cell, self.vapp.fan_out_jobs))
        if self.selected is None and matrix.selected is not None:
            self._select(matrix.selected)
        elif self.selected is not None and self.selected.key in keys:
            self._follow_cell()

    def _draw_sandboxes(self) -> None:
        now = self.vapp.options.clock()
        rows = []
        for box in sorted(self.vapp.live.sandboxes.values(), key=lambda b: b.started):
            where = f"pod {box.pod}" if box.pod else f"pid {box.pid}" if box.pid else "-"
            if box.worker and box.pod is None and box.worker.split(":")[0] != HOST:
                where = box.worker  # a remote worker's pid means nothing here
            cpu, rss = self._usage.get(box.run_id, (None, None))
            rows.append(
                SandboxRow(
                    key=box.run_id,
                    combination=box.combination.key if box.combination else "(check)",
                    attempt=box.attempt,
                    where=where,
                    stage=box.stage or "-",
                    port=box.port,
                    cpu=cpu,
                    rss=rss,
                    age=box.age(now),
                )
            )
        queued = [c for c in self.vapp.live.cells.values() if c.status == "queued"]
        for cell in sorted(queued, key=lambda c: c.updated)[:QUEUED_ROWS]:
            rows.append(
                SandboxRow(
                    key=cell.job_id or cell.key,
                    combination=cell.key,
                    attempt=cell.attempt,
                    where="-",
                    stage="queued",
                    port=None,
                    cpu=None,
                    rss=None,
                    age=max(now - cell.updated, 0.0),
                )
            )
        table = self.query_one(SandboxTable)
        table.show_rows(rows)
        table.display = bool(rows)

    def _draw_queue(self) -> None:
        live = self.vapp.live
        counts = live.counts()
        engine = self.vapp.engine
        mode = engine.queue_url.kind if engine is not None else "view"
        failure = self.vapp.engine_error or (
            str(engine.failure) if engine is not None and engine.failure else ""
        )
        passed = sum(1 for c in live.cells.values() if c.verdict == "pass")
        self.query_one(QueueBar).show(
            QueueFigures(
                queued=counts["queued"],
                running=counts["running"],
                done=counts["done"],
                aborted=counts["aborted"],
                passed=passed,
                mode=mode,
                lag=self._kafka[0] if self._kafka else None,
                dlq=self._kafka[1] if self._kafka else None,
                failure=failure,
            )
        )

    def on_verdict_app_redraw(self, message: Any) -> None:
        changes = message.changes
        if changes.cells:
            self._draw_cells(changes.cells)
        if changes:
            self._draw_sandboxes()  # running ones, and queued jobs listed under them
            self._draw_queue()
        lines = message.logs.get(self.shown_run) if self.shown_run else None
        if lines:
            self.query_one(LogPane).add_lines(lines)

    def _tick(self) -> None:
        self.query_one(VerdictMatrix).tick()
        if self.query_one(SandboxTable).shown:
            self._draw_sandboxes()  # ages move on

    @work(thread=True, group="usage", exclusive=True, exit_on_error=False, description="usage")
    def sample_usage(self) -> None:
        """CPU and RSS of each running sandbox's process tree (psutil, off the loop)."""
        from console.engine import sandbox_usage

        boxes = list(self.vapp.live.sandboxes.values())
        if boxes:
            self._usage = asyncio.run(sandbox_usage(boxes))

    @work(group="kafka", exclusive=True, exit_on_error=False, description="kafka lag")
    async def sample_kafka(self) -> None:
        """Consumer lag of the jobs topic and the DLQ size (Kafka mode only)."""
        engine = self.vapp.engine
        if engine is None or engine.queue_url.kind != "kafka":
            return
        try:
            self._kafka = await self.vapp.engine_call(lambda e: e.kafka_figures())
        except Exception:  # noqa: BLE001 - the broker may be away for a while; try later
            self._kafka = None
        self._draw_queue()

    # --- selection and the log -----------------------------------------------------------
    @on(VerdictMatrix.Opened)
    def _open_selected_cell(self) -> None:
        self.action_open_run()

    @on(VerdictMatrix.Selected)
    def _on_selected(self, message: VerdictMatrix.Selected) -> None:
        if message.combination is not None:
            self._select(message.combination)

    def _select(self, combination: Combination) -> None:
        self.selected = combination
        self._follow_cell()

    def _follow_cell(self) -> None:
        """Show the log of the selected cell's latest run (a new attempt takes over)."""
        cell = self.vapp.live.cells.get(self.selected.key) if self.selected else None
        run_id = cell.run_id if cell else None
        if run_id != self.shown_run:
            self.shown_run = run_id
            self.vapp.watch_log(run_id)
            pane = self.query_one(LogPane)
            pane.border_title = f"log {cell.key} #{cell.attempt}" if cell else "log"
            pane.show_run(run_id, [])
            if run_id:
                self.load_log(run_id)

    @work(thread=True, group="log", exclusive=True, exit_on_error=False, description="read log")
    def load_log(self, run_id: str, before: int | None = None) -> None:
        """Read a page of the run's stored log (the last one, or the one before ``before``)."""
        from storage import runs

        db = self.vapp.read_db
        if db is None:
            return
        if before is None:
            record = runs.get_run(db, run_id)
            total = record.log_lines if record else 0
            lines = runs.run_log(db, run_id, max(total - LOG_PAGE, 0), LOG_PAGE)
        else:
            lines = runs.run_log(db, run_id, max(before - LOG_PAGE, 0), min(before, LOG_PAGE))
        self.app.call_from_thread(self._show_page, run_id, lines, before is not None)

    def _show_page(self, run_id: str, lines: list[LogLine], older: bool) -> None:
        if run_id != self.shown_run:
            return
        pane = self.query_one(LogPane)
        if older:
            pane.prepend(lines)
        else:
            pane.add_stored(lines)

    # --- actions -----------------------------------------------------------------------------
    def _selected_cell(self) -> CellState | None:
        return self.vapp.live.cells.get(self.selected.key) if self.selected else None

    def action_open_run(self) -> None:
        """Open the selected run in full."""
        cell = self._selected_cell()
        if cell is None or cell.run_id is None:
            self.notify("nothing has run in this cell yet", severity="warning")
            return
        from console.screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(cell.run_id))

    async def action_rerun(self) -> None:
        """Rerun the selected combination as a new attempt linked to its latest run."""
        cell = self._selected_cell()
        if cell is None or cell.run_id is None or self.vapp.host is None:
            self.notify("select a combination that has run", severity="warning")
            return
        run_id = cell.run_id
        try:
            job = await self.vapp.engine_call(lambda engine: engine.rerun(run_id))
        except Exception as exc:  # noqa: BLE001 - a UsageError or a broker error, said once
            self.notify(str(exc), severity="error")
            return
        self.notify(f"rerun queued: {job.combination.key} attempt {job.attempt}")

    async def action_fan_out(self) -> None:
        """Try the selected failing cell's spec with every other prompt version × model."""
        cell = self._selected_cell()
        if cell is None or cell.run_id is None or self.vapp.host is None:
            self.notify("select a combination that has run", severity="warning")
            return
        if cell.verdict is not None and cell.verdict == "pass":
            self.notify("this combination passes; fan out from a failing one", severity="warning")
            return
        run_id = cell.run_id
        try:
            jobs = await self.vapp.engine_call(lambda engine: engine.fan_out(run_id))
        except Exception as exc:  # noqa: BLE001 - said once, the console stays up
            self.notify(str(exc), severity="error")
            return
        self.vapp.fan_out_jobs.update(job.job_id for job in jobs)
        self.notify(f"fan-out queued: {len(jobs)} combinations; passing ones get a ★")

    async def action_cancel_run(self) -> None:
        """Stop the selected running combination; it is recorded as aborted."""
        cell = self._selected_cell()
        if cell is None or cell.status != "running" or cell.run_id is None:
            self.notify("select a running combination", severity="warning")
            return
        run_id = cell.run_id
        if self.vapp.host is None or not await self.vapp.engine_call(
            lambda engine: engine.cancel(run_id)
        ):
            self.notify("that run belongs to another process or worker", severity="warning")

    def action_follow(self) -> None:
        """Follow the log, or stay where you are."""
        following = self.query_one(LogPane).toggle_follow()
        self.notify("following the log" if following else "log paused (f to follow)")

    def action_filter(self) -> None:
        """Type a filter for the log."""
        field = self.query_one("#filter", Input)
        field.display = True
        field.focus()

    @on(Input.Submitted, "#filter")
    def _apply_filter(self, event: Input.Submitted) -> None:
        self.query_one(LogPane).set_filter(event.value)
        pane = self.query_one(LogPane)
        pane.border_subtitle = f"filter: {event.value}" if event.value else ""
        event.input.display = False
        self.query_one(VerdictMatrix).focus()

    def action_clear_filter(self) -> None:
        """Clear the filter and go back to the matrix."""
        field = self.query_one("#filter", Input)
        if field.display or self.query_one(LogPane).filter.text:
            field.value = ""
            field.display = False
            pane = self.query_one(LogPane)
            pane.set_filter("")
            pane.border_subtitle = ""
        self.query_one(VerdictMatrix).focus()

    def action_mark(self) -> None:
        """Add a marker line to the log."""
        self.query_one(LogPane).mark()

    def action_first_error(self) -> None:
        """Jump to the first error in the log."""
        if not self.query_one(LogPane).jump_to_first_error():
            self.notify("no error in the lines shown")

    def action_older(self) -> None:
        """Load the page of log lines before the oldest shown."""
        pane = self.query_one(LogPane)
        if self.shown_run and pane.first_seq:
            self.load_log(self.shown_run, before=pane.first_seq)

    # --- triage (screens of their own) ---------------------------------------------------
    def action_explain(self) -> None:
        """Explain the selected cell's failure."""
        cell = self._selected_cell()
        if cell is None or cell.run_id is None or cell.status != "done":
            self.notify("select a finished run", severity="warning")
            return
        from console.screens.explain import ExplainScreen

        self.app.push_screen(ExplainScreen(cell.run_id))

    def action_history(self) -> None:
        """Every run and explanation, searchable."""
        from console.screens.history import HistoryScreen

        self.app.push_screen(HistoryScreen())

    def action_stats(self) -> None:
        """Triage figures from history."""
        from console.screens.stats import StatsScreen

        self.app.push_screen(StatsScreen())

    def action_diff(self) -> None:
        """The selected combination's latest attempt against an earlier one."""
        if self.selected is not None:
            self.pick_attempts(self.selected.key)

    @work(thread=True, group="diff-pick", exclusive=True, exit_on_error=False)
    def pick_attempts(self, combination: str) -> None:
        """Find the two attempts to compare, off the loop."""
        from console.engine.attempt_diff import attempts_to_compare
        from console.errors import UsageError
        from console.screens.diff import DiffScreen

        try:
            run_a, run_b = attempts_to_compare(self.vapp.read_db, combination)  # type: ignore[arg-type]
        except UsageError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning")
            return
        self.app.call_from_thread(self.app.push_screen, DiffScreen(run_a, run_b))
