"""Helpers shared by the sub-commands: settings and database from parsed arguments, and the
one set of argument validators.

Every validator turns bad input into a :class:`UsageError` naming the option (one line on
stderr, exit status 2), so a number too large for 64 bits, ``inf`` seconds or a header
injected through a newline never reaches the engine; the ``*_arg`` forms are the same
checks as argparse ``type=`` functions.
"""

from __future__ import annotations

import argparse
import math
import re
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from console.errors import UsageError, one_line
from console.settings import MAX_COUNT, MAX_SECONDS, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from storage.db import Database
    from storage.runs import RunRecord

T = TypeVar("T")
MAX_NUMBER_CHARS = 40  # longer "numbers" are refused before parsing (no 50,000-digit ints)
MAX_RUN_ID_CHARS = 64
MAX_URL_PATH_CHARS = 2048
MAX_LIST = 1_000_000  # rows a listing may ask for
_RUN_ID = re.compile(r"^[0-9A-Za-z_-]+$")
_METHOD = re.compile(r"^[A-Za-z]{1,20}$")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Load settings and apply the global ``--db`` option."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise UsageError(str(exc)) from exc
    if getattr(args, "db", None):
        settings.db = Path(args.db)
    return settings


def open_db(settings: Settings) -> Database:
    """Open the configured database, creating and migrating it as needed.

    Raises:
        UsageError: the file (or its directory) is read-only, missing, not a database, or
            written by a newer version of Verdict (then it is left untouched).
    """
    from storage.db import Database, SchemaTooNew  # sqlite-utils: only when a command needs it

    path = settings.db_path()
    try:
        return Database(path)
    except SchemaTooNew as exc:
        raise UsageError(f"the database {path} {exc}") from exc
    except (sqlite3.Error, OSError) as exc:
        raise UsageError(
            f"cannot open the database {path}: {one_line(str(exc), None)}"
            " (is it writable? choose one with --db)"
        ) from exc


def open_recording_db(settings: Settings) -> Database:
    """Open the database for a command that records runs, after cleaning up what a killed
    harness left behind (see :func:`console.sandbox.sweep.sweep_orphans`).

    The harness is also made non-dumpable here, so the projects it is about to run cannot
    read its environment (API keys) through ``/proc``.
    """
    from console.sandbox.namespaces import protect_harness
    from console.sandbox.sweep import sweep_orphans

    protect_harness()
    db = open_db(settings)
    swept = sweep_orphans(db)
    if swept:
        shown = ", ".join(swept[:5]) + (f" and {len(swept) - 5} more" if len(swept) > 5 else "")
        print(
            f"verdict: {len(swept)} run(s) left by a killed verdict process marked aborted,"
            f" their processes and files removed: {shown}",
            file=sys.stderr,
        )
    return db


# --- validators ---------------------------------------------------------------------------
def whole_number(text: str, option: str, *, minimum: int = 1, maximum: int = MAX_COUNT) -> int:
    """A whole number within ``minimum``..``maximum``."""
    cleaned = text.strip()
    if len(cleaned) > MAX_NUMBER_CHARS:
        raise UsageError(f"{option} must be at most {maximum}, not a {len(cleaned)}-digit number")
    try:
        value = int(cleaned)
    except ValueError:
        raise UsageError(
            f"{option} must be a whole number, not {one_line(repr(text), 80)}"
        ) from None
    if value < minimum:
        raise UsageError(f"{option} must be {minimum} or more, not {value}")
    if value > maximum:
        raise UsageError(f"{option} must be at most {maximum}, not {value}")
    return value


def seconds(
    text: str, option: str, *, allow_zero: bool = False, maximum: float = MAX_SECONDS
) -> float:
    """A finite number of seconds: positive (or zero when allowed), at most ``maximum``."""
    if len(text) > MAX_NUMBER_CHARS:
        raise UsageError(f"{option} must be a number of seconds, not {len(text)} characters")
    try:
        value = float(text)
    except ValueError:
        raise UsageError(
            f"{option} must be a number of seconds, not {one_line(repr(text), 80)}"
        ) from None
    if not math.isfinite(value):
        raise UsageError(f"{option} must be a finite number of seconds, not {text.strip()}")
    if value < 0 or (value == 0 and not allow_zero):
        least = "0 or more" if allow_zero else "more than 0"
        raise UsageError(f"{option} must be {least} seconds, not {text.strip()}")
    if value > maximum:
        raise UsageError(f"{option} must be at most {maximum:.0f} seconds, not {text.strip()}")
    return value


