"""``verdict history``: the most recent runs, newest first.

A rerun (or a fan-out run) is marked ``↻ <original run>``; when it passed and its original
failed, ``fixes <fingerprint>`` names the failure it fixed (``fixes`` in ``--json``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.runs import RunRecord


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``history``."""
    parser = sub.add_parser(
        "history", help="list recent runs", description="List recent runs, newest first."
    )
    parser.add_argument("--limit", metavar="N", default="20", help="how many runs (default 20)")
    parser.add_argument("--verdict", metavar="V", help="only runs with this verdict (e.g. crashed)")
    parser.add_argument("--json", action="store_true", help="print a JSON array")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``history`` command."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from console.commands.common import MAX_LIST, open_db, settings_from_args, whole_number
    from console.errors import UsageError
    from console.model import Verdict
    from console.report import VERDICT_STYLES
    from storage.runs import get_run, recent_runs

    limit = whole_number(args.limit, "--limit", maximum=MAX_LIST)
    verdict_filter = None
    if args.verdict:
        try:
            verdict_filter = Verdict(args.verdict)
        except ValueError:
            names = ", ".join(v.value for v in Verdict)
            raise UsageError(f"--verdict must be one of {names}, not {args.verdict!r}") from None
    settings = settings_from_args(args)
    db = open_db(settings)
    try:
        records = recent_runs(db, limit, verdict=verdict_filter)
        originals = {r.rerun_of: get_run(db, r.rerun_of) for r in records if r.rerun_of is not None}
    finally:
        db.close()
    fixes = {r.run_id: _fixes(r, originals.get(r.rerun_of or "")) for r in records}
    if args.json:
        objects = [
            record.model_dump(mode="json", exclude={"result"})
            | {"duration": record.duration, "fixes": fixes[record.run_id]}
            for record in records
        ]
        print(json.dumps(objects, ensure_ascii=False))
        return 0
    console = Console(highlight=False)
    if not records:
        console.print("No runs recorded yet.")
        return 0
    # Port and exit class are in --json and in `verdict explain`; the list stays narrow.
    headers = ("run", "started", "verdict", "secs", "error")
    today = time.strftime("%Y-%m-%d")
    rows: list[tuple[list[str], str, RunRecord]] = []
    for record in records:
        local = time.localtime(record.started or 0)
        same_day = time.strftime("%Y-%m-%d", local) == today
        verdict = record.verdict.value if record.verdict else record.status
        style = VERDICT_STYLES.get(record.verdict, "") if record.verdict else "dim"
        duration = record.duration
        cells = [
            record.run_id,
            time.strftime("%H:%M:%S" if same_day else "%m-%d %H:%M", local),
            verdict,
            f"{duration:.1f}" if duration is not None else "",
            (record.fingerprint or "")[:8],
        ]
        rows.append((cells, style, record))
    table = Table(box=None, header_style="bold", pad_edge=False)
    for index, header in enumerate(headers):
        width = max([len(header)] + [len(cells[index]) for cells, _, _ in rows])
        table.add_column(header, no_wrap=True, min_width=width)
    table.add_column("what", overflow="ellipsis", no_wrap=True, ratio=1)
    for cells, style, record in rows:
        texts = [Text(cell, style=style if i == 2 else "") for i, cell in enumerate(cells)]
        what = Text(_what(record))
        if record.rerun_of:
            # A rerun takes a second line: what it reruns and, if so, what it fixed.
            texts[0].append(f"\n↻ {record.rerun_of[:8]}", style="cyan")
            fixed = fixes[record.run_id]
            what.append(f"\nfixes {fixed[:8]}" if fixed else "\n", style="green")
        table.add_row(*texts, what)
    console.print(table)
    return 0


def _fixes(record: RunRecord, original: RunRecord | None) -> str | None:
    """The fingerprint a passing rerun fixed: its original's, when that one failed."""
    if original is None or record.verdict is None or record.verdict.value != "pass":
        return None
    if original.verdict is None or original.verdict.value == "pass":
        return None
    return original.fingerprint


def _what(record: RunRecord) -> str:
    """A matrix run's combination, else the project checked and its command."""
    if record.spec:
        return f"{record.spec}/{record.prompt}/{record.model}"
    project = Path(record.project).name if record.project else ""
    return f"{project}: {record.command}" if record.command else project
