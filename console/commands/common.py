"""Helpers shared by the sub-commands: settings and database from parsed arguments."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

from console.errors import UsageError, one_line
from console.settings import Settings, SettingsError, load_settings
from storage.db import Database


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
        UsageError: the file (or its directory) is read-only, missing, or not a database.
    """
    path = settings.db_path()
    try:
        return Database(path)
    except (sqlite3.Error, OSError) as exc:
        raise UsageError(
            f"cannot open the database {path}: {one_line(str(exc), None)}"
            " (is it writable? choose one with --db)"
        ) from exc


def positive_int(text: str) -> int:
    """argparse type: a whole number of 1 or more (bad input ends as a one-line error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value
