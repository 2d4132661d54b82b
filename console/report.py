"""The human report of ``verdict check``: verdict, reason, stage timings, the failure.

Log text and exception messages are data, never markup: everything from the app is
wrapped in :class:`rich.text.Text`, and its control characters are shown escaped
(``\x1b[2J``), so an app's output can never clear, retitle or write to the clipboard of
the terminal reading the report.
"""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from console.model import CheckResult, Verdict

VERDICT_STYLES = {
    Verdict.PASS: "bold green",
    Verdict.INSTALL_FAILED: "bold red",
    Verdict.CRASHED: "bold red",
    Verdict.EXITED_EARLY: "bold yellow",
    Verdict.NO_PORT: "bold yellow",
    Verdict.HTTP_ERROR: "bold red",
    Verdict.UNHEALTHY: "bold red",
    Verdict.LOG_ERROR: "bold red",
    Verdict.TIMEOUT: "bold yellow",
    Verdict.GENERATION_FAILED: "bold red",
}
TAIL_SHOWN = 12
# C0 controls (but tab and newline), DEL and the C1 range: shown as \xNN, never sent raw.
_CONTROLS = {
    code: f"\\x{code:02x}"
    for code in (*range(0x00, 0x20), *range(0x7F, 0xA0))
    if code not in (0x09, 0x0A)
}


def safe(text: str) -> str:
    """``text`` with terminal control characters replaced by visible escapes."""
    return text.translate(_CONTROLS)


def render_check(result: CheckResult, *, tail: int = TAIL_SHOWN) -> RenderableType:
    """A compact report of one check."""
    parts: list[RenderableType] = []
    head = Text()
    head.append(
        f" {result.verdict.value.upper()} ", style=f"reverse {VERDICT_STYLES[result.verdict]}"
    )
    head.append(f"  run {result.run_id}", style="dim")
    if result.port:
        head.append(f"  port {result.port}", style="dim")
    if result.exit.cls:
        exit_text = f"  exit {result.exit.cls.value}"
        if result.exit.signal:
            exit_text += f" ({result.exit.signal})"
        elif result.exit.code is not None:
            exit_text += f" ({result.exit.code})"
        head.append(exit_text, style="dim")
    parts.append(head)
    parts.append(Text(safe(result.reason)))
    for warning in result.warnings:
        parts.append(Text(f"warning: {safe(warning)}", style="yellow"))

    if result.stages:
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
        table.add_column("mark", width=1)
        table.add_column("stage")
        table.add_column("ms", justify="right")
        table.add_column("detail", overflow="fold")
        for stage in result.stages:
            mark = Text("✓", style="green") if stage.ok else Text("✗", style="red")
            detail = Text(safe(stage.detail), style="dim")
            table.add_row(mark, safe(stage.name), f"{stage.ms:.0f} ms", detail)
        parts.append(Text())
        parts.append(table)

    if result.failure is not None:
        failure = result.failure
        parts.append(Text())
        line = Text()
        line.append(safe(failure.exception), style="bold red")
        if failure.message:
            line.append(": ")
            line.append(safe(failure.message))
        parts.append(line)
        for frame in failure.frames[:15]:
            where = frame.file or frame.module or "?"
            if frame.line is not None:
                where += f":{frame.line}"
            text = Text("  at ")
            text.append(safe(frame.name), style="bold" if frame.app else "dim")
            text.append(f"  {safe(where)}", style="cyan" if frame.app else "dim")
            if frame.app:
                text.append("  ← app", style="yellow")
            parts.append(text)
        if len(failure.frames) > 15:
            parts.append(Text(f"  … {len(failure.frames) - 15} more frames", style="dim"))
    if result.fingerprint:
        parts.append(Text(f"fingerprint {result.fingerprint}", style="dim"))

    if result.verdict != Verdict.PASS and result.log_tail and tail:
        parts.append(Text())
        parts.append(Text(f"last {min(tail, len(result.log_tail))} log lines:", style="dim"))
        for entry in result.log_tail[-tail:]:
            style = (
                "red"
                if entry.stream == "stderr"
                else "dim italic"
                if entry.stream == "system"
                else ""
            )
            parts.append(Text("  " + safe(entry.text), style=style))
    return Group(*parts)


def print_check(result: CheckResult, console: Console | None = None) -> None:
    """Print the report of one check."""
    console = console or Console(highlight=False)
    console.print(render_check(result))
