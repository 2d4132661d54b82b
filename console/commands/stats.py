"""``verdict stats``: the console's stats screen as text or JSON."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def add_parser(sub: Any) -> None:
    """Register ``verdict stats``."""
    parser = sub.add_parser(
        "stats",
        help="pass rates, top fingerprints, outcome measures, LLM spend",
        description="Triage figures computed from history (the console's stats screen).",
    )
    parser.add_argument(
        "--since", metavar="DURATION", help="only runs and calls in the last DURATION (e.g. 7d)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """The ``stats`` command."""
    from rich.console import Console

    from console.commands.common import open_db, settings_from_args
    from console.commands.usage import parse_duration
    from console.engine.stats import compute_stats
    from console.triage_text import render_stats

    since = time.time() - parse_duration(args.since) if args.since else None
    settings = settings_from_args(args)
    db = open_db(settings)
    try:
        report = compute_stats(db, since=since)
    finally:
        db.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        Console(highlight=False).print(render_stats(report))
    return 0
