"""History: every run and explanation, newest first, paged from SQLite; filters and
full-text search (``/``) with no network; a run opens in full, a fingerprint its timeline."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from console.triage_text import when

if TYPE_CHECKING:
    from console.engine.history import Cursor, HistoryPage, HistoryRow

VERDICT_STYLE = {"pass": "green", "llm": "cyan", "offline": "cyan", "cached": "cyan",
                 "unavailable": "yellow"}


class HistoryScreen(Screen[None]):
    """Past runs and explanations (see the module docstring)."""

    DEFAULT_CSS = """
    HistoryScreen #history { height: 1fr; border: round $primary-darken-2; }
    HistoryScreen #history-search { dock: bottom; margin-bottom: 1; }
    HistoryScreen #history-status { height: 1; padding: 0 1; color: $text-muted; }
    """

    BINDINGS = [
        Binding("escape", "back", "Back", id="history_back"),
        Binding("slash", "search", "Search", id="history_search",
                tooltip="full text, or verdict: spec: prompt: model: fp: since: until:"),
        Binding("enter", "open", "Open", id="history_open", tooltip="the run, or the explanation"),
        Binding("e", "explain", "Explain", id="history_explain",
                tooltip="explain the selected row's run"),
        Binding("t", "timeline", "Timeline", id="history_timeline",
                tooltip="the selected row's fingerprint over time"),
        Binding("n", "more", "More", id="history_more", tooltip="the next page"),
    ]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.query_text = query
        self.rows: list[HistoryRow] = []
        self.cursor: Cursor | None = None
        self.loading = False
        self.took_ms = 0.0

    def compose(self) -> ComposeResult:
        yield Static("", id="history-status")
        yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
        yield Input(value=self.query_text, id="history-search",
                    placeholder="search (e.g. address in use  verdict:crashed  model:m1)")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.border_title = "history"
        for name, width in (("when", 11), ("kind", 4), ("combination", 22), ("verdict", 9),
                            ("what", None)):
            table.add_column(name, width=width, key=name)
        self.query_one(Input).display = False
        table.focus()
        self.load(reset=True)

    @work(thread=True, group="history", exclusive=True, exit_on_error=False, description="history")
    def load(self, reset: bool = False) -> None:
        """Read a page (the first one when ``reset``), off the loop."""
        from console.engine.history import history_page, parse_history_query
        from console.errors import UsageError

        try:
            query = parse_history_query(self.query_text)
        except UsageError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        db = self.app.read_db  # type: ignore[attr-defined]
        if db is None:
            return
        started = time.perf_counter()
        page = history_page(db, query, None if reset else self.cursor)
        took = (time.perf_counter() - started) * 1000
        self.app.call_from_thread(self._show, page, reset, took)

    def _show(self, page: HistoryPage, reset: bool, took_ms: float) -> None:
        self.loading = False
        self.took_ms = took_ms
        table = self.query_one(DataTable)
        if reset:
            table.clear()
            self.rows = []
        self.cursor = page.next_cursor
        with self.app.batch_update():
            for row in page.rows:
                if row.kind == "run":
                    kind, style = "run", VERDICT_STYLE.get(row.verdict, "red")
                else:
                    kind, style = "expl", VERDICT_STYLE.get(row.verdict, "cyan")
                table.add_row(
                    Text(when(row.ts)),
                    Text(kind, style="dim"),
                    Text(row.combination),
                    Text(row.verdict, style=style),
                    Text(row.summary),  # log/LLM text: never markup
                    key=f"{row.kind}:{row.key}",
                )
                self.rows.append(row)
        more = "  n: more" if self.cursor is not None else ""
        search = f"  search: {self.query_text}" if self.query_text else ""
        self.query_one("#history-status", Static).update(
            Text(f"{len(self.rows)} shown{search}{more}")
        )

    def selected_row(self) -> HistoryRow | None:
        """The row under the cursor."""
        table = self.query_one(DataTable)
        index = table.cursor_row
        return self.rows[index] if 0 <= index < len(self.rows) else None

    # --- actions -----------------------------------------------------------------------
    def action_search(self) -> None:
        """Type a search or filters."""
        field = self.query_one(Input)
        field.display = True
        field.focus()

    @on(Input.Submitted, "#history-search")
    def _search(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip()
        event.input.display = False
        self.query_one(DataTable).focus()
        self.load(reset=True)

    def action_back(self) -> None:
        """Close the search field, or leave the history."""
        field = self.query_one(Input)
        if field.display:
            field.display = False
            self.query_one(DataTable).focus()
            return
        self.app.pop_screen()

    @on(DataTable.RowSelected)
    def _row_selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        """A run opens in full; an explanation opens in the explain pane."""
        row = self.selected_row()
        if row is None or row.run_id is None:
            return
        if row.kind == "run":
            from console.screens.run_detail import RunDetailScreen

            self.app.push_screen(RunDetailScreen(row.run_id))
        else:
            from console.screens.explain import ExplainScreen

            self.app.push_screen(ExplainScreen(row.run_id))

    def action_explain(self) -> None:
        """Explain the selected row's run."""
        row = self.selected_row()
        if row is None or row.run_id is None:
            return
        from console.screens.explain import ExplainScreen

        self.app.push_screen(ExplainScreen(row.run_id))

    def action_timeline(self) -> None:
        """The selected row's fingerprint over time."""
        row = self.selected_row()
        if row is None or not row.fingerprint:
            self.notify("this row has no fingerprint", severity="warning")
            return
        from console.screens.fingerprint import FingerprintScreen

        self.app.push_screen(FingerprintScreen(row.fingerprint))

    def action_more(self) -> None:
        """Load the next page (once: a page being read is not asked for again)."""
        if self.cursor is not None and not self.loading:
            self.loading = True
            self.load()

    @on(DataTable.RowHighlighted)
    def _near_end(self, event: DataTable.RowHighlighted) -> None:
        if event.cursor_row >= len(self.rows) - 5:
            self.action_more()

    def on_verdict_app_redraw(self, message: Any) -> None:
        """History is read on demand; live changes do not reorder what is being read."""
