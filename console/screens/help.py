"""Every key, from the bindings themselves (so a remapped key shows as remapped)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = (
    "Verdict Console: each cell is one spec/prompt × model; its glyph and word say the "
    "verdict of its latest attempt (×N: attempts). The log shows the selected cell's run."
)


class HelpScreen(ModalScreen[None]):
    """The keys of the screen below and of the app."""

    BINDINGS = [Binding("escape,question_mark,f1", "app.pop_screen", "Close", id="help_close")]

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, expand=True)
        table.add_column("key", style="bold cyan", no_wrap=True, width=16)
        table.add_column("what")
        stack = self.app.screen_stack
        below = stack[-2] if len(stack) > 1 else stack[-1]
        shown: dict[str, list[str]] = {}
        tips: dict[str, str] = {}
        for _key, active in below.active_bindings.items():
            binding = active.binding
            if binding.description and binding.id:  # ours, not the widgets' own
                shown.setdefault(binding.id, []).append(self.app.get_key_display(binding))
                tips[binding.id] = binding.tooltip or binding.description
        if "open" not in shown and below.__class__.__name__ == "Dashboard":
            shown["open"], tips["open"] = ["enter"], "open the selected run in full"
        for binding_id, keys in shown.items():
            table.add_row(Text(" ".join(dict.fromkeys(keys))), Text(tips[binding_id]))
        table.add_row(Text("tab / shift+tab"), Text("next / previous pane"))
        table.add_row(Text("arrows, hjkl"), Text("move in the matrix"))
        table.add_row(Text("ctrl+p"), Text("every action, searchable"))
        with VerticalScroll(id="help"):
            yield Static(Text(INTRO), id="help-intro")
            yield Static(table)