def env_assignment(pair: str, option: str = "--env") -> tuple[str, str]:
    """``NAME=VALUE`` for the sandbox: a variable name, not one the sandbox owns."""
    from console.sandbox.base import is_env_name, reserved_env_name

    name, sep, value = pair.partition("=")
    if not sep or not is_env_name(name):
        raise UsageError(f"{option} expects NAME=VALUE, not {one_line(repr(pair), 80)}")
    if reserved_env_name(name):
        raise UsageError(f"{option} cannot set {name}: the sandbox sets it itself")
    if "\0" in value:
        raise UsageError(f"{option} {name}: a value cannot hold a NUL character")
    return name, value


def url_path(text: str, option: str) -> str:
    """A request path such as ``/health``: starts with ``/``, no spaces or control bytes."""
    if (
        not text.startswith("/")
        or len(text) > MAX_URL_PATH_CHARS
        or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text)
    ):
        raise UsageError(
            f"{option} must be a path such as /health (no spaces or control characters),"
            f" not {one_line(repr(text), 80)}"
        )
    return text


def command_text(text: str, option: str) -> str:
    """A shell command: not empty, no NUL byte (``sh -c`` could not receive it)."""
    if not text.strip() or "\0" in text:
        raise UsageError(f"{option} must be a command, not {one_line(repr(text), 80)}")
    return text


def http_method(text: str, option: str = "--method") -> str:
    """An HTTP method name such as ``GET`` (letters only)."""
    if not _METHOD.match(text):
        raise UsageError(
            f"{option} must be an HTTP method such as GET, not {one_line(repr(text), 40)}"
        )
    return text.upper()


def run_id_text(text: str) -> str:
    """A run id or a prefix of one: short, letters, digits, ``-`` and ``_`` only."""
    if not text or len(text) > MAX_RUN_ID_CHARS or not _RUN_ID.match(text):
        shown = one_line(repr(text[:40]) + ("…" if len(text) > 40 else ""), 80)
        raise UsageError(f"no run {shown}: a run id is up to {MAX_RUN_ID_CHARS} letters and digits")
    return text


def find_run(db: Database, text: str) -> RunRecord:
    """The run named by an id or a unique prefix of one.

    Raises:
        UsageError: no such run, or a prefix that names several.
    """
    from storage import runs

    run_id = run_id_text(text)
    record = runs.get_run(db, run_id)
    if record is not None:
        return record
    pattern = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    found = db.query("SELECT run_id FROM runs WHERE run_id LIKE ? ESCAPE '\\' LIMIT 3", (pattern,))
    if len(found) > 1:
        names = ", ".join(row["run_id"] for row in found[:2])
        raise UsageError(f"run id prefix {run_id!r} is ambiguous ({names}, …): give more of it")
    raise UsageError(f"no run {run_id!r} (see 'verdict history')")


def _argparse_type(check: Callable[[str], T]) -> Callable[[str], T]:
    def convert(text: str) -> T:
        try:
            return check(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more (bad input ends as a one-line error)."""
    return _argparse_type(lambda value: whole_number(value, "the value"))(text)


def seconds_arg(text: str) -> float:
    """argparse type: a finite, positive number of seconds."""
    return _argparse_type(lambda value: seconds(value, "the value"))(text)


def grace_arg(text: str) -> float:
    """argparse type: a finite number of seconds, 0 or more (0: no grace at all)."""
    return _argparse_type(lambda value: seconds(value, "the value", allow_zero=True))(text)


def run_id_arg(text: str) -> str:
    """argparse type: a run id or a prefix of one (see :func:`run_id_text`)."""
    return _argparse_type(run_id_text)(text)
