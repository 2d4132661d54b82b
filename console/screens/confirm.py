"""Asked once when quitting while jobs run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ConfirmQuit(ModalScreen[bool]):
    """``q``/``y`` quits, anything bound to ``n``/``esc`` stays."""

    BINDINGS = [
        Binding("y,q,enter", "answer(True)", "Quit", id="confirm_quit", priority=True),
        Binding("n,escape", "answer(False)", "Stay", id="confirm_stay"),
    ]

    def __init__(self, running: int, queued: int) -> None:
        super().__init__()
        self.running, self.queued = running, queued

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(
                f"{self.running} running, {self.queued} queued.\n"
                "Quit? Running sandboxes are stopped and their jobs go back to the queue;\n"
                "queued work stays queued for the next start.\n\n"
                "[y/q] quit   [n/esc] stay",
                markup=False,
            )

    def action_answer(self, value: bool) -> None:
        """Close with the answer."""
        self.dismiss(value)
