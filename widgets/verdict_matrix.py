"""The verdict matrix: rows spec × prompt version, columns models, one cell per combination.

Each cell shows a glyph *and* a word (never colour alone), the attempt count, and the stage
while the combination runs.  Cells update by key (``update_cell``), never by clearing.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from console.model import Combination, Verdict

GLYPHS: dict[str, tuple[str, str, str]] = {
    # verdict or status -> (glyph, word, style)
    Verdict.PASS.value: ("✓", "pass", "bold green"),
    Verdict.GENERATION_FAILED.value: ("✗", "gen fail", "red"),
    Verdict.INSTALL_FAILED.value: ("✗", "install", "red"),
    Verdict.CRASHED.value: ("✗", "crashed", "bold red"),
    Verdict.EXITED_EARLY.value: ("✗", "exited", "red"),
    Verdict.NO_PORT.value: ("✗", "no port", "red"),
    Verdict.HTTP_ERROR.value: ("✗", "http err", "red"),
    Verdict.UNHEALTHY.value: ("✗", "unhealthy", "red"),
    Verdict.LOG_ERROR.value: ("✗", "log err", "red"),
    Verdict.TIMEOUT.value: ("✗", "timeout", "magenta"),
    "queued": ("·", "queued", "dim"),
    "aborted": ("⊘", "aborted", "yellow"),
}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


@dataclass(frozen=True)
class CellView:
    """What one cell shows: independent of how the engine stores it."""

    status: str  # queued, running, done, aborted
    verdict: str | None = None
    attempt: int = 1
    stage: str | None = None
    run_id: str | None = None
    star: bool = False  # a fan-out attempt that passed


def render_cell(cell: CellView | None, tick: int = 0) -> Text:
    """The text of one cell."""
    if cell is None:
        return Text("—", style="dim")
    if cell.status == "running":
        glyph, word, style = SPINNER[tick % len(SPINNER)], cell.stage or "start", "bold cyan"
    elif cell.status == "done" and cell.verdict:
        glyph, word, style = GLYPHS.get(cell.verdict, ("?", cell.verdict, ""))
    else:
        glyph, word, style = GLYPHS.get(cell.status, ("·", cell.status, "dim"))
    text = Text(f"{glyph} {word}", style=style)
    if cell.attempt > 1:
        text.append(f" ×{cell.attempt}", style="dim")
    if cell.star:
        text.append(" ★", style="bold yellow")
    return text


class VerdictMatrix(DataTable[Text]):
    """The matrix of combinations (see the module docstring).

    Rows are ``spec/prompt``; columns are models.  The cursor moves with arrows or hjkl;
    :class:`VerdictMatrix.Selected` is posted whenever the cursor lands on a combination.
    """

    BINDINGS = [
        Binding("h", "cursor_left", "Left", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("l", "cursor_right", "Right", show=False),
    ]

    DEFAULT_CSS = """
    VerdictMatrix { height: 1fr; }
    """

    @dataclass
    class Selected(Message):
        """The cursor is on ``combination`` (None: on an empty cell)."""

        combination: Combination | None

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="cell", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        self.cells: dict[str, CellView] = {}
        self._rows: list[str] = []
        self._columns: list[str] = []
        self._tick = 0

    # --- shape ------------------------------------------------------------------------------
    def set_cell(self, combination: Combination, cell: CellView) -> None:
        """Show ``cell`` for ``combination``, adding its row or column when new."""
        row, column = f"{combination.spec}/{combination.prompt}", combination.model
        if column not in self._columns:
            self._columns.append(column)
            self.add_column(Text(column, style="bold"), key=column)
            for existing in self._rows:
                self.update_cell(existing, column, render_cell(None), update_width=True)
        if row not in self._rows:
            self._rows.append(row)
            values = [render_cell(None) for _ in self._columns]
            self.add_row(*values, key=row, label=Text(row))
        self.cells[combination.key] = cell
        self.update_cell(row, column, render_cell(cell, self._tick), update_width=True)

    def tick(self) -> None:
        """Advance the spinner of running cells."""
        self._tick += 1
        for key, cell in self.cells.items():
            if cell.status == "running":
                spec, prompt, model = key.split("/", 2)
                self.update_cell(f"{spec}/{prompt}", model, render_cell(cell, self._tick))

    @property
    def selected(self) -> Combination | None:
        """The combination under the cursor."""
        if not self._rows or not self._columns:
            return None
        row = self._rows[min(self.cursor_row, len(self._rows) - 1)]
        column = self._columns[min(self.cursor_column, len(self._columns) - 1)]
        spec, prompt = row.split("/", 1)
        combination = Combination(spec=spec, prompt=prompt, model=column)
        return combination if combination.key in self.cells else None

    def select(self, combination: Combination) -> None:
        """Move the cursor onto ``combination``."""
        row, column = f"{combination.spec}/{combination.prompt}", combination.model
        if row in self._rows and column in self._columns:
            self.move_cursor(row=self._rows.index(row), column=self._columns.index(column))

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        """Say which combination the cursor is on."""
        self.post_message(self.Selected(self.selected))
