"""Run the ``verdict`` command as a user would (a subprocess) and read its database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

VERDICT = [sys.executable, "-m", "console.cli"]


def run_verdict(
    *args: str, db: Path, timeout: float = 90, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``verdict --db DB ARGS…``, with its output captured as text."""
    return subprocess.run(
        [*VERDICT, "--db", str(db), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def db_rows(db: Path, sql: str, *params: object) -> list[tuple]:
    """Rows of ``sql`` read straight from the SQLite file (no project code involved)."""
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()
