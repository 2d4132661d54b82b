"""Storage for the console's history: a full-text index of runs and the reads that page,
search and summarise past runs and explanations.

``runs_fts`` (FTS5) indexes each run's combination, verdict, reason, and its failure's
exception and message.  Triggers keep it in step with ``runs`` and ``failures``; it is
refreshed only when those columns change (a log batch, which updates ``runs.log_lines``,
does not touch it).  Its rowid is the run's rowid; results are joined on ``run_id``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from storage.db import Database, Migration

COMPONENT = "history"

# One run's row of the index, built from ``runs r`` and its failure.
_FTS_ROW = (
    "SELECT r.rowid, r.run_id,"
    " COALESCE(r.spec, '') || ' ' || COALESCE(r.prompt, '') || ' ' || COALESCE(r.model, ''),"
    " COALESCE(r.verdict, ''), COALESCE(r.reason, ''),"
    " COALESCE(f.exception, ''), COALESCE(f.message, '')"
    " FROM runs r LEFT JOIN failures f ON f.run_id = r.run_id"
)
_FTS_INSERT = (
    "INSERT INTO runs_fts (rowid, run_id, combination, verdict, reason, exception, message) "
)


def _refresh(run_id_expr: str) -> str:
    return (
        f"DELETE FROM runs_fts WHERE rowid = (SELECT rowid FROM runs WHERE run_id = {run_id_expr});"
        f" {_FTS_INSERT}{_FTS_ROW} WHERE r.run_id = {run_id_expr};"
    )


def _v1(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE VIRTUAL TABLE runs_fts USING fts5("
        " run_id UNINDEXED, combination, verdict, reason, exception, message,"
        " tokenize = 'unicode61')"
    )
    refresh = _refresh("new.run_id")
    db.execute(f"CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN {refresh} END")
    db.execute(
        "CREATE TRIGGER runs_fts_update AFTER UPDATE OF spec, prompt, model, verdict, reason"
        f" ON runs BEGIN {refresh} END"
    )
    db.execute(
        "CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN"
        " DELETE FROM runs_fts WHERE rowid = old.rowid; END"
    )
    db.execute(
        f"CREATE TRIGGER runs_fts_failure AFTER INSERT ON failures BEGIN {refresh} END"
    )
    db.execute(
        "CREATE TRIGGER runs_fts_failure_update AFTER UPDATE OF exception, message ON failures"
        f" BEGIN {refresh} END"
    )
    db.execute(f"{_FTS_INSERT}{_FTS_ROW}")  # runs recorded before the index existed
    # What the history filters and the attempt/stats reads walk.
    db.execute("CREATE INDEX runs_combination ON runs (spec, prompt, model, started)")
    db.execute("CREATE INDEX runs_verdict_started ON runs (verdict, started)")
    db.execute("CREATE INDEX explanations_created ON explanations (created)")


MIGRATIONS: list[Migration] = [_v1]


@dataclass(frozen=True)
class HistoryQuery:
    """What the history shows: filters (all optional) and full-text ``text``."""

    verdict: str | None = None
    spec: str | None = None
    prompt: str | None = None
    model: str | None = None
    fingerprint: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None


def fts_query(text: str) -> str:
    """Words of ``text`` as an FTS5 query: each word quoted (operators are literal)."""
    words = re.findall(r"\w+", text)
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def _run_where(query: HistoryQuery, alias: str = "r") -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    for column in ("verdict", "spec", "prompt", "model", "fingerprint"):
        value = getattr(query, column)
        if value:
            where.append(f"{alias}.{column} = ?")
            params.append(value)
    if query.since is not None:
        where.append(f"{alias}.started >= ?")
        params.append(query.since)
    if query.until is not None:
        where.append(f"{alias}.started < ?")
        params.append(query.until)
    return where, params


def history_runs(
    database: Database, query: HistoryQuery, *, before: tuple[float, str] | None, limit: int
) -> list[dict[str, Any]]:
    """One page of runs, newest first, older than ``before`` (started, run_id)."""
    where, params = _run_where(query)
    if query.text and fts_query(query.text):
        where.append("r.run_id IN (SELECT run_id FROM runs_fts WHERE runs_fts MATCH ?)")
        params.append(fts_query(query.text))
    if before is not None:
        where.append("(r.started < ? OR (r.started = ? AND r.run_id < ?))")
        params += [before[0], before[0], before[1]]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return database.query(
        "SELECT r.run_id, r.started, r.spec, r.prompt, r.model, r.attempt, r.rerun_of,"
        " r.status, r.verdict, r.reason, r.fingerprint,"
        " (SELECT f.exception FROM failures f WHERE f.run_id = r.run_id) AS exception"
        f" FROM runs r {clause} ORDER BY r.started DESC, r.run_id DESC LIMIT ?",
        [*params, limit],
    )


def history_explanations(
    database: Database, query: HistoryQuery, *, before: tuple[float, int] | None, limit: int
) -> list[dict[str, Any]]:
    """One page of explanations, newest first, older than ``before`` (created, id)."""
    where: list[str] = []
    params: list[Any] = []
    if query.fingerprint:
        where.append("e.fingerprint = ?")
        params.append(query.fingerprint)
    if query.since is not None:
        where.append("e.created >= ?")
        params.append(query.since)
    if query.until is not None:
        where.append("e.created < ?")
        params.append(query.until)
    run_where, run_params = _run_where(
        HistoryQuery(verdict=query.verdict, spec=query.spec, prompt=query.prompt, model=query.model)
    )
    if run_where:
        where.append(f"e.run_id IN (SELECT r.run_id FROM runs r WHERE {' AND '.join(run_where)})")
        params += run_params
    if query.text and fts_query(query.text):
        where.append("e.id IN (SELECT rowid FROM explanations_fts WHERE explanations_fts MATCH ?)")
        params.append(fts_query(query.text))
    if before is not None:
        where.append("(e.created < ? OR (e.created = ? AND e.id < ?))")
        params += [before[0], before[0], before[1]]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return database.query(
        "SELECT e.id, e.created, e.run_id, e.fingerprint, e.source, e.model, e.exception,"
        " e.message, e.action, e.reason, e.guide"
        f" FROM explanations e {clause} ORDER BY e.created DESC, e.id DESC LIMIT ?",
        [*params, limit],
    )


RUN_FACT_COLUMNS = (
    "run_id", "spec", "prompt", "model", "started", "finished", "verdict", "fingerprint",
    "rerun_of",
)


def run_facts(database: Database, *, since: float | None = None) -> list[tuple[Any, ...]]:
    """Every finished matrix run as a tuple of :data:`RUN_FACT_COLUMNS`, oldest first.

    Tuples, not dicts: stats read every run, and this is the hot path.
    """
    sql = (
        f"SELECT {', '.join(RUN_FACT_COLUMNS)} FROM runs"
        " WHERE verdict IS NOT NULL AND spec IS NOT NULL"
    )
    params: list[Any] = []
    if since is not None:
        sql += " AND started >= ?"
        params.append(since)
    with database._lock:  # the same lock ``query`` takes
        return database.conn.execute(sql + " ORDER BY started, run_id", params).fetchall()


def runs_by_id(database: Database, run_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The history columns of the given runs (any order)."""
    if not run_ids:
        return []
    marks = ", ".join("?" for _ in run_ids)
    return database.query(
        "SELECT run_id, started, finished, spec, prompt, model, attempt, rerun_of, status,"
        f" verdict, reason, fingerprint FROM runs WHERE run_id IN ({marks})",
        list(run_ids),
    )


