"""The work in flight: one row per running sandbox (pid or pod, stage, port, CPU, RSS, age)
and one per queued job (its combination, attempt and how long it has waited).

Rows are added, updated and removed by key; a running row disappears when its run ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

COLUMNS = ("run", "combination", "try", "where", "stage", "port", "cpu", "rss", "age")


@dataclass(frozen=True)
class SandboxRow:
    """One running sandbox, or one queued job (``stage == "queued"``), as shown."""

    key: str  # run id, or the job id of a queued job
    combination: str
    attempt: int
    where: str  # "pid 1234", "pod verdict-…", a worker name, or "-"
    stage: str
    port: int | None
    cpu: float | None
    rss: int | None
    age: float


def _age(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _cells(row: SandboxRow) -> list[Text]:
    queued = row.stage == "queued"
    name = row.combination if len(row.combination) <= 32 else row.combination[:31] + "…"
    return [
        Text("-" if queued else row.key[-6:], style="dim"),
        Text(name, style="dim" if queued else ""),
        Text(str(row.attempt)),
        Text(row.where),
        Text(row.stage, style="dim" if queued else "cyan"),
        Text(str(row.port) if row.port else "-"),
        Text(f"{row.cpu:.0f}%" if row.cpu is not None else "-"),
        Text(f"{row.rss / 2**20:.0f}M" if row.rss is not None else "-"),
        Text(_age(row.age)),
    ]


class SandboxTable(DataTable[Text]):
    """The work-in-flight pane (see the module docstring)."""

    DEFAULT_CSS = """
    SandboxTable { height: auto; max-height: 8; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", show_cursor=False, **kwargs)  # type: ignore[arg-type]
        self.shown: dict[str, SandboxRow] = {}

    def on_mount(self) -> None:
        for name in COLUMNS:
            self.add_column(name, key=name)

    def show_rows(self, rows: list[SandboxRow]) -> None:
        """Make the table hold exactly ``rows`` (by key); new rows are added at the end."""
        wanted = {row.key: row for row in rows}
        for key in list(self.shown):
            if key not in wanted:
                self.remove_row(key)
                del self.shown[key]
        for key, row in wanted.items():
            if key not in self.shown:
                self.add_row(*_cells(row), key=key)
            elif self.shown[key] != row:
                for name, value in zip(COLUMNS, _cells(row), strict=True):
                    self.update_cell(key, name, value)
            self.shown[key] = row
