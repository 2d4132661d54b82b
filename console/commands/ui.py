"""``verdict ui [MATRIX]`` and ``verdict demo``: the operations console.

``ui`` opens the console on the database; with a matrix it also runs it (embedded queue
and workers in the console's process, or jobs sent to Kafka with ``--queue``).  ``demo``
opens it on the bundled example matrix.  ``--headless`` (or no terminal) runs the same
work without a screen and prints the verdict table; the exit status is the matrix's
(0 all pass, 1 some fail, 2 bad input).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from console.commands.common import open_recording_db, positive_int, settings_from_args
from console.errors import UsageError

DEMO_MATRIX = Path("examples") / "shop.toml"


def add_parser(sub: Any) -> None:
    """Register ``verdict ui`` and ``verdict demo``."""
    ui = sub.add_parser(
        "ui",
        help="open the operations console (and run MATRIX, if given)",
        description="Open the console on the database; with MATRIX, run it too.",
    )
    ui.add_argument("matrix", nargs="?", type=Path, help="matrix file (TOML) to run")
    _common(ui)
    ui.set_defaults(func=handle_ui)
    demo = sub.add_parser(
        "demo",
        help="open the console on the bundled example matrix",
        description="Run the bundled example matrix (replayed, offline) in the console.",
    )
    _common(demo)
    demo.set_defaults(func=handle_demo)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", help="'embedded' (default) or kafka://HOST:PORT[?prefix=P]")
    parser.add_argument("--slots", type=positive_int, help="jobs running at once")
    parser.add_argument(
        "--lang", choices=("en", "ko"), help="language of explanations in the explain pane"
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no screen: run the matrix and print the verdict table (also without a terminal)",
    )


def demo_matrix() -> Path:
    """The bundled example matrix: beside the package (a checkout), or under the current
    directory (the repository root)."""
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        candidate = base / DEMO_MATRIX
        if candidate.is_file():
            return candidate
    raise UsageError(f"the example matrix {DEMO_MATRIX} is not here; run from the repository root")


def handle_demo(args: argparse.Namespace) -> int:
    """Run ``verdict demo``."""
    args.matrix = demo_matrix()
    return handle_ui(args)


def handle_ui(args: argparse.Namespace) -> int:
    """Run ``verdict ui``."""
    from console.queue.base import parse_queue_url

    settings = settings_from_args(args)
    if args.lang:
        settings.explain.lang = args.lang
    matrix = None
    if args.matrix is not None:
        from console.matrix import load_matrix

        matrix = load_matrix(args.matrix)
    queue_url = parse_queue_url(
        args.queue or (matrix.settings.queue if matrix else None) or settings.queue.url
    )
    slots = args.slots or (matrix.settings.slots if matrix else None) or settings.queue.slots
    if matrix is not None and matrix.settings.sandbox:
        settings.sandbox.kind = matrix.settings.sandbox
    if matrix is not None and matrix.settings.network:
        settings.sandbox.network = matrix.settings.network
    headless = args.headless or not (sys.stdin.isatty() and sys.stdout.isatty())
    if headless:
        if matrix is None:
            raise UsageError("--headless needs a MATRIX to run (or use 'verdict demo')")
        if not args.headless:
            print("verdict: no terminal; running headless", file=sys.stderr)
        return _headless(matrix, settings, queue_url, slots)
    check_database(settings.db_path())  # one line before the screen, not a broken console
    from console.app import ConsoleOptions, VerdictApp

    app = VerdictApp(
        ConsoleOptions(
            settings=settings,
            db_path=settings.db_path(),
            matrix=matrix,
            queue_url=queue_url,
            slots=slots,
        )
    )
    return app.run() or 0


def check_database(path: Path) -> None:
    """Refuse a database path that cannot be opened, cheaply (the app migrates it later,
    off its loop, after the first frame).

    Raises:
        UsageError: the file is not SQLite, or its directory cannot be written.
    """
    import sqlite3

    from console.errors import one_line

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=5)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        raise UsageError(
            f"cannot open the database {path}: {one_line(str(exc), None)}"
            " (is it writable? choose one with --db)"
        ) from exc


def _headless(matrix: Any, settings: Any, queue_url: Any, slots: int) -> int:
    from console.commands.run import execute, plan_jobs

    db = open_recording_db(settings)
    try:
        jobs = plan_jobs(db, matrix, queue_url)
        return execute(jobs, settings=settings, db=db, queue_url=queue_url, slots=slots)
    finally:
        db.close()
