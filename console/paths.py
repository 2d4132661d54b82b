"""Where Verdict Console keeps its files: XDG config and data dirs, created lazily.

Nothing here touches the disk at import time; callers ask for a path when they need it.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_DIR_NAME = "verdict"


def config_dir() -> Path:
    """The config directory (``$XDG_CONFIG_HOME/verdict``); not created."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / APP_DIR_NAME


def data_dir(create: bool = False) -> Path:
    """The data directory (``$XDG_DATA_HOME/verdict``), created on request."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    path = Path(base) / APP_DIR_NAME
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def config_file() -> Path:
    """The settings file, ``config.toml`` in the config directory."""
    return config_dir() / "config.toml"


def default_db_path() -> Path:
    """The SQLite database used when neither ``--db`` nor ``VERDICT_DB`` is given."""
    return data_dir() / "verdict.db"


def runs_dir(create: bool = False) -> Path:
    """Scratch space for per-run working directories."""
    path = data_dir() / "runs"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path
