"""``verdict show RUN_ID [--log [N]] [--json]``: one past run in full, from the database.

Offline: everything comes from SQLite.  ``--json`` prints one object:

- ``run_id``, ``status`` (running/done/aborted), ``verdict``, ``reason``, ``started``,
  ``finished``, ``duration`` (seconds);
- ``combination`` (``{"spec", "prompt", "model"}``, null for a ``verdict check`` run),
  ``job_id``, ``attempt``, ``project``, ``command``;
- ``exit`` (``{"code", "signal", "class"}``), ``port``, ``http`` (``{"root", "health"}``);
- ``stages``: ``[{"name", "status", "ok", "ms", "detail"}]`` in order;
- ``failure``: ``{"exception", "message", "language", "frames": [{"name", "file", "line",
  "app"}]}`` or null;
- ``fingerprint`` and ``same_fingerprint`` (how many other runs ended with it);
- ``rerun_of``: ``{"run_id", "verdict", "fingerprint"}`` of the run this one reruns, or
  null; ``reruns``: ``[{"run_id", "combination", "verdict", "passed"}]``, runs that rerun
  this one (a rerun or a fan-out), oldest first;
- ``generation``: ``{"generator", "ok", "reason", "attempts", "ms", "files",
  "responses", "notes"}`` (every raw model answer as recorded; ``notes`` says what was cut
  when recording) or null;
- ``log``: ``{"total", "truncated", "lines": [{"seq", "stream", "phase", "text"}]}``, the
  last lines shown;
- ``explain``: the command explaining the failure (null for a passing run).

Exit status: 0 shown, 2 unknown run id.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import RenderableType

    from storage.db import Database
    from storage.runs import RunRecord

LOG_DEFAULT = 20
RESPONSE_LINES = 12  # of each raw answer, in the human view
RESPONSE_CHARS = 1200


def add_parser(sub: Any) -> None:
    """Register ``verdict show``."""
    parser = sub.add_parser(
        "show",
        help="one past run in full",
        description="Show one recorded run: combination, verdict, evidence, failure, "
        "fingerprint, rerun links, generation and the end of its log.",
        epilog="--json prints one object: run_id, status, verdict, reason, started, finished, "
        "duration, combination, job_id, attempt, project, command, exit, port, http, stages, "
        "failure, fingerprint, same_fingerprint, rerun_of, reruns, generation (with every raw "
        "response), log {total, truncated, lines}, explain.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="a run id (a unique prefix works)")
    parser.add_argument(
        "--log",
        nargs="?",
        const="all",
        default=str(LOG_DEFAULT),
        metavar="N",
        help=f"show the last N log lines (default {LOG_DEFAULT}; --log alone: all of them)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _log_count(value: str) -> int | None:
    """Lines of log to show (None: all)."""
    from console.commands.common import whole_number

    return None if value == "all" else whole_number(value, "--log", minimum=0)


def run(args: argparse.Namespace) -> int:
    """The ``show`` command."""
    from console.commands.common import find_run, open_db, run_id_text, settings_from_args

    count = _log_count(args.log)
    run_id_text(args.run_id)  # before the database is opened: bad input touches nothing
    db = open_db(settings_from_args(args))
    try:
        record = find_run(db, args.run_id)
        data = collect(db, record, count)
    finally:
        db.close()
    if args.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        from rich.console import Console

        Console(highlight=False).print(render(data))
    return 0


def collect(db: Database, record: RunRecord, log_lines: int | None) -> dict[str, Any]:
    """Everything recorded about one run, as the ``--json`` object."""
    from console.engine.views import run_detail

    return run_detail(db, record, log_lines).to_json()


def render(data: dict[str, Any]) -> RenderableType:
    """The human view of :func:`collect`'s object (app and model text never as markup)."""
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = [*_head(data), *_stages(data), *_failure(data)]
    parts += _links(data)
    parts += _generation_view(data["generation"], data["run_id"])
    parts += _log_view(data["log"])
    if data["explain"]:
        parts += [Text(), Text(f"why it failed: {data['explain']}", style="bold")]
    return Group(*parts)


def _head(data: dict[str, Any]) -> list[RenderableType]:
    import time

    from rich.text import Text

    from console.model import Verdict
    from console.report import VERDICT_STYLES, safe

    verdict = data["verdict"]
    head = Text()
    style = VERDICT_STYLES.get(Verdict(verdict), "") if verdict else "dim"
    head.append(f" {(verdict or data['status']).upper()} ", style=f"reverse {style}")
    head.append(f"  run {data['run_id']}", style="dim")
    if data["duration"] is not None:
        head.append(f"  {data['duration']:.1f} s", style="dim")
    parts: list[RenderableType] = [head]
    if data["reason"]:
        parts.append(Text(safe(data["reason"])))
    facts: list[tuple[str, str]] = []
    combo = data["combination"]
    if combo:
        facts.append(("combination", f"{combo['spec']}/{combo['prompt']}/{combo['model']}"))
        facts.append(("attempt", f"{data['attempt']}  job {data['job_id']}"))
    if data["project"]:
        facts.append(("project", data["project"]))
    if data["command"]:
        facts.append(("command", data["command"]))
    if data["started"]:
        facts.append(
            ("started", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data["started"])))
        )
    exit_ = data["exit"]
    if exit_["class"] or exit_["code"] is not None:
        shown = exit_["class"] or ""
        if exit_["signal"]:
            shown += f" ({exit_['signal']})"
        elif exit_["code"] is not None:
            shown += f" ({exit_['code']})"
        facts.append(("exit", shown.strip()))
    if data["port"]:
        facts.append(("port", str(data["port"])))
    http = data["http"]
    if http["root"] is not None or http["health"] is not None:
        facts.append(("http", f"GET / {http['root'] or '-'}  health {http['health'] or '-'}"))
    for label, value in facts:
        line = Text(f"{label:<12}", style="dim")
        line.append(safe(value))
        parts.append(line)
    return parts


