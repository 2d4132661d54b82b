"""``verdict check PATH``: run one project in a local sandbox and print its verdict.

Exit status: 0 pass, 1 any other verdict, 2 bad input.  Every check is recorded in the
database (``verdict history`` lists them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from console.model import CheckSpec
    from console.settings import SandboxSettings

if TYPE_CHECKING:
    from console.detect import Detection
    from console.model import CheckResult, CheckSpec

DESCRIPTION = (
    "Copy the project into a fresh sandbox, start it, and decide whether it works: process"
    " alive, port opened, GET / answered, health 2xx, log regexes, still alive after a short"
    " settle window. Exit status 0 pass, 1 other verdict, 2 bad input."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``check``."""
    parser = sub.add_parser(
        "check", help="verify one project in a sandbox", description=DESCRIPTION
    )
    parser.add_argument("path", metavar="PATH", help="project directory")
    parser.add_argument("--run", metavar="CMD", help="run command (default: detected)")
    parser.add_argument("--install", metavar="CMD", help="install command, run first")
    parser.add_argument("--health", metavar="PATH", help="health endpoint that must answer 2xx")
    # Both watch the run command's output from its start until the verdict: the install's
    # output and what the app prints while being stopped are stored but never searched.
    parser.add_argument(
        "--expect-log",
        metavar="RE",
        action="append",
        default=[],
        help="regex the app's output must match before the verdict (install output not searched)",
    )
    parser.add_argument(
        "--fail-log",
        metavar="RE",
        action="append",
        default=[],
        help="regex the app's output must not match before the verdict (nor install output)",
    )
    parser.add_argument("--start-timeout", metavar="S", help="seconds to become ready")
    parser.add_argument("--install-timeout", metavar="S", help="seconds for the install command")
    parser.add_argument("--memory-mb", metavar="N", help="memory limit of the process tree")
    parser.add_argument(
        "--settle",
        metavar="S",
        help="seconds the app must stay alive after opening its port (and after the last"
        " probe at least 0.25 s, or half of S if longer)",
    )
    parser.add_argument(
        "--env", metavar="K=V", action="append", default=[], help="extra environment variable"
    )
    parser.add_argument(
        "--network",
        choices=["host", "none"],
        help="none: run the project without network access (the probes still reach it)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    from console.commands.kube import add_sandbox_options

    add_sandbox_options(parser)
    parser.add_argument(
        "--explain-detect",
        action="store_true",
        help="say what install and start were detected, from which file and why; run nothing",
    )
    parser.set_defaults(func=run)


def _seconds(value: str | None, option: str, default: float, *, zero: bool = False) -> float:
    from console.commands.common import seconds

    return default if value is None else seconds(value, option, allow_zero=zero)


def _env(pairs: list[str]) -> dict[str, str]:
    from console.commands.common import env_assignment

    return dict(env_assignment(pair) for pair in pairs)


def _spec(args: argparse.Namespace, defaults: SandboxSettings) -> CheckSpec:
    """The check to run, every option validated (one line and exit 2 for bad input)."""
    from console.commands.common import command_text, url_path, whole_number
    from console.model import CheckSpec
    from console.settings import MAX_MEMORY_MB

    for option, text in (("--run", args.run), ("--install", args.install)):
        if text is not None:
            command_text(text, option)
    memory = defaults.memory_mb
    if args.memory_mb is not None:
        memory = whole_number(args.memory_mb, "--memory-mb", maximum=MAX_MEMORY_MB)
    return CheckSpec(
        project=Path(args.path),
        run=args.run,
        install=args.install,
        health=None if args.health is None else url_path(args.health, "--health"),
        expect_log=args.expect_log,
        fail_log=args.fail_log,
        start_timeout=_seconds(args.start_timeout, "--start-timeout", defaults.start_timeout),
        install_timeout=_seconds(
            args.install_timeout, "--install-timeout", defaults.install_timeout
        ),
        memory_mb=memory,
        settle=_seconds(args.settle, "--settle", defaults.settle, zero=True),
        env=_env(args.env),
    )


def run(args: argparse.Namespace) -> int:
    """The ``check`` command."""
    from console import paths
    from console.checker import run_check, validate_spec
    from console.commands.common import open_recording_db, settings_from_args
    from console.model import Event, Verdict, VerdictReached
    from console.recorder import Recorder
    from console.sandbox.copy import refuse_source
    from console.signals import run_until_signal
    from storage import runs

    settings = settings_from_args(args)
    if args.network is not None:
        settings.sandbox.network = args.network
    defaults = settings.sandbox
    spec = _spec(args, defaults)
    refuse_source(Path(args.path), paths.data_dir())
    checked = validate_spec(spec)  # bad input ends here, before anything runs
    from console.commands.kube import apply_sandbox_options
    from console.detect import detect_run

    found = detect_run(Path(args.path))
    if args.explain_detect:
        return _explain(found, checked, args)
    if apply_sandbox_options(args, settings, checked):
        return 0  # --dry-run: the objects were printed, nothing ran
    db = open_recording_db(settings)
    if not args.run:
        source = found.source if found else "?"
        print(f"verdict check: running {checked.run!r} (detected from {source})", file=sys.stderr)
    shown: list[CheckResult] = []

    def show(result: CheckResult) -> None:
        shown.append(result)
        if args.json:
            print(json.dumps(_json(result, checked, found, args), ensure_ascii=False), flush=True)
        else:
            from console.report import print_check

            print_check(result)
            sys.stdout.flush()

    def emit(event: Event) -> None:
        recorder.handle(event)
        if isinstance(event, VerdictReached) and not shown:
            show(event.result)  # at once: the run directory is removed after this

    try:
        recorder = Recorder(db)
        result, received = asyncio.run(
            run_until_signal(run_check(spec, settings=defaults, emit=emit))
        )
        if result is None:
            # Stopped by SIGINT/SIGTERM: run_check's cleanup has killed the whole tree.
            print("verdict check: stopped; the run's processes were killed", file=sys.stderr)
            return 128 + (received or signal.SIGINT)
        stored = runs.get_run(db, result.run_id)
        if stored is None or stored.verdict is None:
            # The recorder logged a failure while the run went on; this write must not fail
            # silently: an exception here is reported rather than a run left unrecorded.
            runs.record_result(db, result)
    finally:
        db.close()
    if result.isolation.startswith("none"):
        print(
            f"verdict check: warning: no namespace isolation: {result.isolation[6:]}",
            file=sys.stderr,
        )
    if not shown:
        show(result)
    return 0 if result.verdict == Verdict.PASS else 1


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _origin(found: Detection | None, args: argparse.Namespace) -> dict[str, str | None]:
    """Where the run and install commands came from."""
    run_from = "--run" if args.run else (found.source if found else None)
    if args.install:
        install_from: str | None = "--install"
    else:
        install_from = found.install_source if found else None
    return {"run": run_from, "install": install_from}


def _json(
    result: CheckResult, checked: CheckSpec, found: Detection | None, args: argparse.Namespace
) -> dict[str, object]:
    out = result.to_json()
    out["command"] = checked.run
    out["install"] = checked.install
    out["from"] = _origin(found, args)
    out["started"] = _iso(result.started)
    out["finished"] = _iso(result.finished)
    out["detection"] = found.to_json() if found is not None else None
    return out


def _explain(found: Detection | None, checked: CheckSpec, args: argparse.Namespace) -> int:
    origin = _origin(found, args)
    if args.json:
        detection = found.to_json() if found is not None else None
        body = {"command": checked.run, "install": checked.install, "from": origin}
        print(json.dumps({**body, "detection": detection}, ensure_ascii=False))
        return 0
    if found is None or args.run or args.install:
        print(f"start:   {checked.run}\n  from {origin['run']}")
        print(f"install: {checked.install or 'none'}\n  from {origin['install'] or '-'}")
        return 0
    print("\n".join(found.explain()))
    return 0
