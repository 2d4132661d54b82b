"""One line about the queue: queued / running / done / aborted, and Kafka's lag and DLQ."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget


@dataclass(frozen=True)
class QueueFigures:
    """What the queue line shows."""

    queued: int = 0
    running: int = 0
    done: int = 0
    aborted: int = 0
    passed: int = 0
    mode: str = "embedded"
    lag: int | None = None  # Kafka: messages of verdict.jobs not yet consumed
    dlq: int | None = None
    isolation: str = ""  # a warning when sandboxes run without isolation
    failure: str = ""  # the engine's own work stopped


def render_figures(figures: QueueFigures) -> Text:
    """The queue line."""
    text = Text()
    text.append(f" {figures.mode} ", style="bold reverse")
    text.append(f"  queued {figures.queued}", style="dim" if not figures.queued else "")
    text.append(f"  running {figures.running}", style="bold cyan" if figures.running else "dim")
    text.append(f"  done {figures.done}")
    text.append(f"  pass {figures.passed}", style="green")
    if figures.aborted:
        text.append(f"  aborted {figures.aborted}", style="yellow")
    if figures.lag is not None:
        text.append(f"  lag {figures.lag}")
    if figures.dlq:
        text.append(f"  dlq {figures.dlq}", style="bold red")
    if figures.isolation:
        text.append(f"  ⚠ {figures.isolation}", style="bold yellow")
    if figures.failure:
        text.append(f"  ✗ {figures.failure}", style="bold red")
    return text


class QueueBar(Widget):
    """The queue line (see the module docstring).

    A fixed one-line widget that repaints itself when its figures change, without asking
    for a layout pass of the screen (it never changes size).
    """

    DEFAULT_CSS = """
    QueueBar { height: 1; background: $boost; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.figures = QueueFigures()

    def show(self, figures: QueueFigures) -> None:
        """Display ``figures``."""
        if figures != self.figures:
            self.figures = figures
            self.refresh()

    def render(self) -> Text:
        return render_figures(self.figures)
