"""``verdict usage``: LLM calls, tokens, cost and latency from the token ledger."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict
from typing import Any

from console.commands.common import MAX_NUMBER_CHARS, open_db, settings_from_args
from console.errors import UsageError
from storage.llm_calls import GROUP_COLUMNS, UsageTotals, usage_totals

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
MAX_SINCE_SECONDS = 100 * 365 * 86400.0


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``90s``, ``15m``, ``2h``, ``1h30m``, ``7d``, ``2w``.

    Raises:
        UsageError: the text is not such a duration, or it is zero.
    """
    value = text.strip().lower()
    parts = _PART.findall(value)
    if not value or "".join(n + u for n, u in parts) != value:
        raise UsageError(
            f"--since: cannot read duration {text!r}; use e.g. 90s, 15m, 2h, 1h30m, 7d, 2w"
        )
    if len(value) > MAX_NUMBER_CHARS:
        raise UsageError(f"--since: duration of {len(value)} characters is too long")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"--since: duration {text!r} must be longer than zero")
    if seconds > MAX_SINCE_SECONDS:
        raise UsageError(f"--since: duration {text!r} is longer than 100 years")
    return seconds


def add_parser(sub: Any) -> None:
    """Register ``verdict usage``."""
    parser = sub.add_parser(
        "usage",
        help="LLM calls, tokens, cost and latency",
        description="Totals of recorded LLM calls: calls, tokens, cost, p50/p95 latency.",
    )
    parser.add_argument(
        "--by", choices=sorted(GROUP_COLUMNS), help="one row per model, feature, user or job"
    )
    parser.add_argument(
        "--since", metavar="DURATION", help="only calls in the last DURATION (e.g. 2h, 7d)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _table(rows: list[UsageTotals], by: str | None, total: UsageTotals | None) -> Any:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, highlight=False, header_style="bold")
    table.add_column(by or "scope")
    for name in ("calls", "errors", "input", "cached", "output", "reasoning", "cost_usd"):
        table.add_column(name, justify="right")
    table.add_column("p50_ms", justify="right")
    table.add_column("p95_ms", justify="right")
    labelled = [(r.key if r.key is not None else ("(none)" if by else "all"), r) for r in rows]
    if total is not None:
        labelled.append(("TOTAL", total))
    for key, row in labelled:
        table.add_row(
            Text(key),  # model and user names are never markup
            str(row.calls),
            str(row.errors),
            str(row.input_tokens),
            str(row.cached_input_tokens),
            str(row.output_tokens),
            str(row.reasoning_tokens),
            f"{row.cost_usd:.4f}",
            _ms(row.p50_latency_ms),
            _ms(row.p95_latency_ms),
            style="bold" if key == "TOTAL" and total is not None else None,
        )
    return table


def run(args: argparse.Namespace) -> int:
    """Print usage totals; exit 2 for a bad ``--since``."""
    # An empty --since is a bad duration, not "no filter".
    since = time.time() - parse_duration(args.since) if args.since is not None else None
    settings = settings_from_args(args)
    db = open_db(settings)
    try:
        rows = usage_totals(db, by=args.by, since=since)
        total = usage_totals(db, since=since) if args.by else rows
    finally:
        db.close()
    if args.json:
        payload = {
            "by": args.by,
            "since": since,
            "rows": [asdict(row) for row in rows],
            "total": asdict(total[0]) if total else None,
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return 0
    if not rows:
        sys.stdout.write("no LLM calls recorded" + (f" in the last {args.since}" if since else ""))
        sys.stdout.write("\n")
        return 0
    from rich.console import Console

    Console(highlight=False, soft_wrap=True).print(
        _table(rows, args.by, total[0] if args.by else None)
    )
    return 0
