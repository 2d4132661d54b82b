"""The ``verdict`` command: a thin dispatcher over ``console/commands/*``.

Each command module exposes ``add_parser(subparsers)`` and sets ``func`` on its parser; the
function takes the parsed arguments and returns the exit status.  Bad input raises
:class:`UsageError` (or argparse fails) and ends with one line on stderr and status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import NoReturn

from console.errors import UsageError, one_line
from console.signals import Stopped, end_on_sigterm

COMMANDS = (
    "check",
    "history",
    "show",
    "run",
    "worker",
    "kube",
    "rerun",
    "usage",
    "explain",
    "explanations",
    "ui",
    "stats",
    "diff",
)


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="verdict",
        description="Generate, run and verify LLM-written projects; explain their failures.",
    )
    parser.add_argument("--db", help="SQLite database (default: XDG data dir; env VERDICT_DB)")
    parser.add_argument("--version", action="version", version="verdict 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = import_module(f"console.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"console.commands.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    end_on_sigterm()
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"verdict {args.command}: error: {one_line(str(exc), None)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Stopped as stopped:
        return 128 + stopped.signum


def entry() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    entry()
