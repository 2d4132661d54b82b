"""A database written by a newer version is refused in one line and never touched."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from storage.db import Database, SchemaTooNew
from tests.support.cli import run_verdict


def _newer(path: Path) -> str:
    database = Database(path)
    database.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_versions SET version = 99 WHERE component = 'runs'")
    conn.execute("CREATE TABLE from_the_future (x)")
    conn.commit()
    conn.execute("PRAGMA journal_mode = DELETE")  # one file whose bytes tell any change
    conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_opening_refuses_and_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "verdict.db"
    before = _newer(path)
    with pytest.raises(SchemaTooNew, match="runs schema 99"):
        Database(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not path.with_name("verdict.db-wal").exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute(
            "SELECT version FROM schema_versions WHERE component = 'runs'"
        ).fetchone() == (99,)


@pytest.mark.parametrize("command", [["history"], ["usage"], ["show", "abc"], ["explanations"]])
def test_every_command_says_so_in_one_line(tmp_path: Path, command: list[str]) -> None:
    path = tmp_path / "verdict.db"
    before = _newer(path)
    done = run_verdict(*command, db=path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "newer version of Verdict" in lines[0], done.stderr
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
