"""Running sandboxes: one row per run (pid or pod, stage, port, CPU, RSS, age).

Rows are added, updated and removed by run id; a row disappears when its run ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

COLUMNS = ("run", "combination", "where", "stage", "port", "cpu", "rss", "age")


@dataclass(frozen=True)
class SandboxRow:
    """One running sandbox as shown."""

    run_id: str
    combination: str
    where: str  # "pid 1234" or "pod verdict-…"
    stage: str
    port: int | None
    cpu: float | None
    rss: int | None
    age: float


def _age(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _cells(row: SandboxRow) -> list[Text]:
    return [
        Text(row.run_id[-6:], style="dim"),
        Text(row.combination[:32] + ("…" if len(row.combination) > 32 else "")),
        Text(row.where),
        Text(row.stage, style="cyan"),
        Text(str(row.port) if row.port else "-"),
        Text(f"{row.cpu:.0f}%" if row.cpu is not None else "-"),
        Text(f"{row.rss / 2**20:.0f}M" if row.rss is not None else "-"),
        Text(_age(row.age)),
    ]


class SandboxTable(DataTable[Text]):
    """The sandboxes pane (see the module docstring)."""

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
        """Make the table hold exactly ``rows`` (by run id)."""
        wanted = {row.run_id: row for row in rows}
        for run_id in list(self.shown):
            if run_id not in wanted:
                self.remove_row(run_id)
                del self.shown[run_id]
        for run_id, row in wanted.items():
            if run_id not in self.shown:
                self.add_row(*_cells(row), key=run_id)
            elif self.shown[run_id] != row:
                for name, value in zip(COLUMNS, _cells(row), strict=True):
                    self.update_cell(run_id, name, value)
            self.shown[run_id] = row
