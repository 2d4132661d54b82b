"""Helpers shared by the sub-commands: settings and database from parsed arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

from console.errors import UsageError
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
    """Open the configured database, creating and migrating it as needed."""
    return Database(settings.db_path())
