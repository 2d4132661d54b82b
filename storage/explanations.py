"""Storage for explanations: the redacted input, the answer, where it came from, and FTS.

One row per explanation produced (LLM, offline triage, or an ``unavailable`` result that
says why).  ``explanations_fts`` (FTS5, external content) indexes exception, message,
action, reason and guide so stored explanations can be searched offline.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from storage.db import Database, Migration

if TYPE_CHECKING:
    import sqlite_utils

COMPONENT = "explanations"

_FTS_COLUMNS = ("exception", "message", "action", "reason", "guide")


def _v1(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE explanations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created REAL NOT NULL,
            run_id TEXT,
            fingerprint TEXT,
            source TEXT NOT NULL,
            model TEXT,
            prompt_version TEXT NOT NULL,
            lang TEXT NOT NULL DEFAULT 'en',
            exception TEXT NOT NULL DEFAULT '',
            message TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            guide TEXT NOT NULL DEFAULT '',
            inference TEXT NOT NULL DEFAULT '',
            confidence REAL,
            rule TEXT,
            error TEXT,
            redactions INTEGER NOT NULL DEFAULT 0,
            app_frames TEXT NOT NULL DEFAULT '[]',
            operation TEXT,
            input TEXT NOT NULL DEFAULT ''
        )"""
    )
    db.execute("CREATE INDEX explanations_fingerprint ON explanations (fingerprint, created)")
    db.execute("CREATE INDEX explanations_run ON explanations (run_id)")
    # External-content FTS5 kept in step by insert/update/delete triggers.
    db.table("explanations").enable_fts(
        list(_FTS_COLUMNS), fts_version="FTS5", create_triggers=True, tokenize="unicode61"
    )


MIGRATIONS: list[Migration] = [_v1]


class StoredExplanation(BaseModel):
    """One row of ``explanations``."""

    id: int | None = None
    created: float = Field(default_factory=time.time)
    run_id: str | None = None
    fingerprint: str | None = None
    source: str
    model: str | None = None
    prompt_version: str
    lang: str = "en"
    exception: str = ""
    message: str = ""
    action: str = ""
    reason: str = ""
    guide: str = ""
    inference: str = ""
    confidence: float | None = None
    rule: str | None = None
    error: str | None = None
    redactions: int = 0
    app_frames: list[dict[str, Any]] = Field(default_factory=list)
    operation: dict[str, Any] | None = None
    input: str = ""


def insert_explanation(database: Database, item: StoredExplanation) -> int:
    """Store ``item``; returns its id."""
    row = item.model_dump(exclude={"id"})
    row["app_frames"] = json.dumps(item.app_frames, ensure_ascii=False)
    row["operation"] = json.dumps(item.operation) if item.operation is not None else None
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    with database.write() as db:
        cursor = db.execute(
            f"INSERT INTO explanations ({names}) VALUES ({marks})", list(row.values())
        )
        return int(cursor.lastrowid or 0)


def _from_row(row: dict[str, Any]) -> StoredExplanation:
    data = dict(row)
    data["app_frames"] = json.loads(data.get("app_frames") or "[]")
    data["operation"] = json.loads(data["operation"]) if data.get("operation") else None
    return StoredExplanation.model_validate(data)


def get_explanation(database: Database, explanation_id: int) -> StoredExplanation | None:
    """One explanation by id."""
    rows = database.query("SELECT * FROM explanations WHERE id = ?", (explanation_id,))
    return _from_row(rows[0]) if rows else None


def find_cached(
    database: Database, fingerprint: str, *, lang: str, sources: tuple[str, ...] = ("llm",)
) -> StoredExplanation | None:
    """The newest explanation of ``fingerprint`` in ``lang`` from one of ``sources``."""
    marks = ", ".join("?" for _ in sources)
    rows = database.query(
        f"SELECT * FROM explanations WHERE fingerprint = ? AND lang = ? AND source IN ({marks})"
        " ORDER BY created DESC, id DESC LIMIT 1",
        (fingerprint, lang, *sources),
    )
    return _from_row(rows[0]) if rows else None


def explanations_for_run(database: Database, run_id: str) -> list[StoredExplanation]:
    """Explanations linked to a run, newest first."""
    rows = database.query(
        "SELECT * FROM explanations WHERE run_id = ? ORDER BY created DESC, id DESC", (run_id,)
    )
    return [_from_row(row) for row in rows]


def _fts_query(text: str) -> str:
    """Words of ``text`` as an FTS5 query (each word quoted, so operators are literal)."""
    words = re.findall(r"\w+", text)
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def search_explanations(
    database: Database, text: str | None = None, *, limit: int = 50
) -> list[StoredExplanation]:
    """Stored explanations, newest first; with ``text``, only those matching it (FTS)."""
    if not text or not _fts_query(text):
        rows = database.query(
            "SELECT * FROM explanations ORDER BY created DESC, id DESC LIMIT ?", (limit,)
        )
    else:
        rows = database.query(
            "SELECT e.* FROM explanations_fts f JOIN explanations e ON e.id = f.rowid"
            " WHERE explanations_fts MATCH ? ORDER BY f.rank, e.created DESC LIMIT ?",
            (_fts_query(text), limit),
        )
    return [_from_row(row) for row in rows]
