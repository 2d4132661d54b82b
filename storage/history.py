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
from typing import TYPE_CHECKING, Any

from storage.db import Database, Migration

if TYPE_CHECKING:
    import sqlite_utils

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
    # Covering indexes: stats look up "the next pass of this combination" and count passes
    # per model x prompt without reading the table.
    db.execute("CREATE INDEX runs_combination ON runs (spec, prompt, model, verdict, started)")
    db.execute("CREATE INDEX runs_model_prompt ON runs (model, prompt, verdict, started)")
    db.execute("CREATE INDEX runs_verdict_started ON runs (verdict, started)")


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


_RUN_COLUMNS = (
    "r.run_id, r.started, r.spec, r.prompt, r.model, r.attempt, r.rerun_of, r.status,"
    " r.verdict, r.reason, r.fingerprint,"
    " (SELECT f.exception FROM failures f WHERE f.run_id = r.run_id) AS exception"
)


def history_runs(
    database: Database, query: HistoryQuery, *, before: tuple[float, Any] | None, limit: int
) -> list[dict[str, Any]]:
    """One page of runs, newest first, after the cursor ``before``.

    Without text: ordered by ``started`` (cursor: started, run_id).  With text: the index
    is walked newest-first by its rowid (recording order) and stops at ``limit`` matches,
    so a common word costs no more than a rare one (cursor: position, index rowid).
    """
    where, params = _run_where(query)
    words = fts_query(query.text) if query.text else ""
    if words:
        where.insert(0, "runs_fts MATCH ?")
        params.insert(0, words)
        if before is not None:
            where.append("f.rowid < ?")
            params.append(before[1])
        return database.query(
            f"SELECT {_RUN_COLUMNS}, f.rowid AS position FROM runs_fts f"
            " JOIN runs r ON r.run_id = f.run_id"
            f" WHERE {' AND '.join(where)} ORDER BY f.rowid DESC LIMIT ?",
            [*params, limit],
        )
    if before is not None:
        where.append("(r.started < ? OR (r.started = ? AND r.run_id < ?))")
        params += [before[0], before[0], before[1]]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    # Newest-first along ``started`` stops at ``limit`` matches; a fingerprint's few runs
    # are found faster by their own index.
    index = "" if query.fingerprint else "INDEXED BY runs_started"
    return database.query(
        f"SELECT {_RUN_COLUMNS}, r.run_id AS position FROM runs r {index} {clause}"
        " ORDER BY r.started DESC, r.run_id DESC LIMIT ?",
        [*params, limit],
    )


def history_explanations(
    database: Database, query: HistoryQuery, *, before: tuple[float, int] | None, limit: int
) -> list[dict[str, Any]]:
    """One page of explanations, newest first (by id: the order they were stored in),
    older than the cursor ``before`` (created, id)."""
    where: list[str] = []
    params: list[Any] = []
    words = fts_query(query.text) if query.text else ""
    if words:
        where.append("explanations_fts MATCH ?")
        params.append(words)
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
        # Per candidate, a lookup by primary key: the walk stops at ``limit`` matches.
        where.append(
            f"EXISTS (SELECT 1 FROM runs r WHERE r.run_id = e.run_id AND {' AND '.join(run_where)})"
        )
        params += run_params
    # With text, the index is walked newest-first (its rowid is the explanation's id).
    order = "f.rowid" if words else "e.id"
    if before is not None:
        where.append(f"{order} < ?")
        params.append(before[1])
    source = (
        "explanations_fts f JOIN explanations e ON e.id = f.rowid" if words else "explanations e"
    )
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return database.query(
        "SELECT e.id, e.created, e.run_id, e.fingerprint, e.source, e.model, e.exception,"
        f" e.message, e.action, e.reason, e.guide FROM {source} {clause}"
        f" ORDER BY {order} DESC LIMIT ?",
        [*params, limit],
    )


# A matrix run with a verdict (only matrix runs have a model).  Reads name their index:
# without ANALYZE statistics SQLite may walk one that needs a table lookup per run.
_FINISHED = "verdict IS NOT NULL AND model IS NOT NULL"
_SAME_COMBO = "{a}.spec = {b}.spec AND {a}.prompt = {b}.prompt AND {a}.model = {b}.model"


def _window(since: float | None, alias: str = "") -> tuple[str, list[Any]]:
    prefix = f"{alias}." if alias else ""
    return (f" AND {prefix}started >= ?", [since]) if since is not None else ("", [])


def pass_rate_rows(database: Database, *, since: float | None) -> list[dict[str, Any]]:
    """Per model × prompt version: passed and total finished matrix runs."""
    window, params = _window(since)
    return database.query(
        "SELECT model, prompt, SUM(verdict = 'pass') AS passed, COUNT(*) AS total"
        " FROM runs INDEXED BY runs_model_prompt"
        f" WHERE {_FINISHED}{window} GROUP BY model, prompt ORDER BY model, prompt",
        params,
    )


