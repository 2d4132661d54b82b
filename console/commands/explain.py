"""``verdict explain``: explain a recorded failure or any stack trace.

    verdict explain RUN_ID [--offline] [--fresh] [--lang en|ko] [--json]
    verdict explain --trace FILE|- [--app PREFIX_OR_PATH] [--source DIR]
                    [--openapi SPEC --method M --url URL] [--offline] [--fresh] [--json]

Exit status: 0 an explanation was produced or found, 1 ``unavailable``, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from console.commands.common import find_run, http_method, open_db, settings_from_args
from console.errors import UsageError

LANGS = ("en", "ko")


def add_parser(sub: Any) -> None:
    """Register ``verdict explain``."""
    parser = sub.add_parser(
        "explain",
        help="explain a failed run or a stack trace",
        description="Explain a recorded failure (RUN_ID) or any stack trace (--trace) for a "
        "junior frontend developer and a PM: what was being done, why it failed, how to fix "
        "it. Uses the configured LLM, or the offline triage.",
    )
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="a recorded run's id")
    parser.add_argument("--trace", metavar="FILE", help="a file holding the error, or - for stdin")
    parser.add_argument(
        "--app", metavar="PREFIX_OR_PATH", help="JVM package prefix or project path of the app"
    )
    parser.add_argument("--source", metavar="DIR", help="project sources (for signatures)")
    parser.add_argument("--openapi", metavar="SPEC", help="OpenAPI file, URL or directory")
    parser.add_argument("--method", metavar="M", help="HTTP method of the failed request")
    parser.add_argument("--url", metavar="URL", help="URL or path of the failed request")
    parser.add_argument("--offline", action="store_true", help="offline triage, no LLM")
    parser.add_argument("--fresh", action="store_true", help="ignore a stored explanation")
    parser.add_argument("--lang", choices=LANGS, default=None, help="answer language")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _read_trace(name: str) -> str:
    """The trace text: a regular file or standard input, bounded in size."""
    from console.files import InputFileError, read_stdin, read_text_file

    try:
        return read_stdin() if name == "-" else read_text_file(Path(name).expanduser())
    except InputFileError as exc:
        raise UsageError(f"--trace: cannot read {exc}") from None


def run(args: argparse.Namespace) -> int:
    """Handle ``verdict explain``."""
    from console.explain.explainer import explain_failure
    from console.explain.inputs import from_run, from_trace
    from console.explain.openapi import load_spec

    if bool(args.run_id) == bool(args.trace):
        raise UsageError("give either RUN_ID or --trace FILE (one of them)")
    if args.openapi and not (args.method and args.url):
        raise UsageError("--openapi needs --method and --url of the failed request")
    if bool(args.method) != bool(args.url):
        raise UsageError("--method and --url go together")
    if args.method:
        args.method = http_method(args.method)
    settings = settings_from_args(args)
    lang = args.lang or settings.explain.lang
    if lang not in LANGS:
        raise UsageError(f"--lang: unknown language {lang!r}; use en or ko")
    spec = load_spec(args.openapi) if args.openapi else None
    source = Path(args.source).expanduser() if args.source else None
    if source is not None and not source.is_dir():
        raise UsageError(f"--source: {args.source} is not a directory")
    database = open_db(settings)
    try:
        if args.trace:
            data = from_trace(
                _read_trace(args.trace),
                app=args.app,
                source=source,
                spec=spec,
                method=args.method,
                url=args.url,
            )
        else:
            run_id = find_run(database, args.run_id).run_id  # one line for unknown/ambiguous
            data = from_run(database, run_id, app=args.app)
            data = data.model_copy(
                update={
                    "spec": spec,
                    "method": args.method,
                    "url": args.url,
                    "project_root": source or data.project_root,
                }
            )
        result = asyncio.run(
            explain_failure(
                data,
                settings=settings,
                db=database,
                offline=args.offline,
                fresh=args.fresh,
                lang=lang,
            )
        )
    finally:
        database.close()
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_human(result)
    return 1 if result.source == "unavailable" else 0


def _print_human(result: Any) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    head = Text()
    head.append(result.exception or "(no stack trace)", style="bold red")
    if result.message:
        head.append(": " + result.message)
    console.print(head)
    if result.operation is not None:
        op = result.operation
        line = f"{op.method} {op.path}"
        if op.operation_id:
            line += f"  [{op.operation_id}]"
        if op.summary:
            line += f"  {op.summary}"
        console.print(Text("operation  ", style="dim") + Text(line))
    for frame in result.app_frames:
        where = f"{frame.file}:{frame.line}" if frame.line else (frame.file or "")
        row = Text("  at ", style="dim") + Text(frame.name, style="cyan") + Text(f" ({where})")
        if frame.signature:
            row += Text(f"  {frame.signature}", style="dim")
        console.print(row)
    console.print()
    if result.explanation is None:
        console.print(Text(f"unavailable: {result.error or 'no explanation'}", style="yellow"))
        console.print(Text("try --offline for the offline triage", style="dim"))
    else:
        exp = result.explanation
        for label, value in (("action", exp.action), ("reason", exp.reason), ("guide", exp.guide)):
            console.print(Text(f"{label:<9}", style="bold") + Text(value))
        console.print(Text(f"{'why':<9}", style="dim") + Text(exp.inference, style="dim"))
    origin = result.source + (f" ({result.model})" if result.model else "")
    meta = f"source: {origin}  redactions: {result.redactions}  id: {result.explanation_id}"
    if result.explanation is not None:
        meta += f"  confidence: {result.explanation.confidence:.2f}"
    console.print(Text(meta, style="dim"))
