"""The verdict matrix: rows spec × prompt version, columns models, one cell per combination.

Each cell shows a glyph *and* a word (never colour alone), the attempt count, and the stage
while the combination runs.  A line-API widget: only visible rows are rendered, each row's
strip is cached until one of its cells (or the cursor) changes, and a changed cell refreshes
just its own line — a 1,000-cell matrix receiving hundreds of events a second stays cheap.
The header row stays on top while the rows scroll.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

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
CELL_WIDTH = 14  # "✗ unhealthy ×3" fits; longer text is cropped, the glyph never is
MAX_COLUMN = 24  # a longer model name is cut
GAP = 2
MAX_LABEL = 32


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


class VerdictMatrix(ScrollView, can_focus=True):
    """The matrix of combinations (see the module docstring).

    Rows are ``spec/prompt``; columns are models.  The cursor moves with arrows or hjkl;
    :class:`VerdictMatrix.Selected` is posted whenever the cursor lands on a cell and
    :class:`VerdictMatrix.Opened` when ``enter`` is pressed on one.
    """

    BINDINGS = [
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("left,h", "cursor_left", "Left", show=False),
        Binding("right,l", "cursor_right", "Right", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
        Binding("enter", "open", "Open", show=False),
    ]

    DEFAULT_CSS = """
    VerdictMatrix { height: auto; max-height: 16; padding: 0 0 0 1; }
    VerdictMatrix > .verdict-matrix--header { text-style: bold; background: $primary 30%; }
    """

    COMPONENT_CLASSES = {"verdict-matrix--header"}

    cursor_row: reactive[int] = reactive(0)
    cursor_column: reactive[int] = reactive(0)

    @dataclass
    class Selected(Message):
        """The cursor is on ``combination`` (None: on an empty cell)."""

        combination: Combination | None

    @dataclass
    class Opened(Message):
        """``enter`` on ``combination``."""

        combination: Combination | None

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.cells: dict[str, CellView] = {}
        self.rows: list[str] = []
        self.columns: list[str] = []
        self._row_index: dict[str, int] = {}
        self._column_index: dict[str, int] = {}
        self._running_rows: dict[int, int] = {}  # row -> running cells in it
        self._strips: dict[int, Strip] = {}  # cached rendered rows
        self._header: Strip | None = None
        self._label_width = 8
        self._widths: list[int] = []
        self._starts: list[int] = []  # x of each column
        self._tick = 0

    # --- content ------------------------------------------------------------------------
    def set_cell(self, combination: Combination, cell: CellView) -> None:
        """Show ``cell`` for ``combination``, adding its row or column when new."""
        row_name, column = f"{combination.spec}/{combination.prompt}", combination.model
        if column not in self._column_index:
            self._column_index[column] = len(self.columns)
            self.columns.append(column)
            self._reshape()
        if row_name not in self._row_index:
            self._row_index[row_name] = len(self.rows)
            self.rows.append(row_name)
            if len(row_name) > self._label_width:
                self._label_width = min(len(row_name), MAX_LABEL)
            self._reshape()
        row = self._row_index[row_name]
        old = self.cells.get(combination.key)
        self.cells[combination.key] = cell
        self._running_rows[row] = (
            self._running_rows.get(row, 0)
            + (cell.status == "running")
            - (old is not None and old.status == "running")
        )
        self._invalidate_row(row)

    def cell_text(self, combination: Combination) -> str:
        """The plain text a cell shows now."""
        return render_cell(self.cells.get(combination.key), self._tick).plain

    def tick(self) -> None:
        """Advance the spinner of running cells (only their rows are drawn again)."""
        self._tick += 1
        for row, running in self._running_rows.items():
            if running:
                self._invalidate_row(row)

    # --- selection ----------------------------------------------------------------------
    @property
    def selected(self) -> Combination | None:
        """The combination under the cursor."""
        if not self.rows or not self.columns:
            return None
        spec, prompt = self.rows[self.cursor_row].split("/", 1)
        combination = Combination(spec=spec, prompt=prompt, model=self.columns[self.cursor_column])
        return combination if combination.key in self.cells else None

    def select(self, combination: Combination) -> None:
        """Move the cursor onto ``combination``."""
        row = self._row_index.get(f"{combination.spec}/{combination.prompt}")
        column = self._column_index.get(combination.model)
        if row is not None and column is not None:
            self.cursor_row, self.cursor_column = row, column

    def watch_cursor_row(self, old: int, new: int) -> None:
        self._invalidate_row(old)
        self._cursor_moved(new)

    def watch_cursor_column(self, old: int, new: int) -> None:
        self._cursor_moved(self.cursor_row)

    def _cursor_moved(self, row: int) -> None:
        self._invalidate_row(row)
        self._scroll_to_cursor()
        self.post_message(self.Selected(self.selected))

    def action_cursor_up(self) -> None:
        """Up one row."""
        self.cursor_row = max(self.cursor_row - 1, 0)

    def action_cursor_down(self) -> None:
        """Down one row."""
        self.cursor_row = min(self.cursor_row + 1, max(len(self.rows) - 1, 0))

    def action_cursor_left(self) -> None:
        """Left one column."""
        self.cursor_column = max(self.cursor_column - 1, 0)

    def action_cursor_right(self) -> None:
        """Right one column."""
        self.cursor_column = min(self.cursor_column + 1, max(len(self.columns) - 1, 0))

    def action_page_up(self) -> None:
        """Up one screenful."""
        self.cursor_row = max(self.cursor_row - max(self.size.height - 1, 1), 0)

    def action_page_down(self) -> None:
        """Down one screenful."""
        step = max(self.size.height - 1, 1)
        self.cursor_row = min(self.cursor_row + step, max(len(self.rows) - 1, 0))

    def action_first(self) -> None:
        """The first row."""
        self.cursor_row = 0

    def action_last(self) -> None:
        """The last row."""
        self.cursor_row = max(len(self.rows) - 1, 0)

    def action_open(self) -> None:
        """Open the cell under the cursor."""
        self.post_message(self.Opened(self.selected))

    def on_focus(self) -> None:
        self._invalidate_row(self.cursor_row)

    def on_blur(self) -> None:
        self._invalidate_row(self.cursor_row)

    # --- geometry and drawing ------------------------------------------------------------
    def _column_x(self, column: int) -> int:
        if column < len(self._starts):
            return self._starts[column]
        return self._label_width + GAP + sum(w + GAP for w in self._widths)

    def _reshape(self) -> None:
        self._widths = [min(max(len(c), CELL_WIDTH), MAX_COLUMN) for c in self.columns]
        self._starts = []
        x = self._label_width + GAP
        for width_of in self._widths:
            self._starts.append(x)
            x += width_of + GAP
        width = self._column_x(len(self.columns))
        self.virtual_size = Size(width, len(self.rows) + 1)
        self._strips.clear()
        self._header = None
        self.refresh()

    def _invalidate_row(self, row: int) -> None:
        self._strips.pop(row, None)
        y = row + 1 - self.scroll_offset.y
        if 1 <= y < self.size.height:
            self.refresh_line(y)

    def _scroll_to_cursor(self) -> None:
        height = max(self.size.height - 1, 1)
        top = self.scroll_offset.y
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + height:
            self.scroll_to(y=self.cursor_row - height + 1, animate=False)
        if not self._widths:
            return
        x = self._column_x(self.cursor_column) - self._label_width - GAP
        cell = self._widths[min(self.cursor_column, len(self._widths) - 1)]
        visible = max(self.size.width - self._label_width - GAP, cell)
        if x < self.scroll_offset.x:
            self.scroll_to(x=x, animate=False)
        elif x + cell > self.scroll_offset.x + visible:
            self.scroll_to(x=x + cell - visible, animate=False)

    def render_line(self, y: int) -> Strip:
        """Line ``y`` of the widget: the header, or a row."""
        width = self.size.width
        if y == 0:
            if self._header is None:
                self._header = self._render_header()
            return self._crop(self._header, width)
        row = y - 1 + self.scroll_offset.y
        if row >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        strip = self._strips.get(row)
        if strip is None:
            strip = self._strips[row] = self._render_row(row)
        return self._crop(strip, width)

    def _crop(self, strip: Strip, width: int) -> Strip:
        """Keep the label column, scroll the cells sideways."""
        label = self._label_width + GAP
        start = label + self.scroll_offset.x
        left = strip.crop(0, label)
        right = strip.crop(start, start + max(width - label, 0))
        return Strip.join([left, right]).extend_cell_length(width, self.rich_style)

    def _render_header(self) -> Strip:
        style = self.get_component_rich_style("verdict-matrix--header")
        parts = [Segment(" " * (self._label_width + GAP), style)]
        for column, width in zip(self.columns, self._widths, strict=True):
            parts.append(Segment(column[:width].ljust(width + GAP), style))
        return Strip(parts)

    def _render_row(self, row: int) -> Strip:
        base = self.rich_style
        label = self.rows[row]
        label = label if len(label) <= self._label_width else label[: self._label_width - 1] + "…"
        segments = [Segment(label.ljust(self._label_width + GAP), base + Style(bold=True))]
        spec, prompt = self.rows[row].split("/", 1)
        console = self.app.console
        for index, column in enumerate(self.columns):
            cell = self.cells.get(f"{spec}/{prompt}/{column}")
            text = render_cell(cell, self._tick)
            text.truncate(self._widths[index], overflow="crop", pad=True)
            if row == self.cursor_row and index == self.cursor_column:
                text.stylize(Style(reverse=True) if self.has_focus else Style(underline=True))
            # Text.render leaves the text's own style to the caller
            cell_style = base + console.get_style(text.style) if text.style else base
            segments.extend(
                Segment(seg.text, cell_style + seg.style if seg.style else cell_style)
                for seg in text.render(console)
            )
            segments.append(Segment(" " * GAP, base))
        return Strip(segments)