def pass_rate_buckets(
    database: Database, buckets: int, *, since: float | None
) -> list[dict[str, Any]]:
    """Per model and per equal span of time (``bucket`` 0..buckets-1): passed and total."""
    window, params = _window(since)
    return database.query(
        f"WITH span AS (SELECT MIN(started) AS first, MAX(MAX(started) - MIN(started), 1e-9)"
        f" AS width FROM runs INDEXED BY runs_model_prompt WHERE {_FINISHED}{window})"
        f" SELECT model, MIN(CAST((started - span.first) / span.width * ? AS INTEGER), ?)"
        " AS bucket, SUM(verdict = 'pass') AS passed, COUNT(*) AS total"
        " FROM runs INDEXED BY runs_model_prompt, span"
        f" WHERE {_FINISHED}{window} GROUP BY model, bucket",
        [*params, buckets, buckets - 1, *params],
    )


def failing_combinations(database: Database, *, since: float | None) -> list[dict[str, Any]]:
    """Each combination that failed: when its first failure ended (``fail_end``), when its
    first pass after it ended (``pass_end``, or None), and whether a rerun or fan-out of one
    of its failing runs passed (``rescued``)."""
    window, params = _window(since)
    window_f, _ = _window(since, "f")
    window_p, _ = _window(since, "p")
    window_c, _ = _window(since, "c")
    return database.query(
        "WITH ff AS (SELECT spec, prompt, model, MIN(started) AS first"
        "  FROM runs INDEXED BY runs_combination"
        f"  WHERE {_FINISHED} AND verdict != 'pass'{window} GROUP BY spec, prompt, model)"
        " SELECT ff.spec, ff.prompt, ff.model,"
        " (SELECT COALESCE(f.finished, f.started) FROM runs f INDEXED BY runs_combination WHERE "
        + _SAME_COMBO.format(a="f", b="ff")
        + " AND f.started = ff.first AND f.verdict != 'pass' LIMIT 1) AS fail_end,"
        " (SELECT COALESCE(p.finished, p.started) FROM runs p INDEXED BY runs_combination WHERE "
        + _SAME_COMBO.format(a="p", b="ff")
        + f" AND p.started > ff.first AND p.verdict = 'pass'{window_p}"
        "  ORDER BY p.started LIMIT 1) AS pass_end,"
        " EXISTS (SELECT 1 FROM runs f INDEXED BY runs_combination"
        "  JOIN runs c INDEXED BY runs_rerun_of ON c.rerun_of = f.run_id WHERE "
        + _SAME_COMBO.format(a="f", b="ff")
        + f" AND f.verdict != 'pass' AND c.verdict = 'pass'{window_f}{window_c}) AS rescued"
        " FROM ff",
        [*params, *params, *params, *params],
    )


def fingerprint_rows(database: Database, *, since: float | None) -> list[dict[str, Any]]:
    """Each failing fingerprint: runs, first and last seen, an example combination, when it
    was first fixed (``fixed_at``: a later pass of a combination that had it, or a passing
    rerun or fan-out of a run that had it) and whether it was seen after that."""
    params = [since] if since is not None else []
    window_h, _ = _window(since, "h")
    window_p, _ = _window(since, "p")
    window_c, _ = _window(since, "c")
    # The earliest fix through a combination is the next pass after the fingerprint's first
    # run there: one index lookup per (fingerprint, combination), not per run.  Passing
    # reruns are few: they are walked from their own index to the run they rerun.
    rows = database.query(
        "SELECT fingerprint, SUM(n) AS count, MIN(first) AS first_seen, MAX(last) AS last_seen,"
        " MIN(next_pass) AS by_attempt, spec || '/' || prompt || '/' || model AS example"
        " FROM (SELECT g.*, (SELECT p.started FROM runs p INDEXED BY runs_combination WHERE "
        + _SAME_COMBO.format(a="p", b="g")
        + f"   AND p.started > g.first AND p.verdict = 'pass'{window_p}"
        "   ORDER BY p.started LIMIT 1) AS next_pass"
        "  FROM (SELECT h.fingerprint, h.spec, h.prompt, h.model, COUNT(*) AS n,"
        "   MIN(h.started) AS first, MAX(h.started) AS last"
        f"   FROM runs h NOT INDEXED WHERE h.{_FINISHED.replace(' AND ', ' AND h.')}"
        f"   AND h.verdict != 'pass' AND h.fingerprint IS NOT NULL{window_h}"
        "   GROUP BY h.fingerprint, h.spec, h.prompt, h.model) g)"
        " GROUP BY fingerprint",
        [*params, *params],
    )
    rescues = database.query(
        "SELECT h.fingerprint, MIN(c.started) AS at FROM runs c INDEXED BY runs_rerun_of"
        " JOIN runs h ON h.run_id = c.rerun_of"
        " WHERE c.rerun_of IS NOT NULL AND c.verdict = 'pass' AND h.verdict != 'pass'"
        f" AND h.fingerprint IS NOT NULL AND h.model IS NOT NULL{window_c}{window_h}"
        " GROUP BY h.fingerprint",
        [*params, *params],
    )
    by_rerun = {r["fingerprint"]: r["at"] for r in rescues}
    for row in rows:
        row["by_rerun"] = by_rerun.get(row["fingerprint"])
    return rows


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
