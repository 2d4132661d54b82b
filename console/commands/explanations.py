"""``verdict explanations``: browse and search stored explanations offline."""

from __future__ import annotations

import argparse
import json
from typing import Any

from console.commands.common import MAX_LIST, open_db, settings_from_args, whole_number


def add_parser(sub: Any) -> None:
    """Register ``verdict explanations``."""
    parser = sub.add_parser(
        "explanations",
        help="browse stored explanations",
        description="Stored explanations, newest first; --search matches exception, message, "
        "action, reason and guide (full-text, offline).",
    )
    parser.add_argument("--search", metavar="TEXT", help="full-text search")
    parser.add_argument("--limit", default="20", help="at most N (default 20)")
    parser.add_argument("--json", action="store_true", help="print a JSON list")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``verdict explanations``."""
    from storage.explanations import search_explanations

    limit = whole_number(str(args.limit), "--limit", maximum=MAX_LIST)
    settings = settings_from_args(args)
    database = open_db(settings)
    try:
        items = search_explanations(database, args.search, limit=limit)
    finally:
        database.close()
    if args.json:
        rows = [
            {
                "explanation_id": e.id,
                "created": e.created,
                "run_id": e.run_id,
                "fingerprint": e.fingerprint,
                "source": e.source,
                "model": e.model,
                "prompt_version": e.prompt_version,
                "lang": e.lang,
                "exception": e.exception,
                "message": e.message,
                "explanation": None
                if e.source == "unavailable"
                else {
                    "action": e.action,
                    "reason": e.reason,
                    "guide": e.guide,
                    "inference": e.inference,
                    "confidence": e.confidence,
                },
                "error": e.error,
                "redactions": e.redactions,
                "app_frames": e.app_frames,
                "operation": e.operation,
            }
            for e in items
        ]
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    if not items:
        console.print(Text("no stored explanations" + (" match" if args.search else "")))
        return 0
    for e in items:
        head = Text(f"#{e.id} ", style="bold") + Text(f"[{e.source}] ", style="dim")
        head += Text(e.exception or "(no trace)", style="red")
        if e.message:
            head += Text(": " + e.message[:120])
        if e.run_id:
            head += Text(f"  run {e.run_id}", style="dim")
        console.print(head)
        console.print(Text("   " + (e.reason or e.error or "")[:200]))
    return 0