def _stages(data: dict[str, Any]) -> list[RenderableType]:
    from rich.table import Table
    from rich.text import Text

    from console.report import safe

    if not data["stages"]:
        return []
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
    table.add_column("mark", width=1)
    table.add_column("stage", no_wrap=True)
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for stage in data["stages"]:
        mark = {True: Text("✓", style="green"), False: Text("✗", style="red")}.get(
            stage["ok"], Text("·", style="dim")
        )
        ms = f"{stage['ms']:.0f} ms" if stage["ms"] is not None else stage["status"]
        table.add_row(mark, Text(safe(stage["name"])), ms, Text(safe(stage["detail"]), style="dim"))
    return [Text(), table]


def _failure(data: dict[str, Any]) -> list[RenderableType]:
    from rich.text import Text

    from console.report import safe

    parts: list[RenderableType] = []
    failure = data["failure"]
    if failure is not None:
        parts.append(Text())
        line = Text(safe(failure["exception"]), style="bold red")
        if failure["message"]:
            line.append(": " + safe(failure["message"]), style="")
        parts.append(line)
        app = [f for f in failure["frames"] if f["app"]]
        for frame in app[:10]:
            where = frame["file"] or "?"
            if frame["line"] is not None:
                where += f":{frame['line']}"
            text = Text("  at ")
            text.append(safe(frame["name"]), style="bold")
            text.append(f"  {safe(where)}", style="cyan")
            parts.append(text)
        hidden = len(failure["frames"]) - min(len(app), 10)
        if hidden > 0:
            parts.append(Text(f"  ({hidden} other frames; --json for all)", style="dim"))
    if data["fingerprint"]:
        others = data["same_fingerprint"]
        tail = (
            f"  shared by {others} other run{'s' * (others != 1)}" if others else "  (first seen)"
        )
        parts += [Text(), Text(f"fingerprint {data['fingerprint']}{tail}", style="dim")]
    return parts


def _links(data: dict[str, Any]) -> list[RenderableType]:
    from rich.text import Text

    parts: list[RenderableType] = []
    original = data["rerun_of"]
    if original:
        line = Text(f"reruns {original['run_id']}", style="")
        line.append(f"  (was {original['verdict'] or 'unfinished'})", style="dim")
        if data["verdict"] == "pass" and original["fingerprint"]:
            line.append(f"  fixes {original['fingerprint'][:8]}", style="green")
        parts.append(line)
    if data["reruns"]:
        parts.append(Text("reruns of this run:"))
        for rerun in data["reruns"]:
            line = Text(f"  {rerun['run_id']}  ")
            line.append(rerun["verdict"], style="green" if rerun["passed"] else "red")
            if rerun["combination"]:
                line.append(f"  {rerun['combination']}", style="dim")
            parts.append(line)
    return [Text(), *parts] if parts else []


def _generation_view(generation: dict[str, Any] | None, run_id: str) -> list[RenderableType]:
    from rich.text import Text

    from console.report import safe

    if generation is None:
        return []
    head = Text("generation  ", style="bold")
    head.append(f"{generation['generator'] or '?'}", style="")
    head.append(
        f"  {'ok' if generation['ok'] else 'failed'}  {generation['attempts']} attempt"
        f"{'s' * (generation['attempts'] != 1)}  {generation['ms']:.0f} ms",
        style="dim",
    )
    parts: list[RenderableType] = [Text(), head]
    if not generation["ok"] and generation["reason"]:
        parts.append(Text("  " + safe(generation["reason"]), style="red"))
    files = generation["files"]
    if files:
        shown = ", ".join(files[:8]) + (f", … {len(files) - 8} more" if len(files) > 8 else "")
        parts.append(Text(f"  files: {safe(shown)}"))
    cut = False
    for number, response in enumerate(generation["responses"], start=1):
        parts.append(Text(f"  response {number} ({len(response)} characters):", style="dim"))
        lines = response.splitlines()
        text = "\n".join(lines[:RESPONSE_LINES])
        if len(text) > RESPONSE_CHARS:
            text = text[:RESPONSE_CHARS]
        cut = cut or len(text) < len(response.rstrip("\n"))
        for line in text.splitlines():
            parts.append(Text("    " + safe(line), overflow="ellipsis", no_wrap=True))
    if cut:
        parts.append(Text(f"  … cut here; verdict show {run_id} --json for all", style="dim"))
    for note in generation["notes"]:
        parts.append(Text(f"  (recorded cut: {safe(note)})", style="dim"))
    return parts


def _log_view(log: dict[str, Any]) -> list[RenderableType]:
    from rich.text import Text

    from console.report import safe

    lines = log["lines"]
    if not lines:
        return []
    title = f"last {len(lines)} of {log['total']} log lines"
    if log["truncated"]:
        title += " (the log was capped when recorded)"
    parts: list[RenderableType] = [Text(), Text(title + ":", style="dim")]
    for line in lines:
        style = {"stderr": "red", "system": "dim italic"}.get(line["stream"], "")
        parts.append(Text("  " + safe(line["text"]), style=style))
    return parts
