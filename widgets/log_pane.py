"""The log of one run: streams live, highlights what matters, filters, follows, marks.

Built on Textual's ``Log`` (lines are rendered lazily, only when visible) with a bounded
``max_lines``; the full history stays in SQLite and older pages are loaded on demand by
the screen.  Log text is never markup: it is highlighted by patterns, control sequences
are shown escaped.  Install and run phases are told apart by a gutter (``I│`` / `` │``).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.highlighter import Highlighter
from rich.text import Text
from textual.widgets import Log

from console.model import LogLine

ERROR_WORDS = re.compile(
    r"\b(?:ERROR|FATAL|CRITICAL|Traceback|Exception|Error|panic|failed|refused|"
    r"[A-Z][A-Za-z]*(?:Error|Exception))\b"
)
HTTP_STATUS = re.compile(r"(?<![\d.:])(?:HTTP/\d(?:\.\d)? |\" )?\b([1-5]\d\d)\b(?= |$)")
URL = re.compile(r"\bhttps?://[^\s\"'<>]+|\b(?:localhost|127\.0\.0\.1|0\.0\.0\.0|\[::\]):\d{2,5}\b")
PORT = re.compile(r"\bport\s+(\d{2,5})\b", re.IGNORECASE)
FRAME = re.compile(r'^\s*(?:File "|at )')
MARKER = "──── mark"
INSTALL_GUTTER = "I│ "
RUN_GUTTER = " │ "


class LogHighlighter(Highlighter):
    """Styles a log line: the run's own ``expect_log`` / ``fail_log`` patterns first, then
    error words, HTTP statuses, URLs and ports, and stack frames (app frames brighter)."""

    def __init__(self) -> None:
        self.expect: list[re.Pattern[str]] = []
        self.fail: list[re.Pattern[str]] = []
        self.app_paths: tuple[str, ...] = ()

    def configure(
        self, expect: Sequence[str], fail: Sequence[str], app_paths: Sequence[str] = ()
    ) -> None:
        """Use the patterns of the run being shown."""
        self.expect = _compiled(expect)
        self.fail = _compiled(fail)
        self.app_paths = tuple(p for p in app_paths if p)

    def highlight(self, text: Text) -> None:
        """Stylize ``text`` in place."""
        plain = text.plain
        if plain.startswith(MARKER):
            text.stylize("bold reverse yellow")
            return
        if plain.startswith(INSTALL_GUTTER):
            text.stylize("dim", 0, len(INSTALL_GUTTER))
        elif plain.startswith(RUN_GUTTER):
            text.stylize("dim", 0, len(RUN_GUTTER))
        if FRAME.match(plain[3:]):
            app = any(path in plain for path in self.app_paths) or (
                "site-packages" not in plain and "node_modules" not in plain
                and "node:internal" not in plain and "/usr/lib" not in plain
            )
            text.stylize("bold yellow" if app else "dim", 3)
        for match in ERROR_WORDS.finditer(plain):
            text.stylize("bold red", match.start(), match.end())
        for match in HTTP_STATUS.finditer(plain):
            code = match.group(1)
            style = "red" if code[0] == "5" else "yellow" if code[0] == "4" else "green"
            text.stylize(style, match.start(1), match.end(1))
        for pattern in (URL, PORT):
            for match in pattern.finditer(plain):
                text.stylize("underline cyan", match.start(), match.end())
        marks = ((self.expect, "bold black on green"), (self.fail, "bold white on red"))
        for patterns, style in marks:
            for pattern in patterns:
                for match in pattern.finditer(plain):
                    if match.end() > match.start():
                        text.stylize(style, match.start(), match.end())


def _compiled(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error:
            continue  # the engine refused it already; never break the view
    return compiled


def format_line(line: LogLine) -> str:
    """The text a stored line is shown as (phase gutter + its text)."""
    return (INSTALL_GUTTER if line.phase == "install" else RUN_GUTTER) + line.text


@dataclass
class FilterState:
    """A filter typed by the user: a regex, or a plain substring when it is not one."""

    text: str = ""

    def matcher(self) -> re.Pattern[str] | None:
        """The compiled filter (None: show everything)."""
        if not self.text:
            return None
        try:
            return re.compile(self.text, re.IGNORECASE)
        except re.error:
            return re.compile(re.escape(self.text), re.IGNORECASE)


class LogPane(Log):
    """A run's log (see the module docstring)."""

    DEFAULT_CSS = """
    LogPane { height: 1fr; border: round $primary-darken-2; overflow: auto auto; }
    LogPane:focus { border: round $accent; }
    """

    def __init__(self, *, max_lines: int = 5000, **kwargs: object) -> None:
        super().__init__(highlight=True, max_lines=max_lines, auto_scroll=True, **kwargs)  # type: ignore[arg-type]
        self.highlighter = LogHighlighter()
        self.entries: deque[str] = deque(maxlen=max_lines)
        self.filter = FilterState()
        self.first_seq: int | None = None  # oldest stored line shown (for paging back)
        self.last_seq: int = -1  # newest line shown (live batches after it are new)
        self.run_id: str | None = None

    # --- content ---------------------------------------------------------------------------
    def show_run(self, run_id: str | None, lines: Sequence[LogLine]) -> None:
        """Start showing ``run_id`` with its stored ``lines``."""
        self.run_id = run_id
        self.entries.clear()
        self.first_seq = lines[0].seq if lines else None
        self.last_seq = lines[-1].seq if lines else -1
        self.entries.extend(format_line(line) for line in lines)
        self._rewrite()

    def add_stored(self, lines: Sequence[LogLine]) -> None:
        """Take the stored page read when the run was opened: lines that live batches
        already showed are not repeated, older ones go before them."""
        if self.last_seq < 0:
            self.show_run(self.run_id, lines)
            return
        first = self.first_seq if self.first_seq is not None else self.last_seq + 1
        self.prepend([line for line in lines if line.seq < first], scroll=False)

    def prepend(self, lines: Sequence[LogLine], *, scroll: bool = True) -> None:
        """Show older ``lines`` (read from storage) before what is shown."""
        if not lines:
            return
        self.first_seq = lines[0].seq
        older = [format_line(line) for line in lines]
        kept = list(self.entries)
        self.entries.clear()
        self.entries.extend(older + kept)
        self._rewrite()
        if scroll:
            self.scroll_home(animate=False)

    def add_lines(self, lines: Sequence[LogLine]) -> int:
        """Append live lines newer than what is shown; returns how many were new."""
        if not lines:
            return 0
        # Batches arrive in order: usually all of a batch is new.
        fresh = lines if lines[0].seq > self.last_seq else [
            line for line in lines if line.seq > self.last_seq
        ]
        if not fresh:
            return 0
        if self.entries.maxlen and len(fresh) > self.entries.maxlen:
            # More than the pane keeps: the older ones would be dropped at once (they are
            # in storage, a page back).
            self.last_seq = fresh[-1].seq
            fresh = fresh[-self.entries.maxlen :]
        self.last_seq = fresh[-1].seq
        if self.first_seq is None:
            self.first_seq = fresh[0].seq
        texts = [format_line(line) for line in fresh]
        self.entries.extend(texts)
        matcher = self.filter.matcher()
        shown = texts if matcher is None else [t for t in texts if matcher.search(t)]
        if shown:
            self.write_lines(shown, scroll_end=self.auto_scroll)
        return len(fresh)

    def set_filter(self, text: str) -> None:
        """Show only lines matching ``text`` (regex, or substring); empty shows all."""
        self.filter = FilterState(text)
        self._rewrite()

    def toggle_follow(self) -> bool:
        """Follow new lines or stay where the reader is; returns the new state."""
        self.auto_scroll = not self.auto_scroll
        if self.auto_scroll:
            self.scroll_end(animate=False)
        return self.auto_scroll

    def mark(self) -> None:
        """Add a marker line, to see what came after a moment of interest."""
        text = f"{MARKER} {time.strftime('%H:%M:%S')} ────"
        self.entries.append(text)
        self.write_line(text, scroll_end=self.auto_scroll)

    def jump_to_first_error(self) -> bool:
        """Scroll to the first shown line with an error word; False when there is none."""
        for index, text in enumerate(self.lines):
            if ERROR_WORDS.search(text):
                self.auto_scroll = False
                self.scroll_to(y=max(index - 2, 0), animate=False)
                return True
        return False

    def shown(self) -> list[str]:
        """The lines on display (after the filter)."""
        return list(self.lines)

    def _rewrite(self) -> None:
        self.clear()
        matcher = self.filter.matcher()
        texts = list(self.entries)
        if matcher is not None:
            texts = [t for t in texts if t.startswith(MARKER) or matcher.search(t)]
        if texts:
            self.write_lines(texts, scroll_end=self.auto_scroll)
        self.refresh()