def fingerprint_related(database: Database, fingerprint: str) -> list[dict[str, Any]]:
    """Runs with ``fingerprint``, their reruns and fan-outs, and later runs of the same
    combinations: everything a fingerprint's timeline is drawn from, oldest first."""
    return database.query(
        "WITH hit AS (SELECT run_id, spec, prompt, model, started FROM runs"
        "   WHERE fingerprint = ?),"
        " combos AS (SELECT spec, prompt, model, MIN(started) AS first FROM hit"
        "   WHERE spec IS NOT NULL GROUP BY spec, prompt, model)"
        " SELECT r.run_id, r.started, r.finished, r.spec, r.prompt, r.model, r.attempt,"
        " r.rerun_of, r.status, r.verdict, r.reason, r.fingerprint FROM runs r"
        " WHERE r.run_id IN (SELECT run_id FROM hit)"
        "   OR r.rerun_of IN (SELECT run_id FROM hit)"
        "   OR EXISTS (SELECT 1 FROM combos c WHERE c.spec = r.spec AND c.prompt = r.prompt"
        "              AND c.model = r.model AND r.started >= c.first)"
        " ORDER BY r.started, r.run_id",
        (fingerprint,),
    )


def latest_explanation_for(database: Database, run_id: str) -> dict[str, Any] | None:
    """The newest explanation stored for ``run_id`` (id, source, created), if any."""
    rows = database.query(
        "SELECT id, source, created FROM explanations WHERE run_id = ?"
        " ORDER BY created DESC, id DESC LIMIT 1",
        (run_id,),
    )
    return rows[0] if rows else None


def latest_call(database: Database, feature: str, sandbox: str | None) -> dict[str, Any] | None:
    """The newest ledger row of ``feature`` for ``sandbox`` (a run id): model, tokens, cost."""
    rows = database.query(
        "SELECT model, input_tokens, output_tokens, cost_usd FROM llm_calls"
        " WHERE feature = ? AND sandbox IS ? ORDER BY started_at DESC, id DESC LIMIT 1",
        (feature, sandbox),
    )
    return rows[0] if rows else None
