"""``verdict diff RUN_A RUN_B``: two attempts side by side and the diff of their files."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    """Register ``verdict diff``."""
    parser = sub.add_parser(
        "diff",
        help="compare two runs (usually attempts of one combination)",
        description="Verdict, stages, port, failure and a unified diff of the generated files.",
    )
    parser.add_argument("run_a", metavar="RUN_A", help="the older run (a unique id prefix works)")
    parser.add_argument("run_b", metavar="RUN_B", help="the newer run")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``diff`` command: 0 when it was printed (the verdicts do not decide it)."""
    from rich.console import Console

    from console.commands.common import open_db, settings_from_args
    from console.engine.attempt_diff import diff_runs
    from console.triage_text import render_diff

    settings = settings_from_args(args)
    db = open_db(settings)
    try:
        diff = diff_runs(db, args.run_a, args.run_b)
    finally:
        db.close()
    if args.json:
        print(json.dumps(diff.to_json(), indent=2, ensure_ascii=False))
    else:
        Console(highlight=False).print(render_diff(diff))
    return 0
