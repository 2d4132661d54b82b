"""Storage for the console's history: a full-text index of runs and the reads that page,
search and summarise past runs and explanations.

``runs_fts`` (FTS5) indexes each run's combination, verdict, reason, and its failure's
exception and message.  Triggers keep it in step with ``runs`` and ``failures``; it is
refreshed only when those columns change (a log batch, which updates ``runs.log_lines``,
does not touch it).  Its rowid is the run's rowid; results are joined on ``run_id``.
"""

from __future__ import annotations

import json
import math
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


# A matrix run with a verdict (only matrix runs have a model).  Reads name their index:
# without ANALYZE statistics SQLite may walk one that needs a table lookup per run.
_COUNTED = "{r}.verdict IS NOT NULL AND {r}.model IS NOT NULL"
_FINISHED = _COUNTED.format(r="runs")
_SAME_COMBO = "{a}.spec = {b}.spec AND {a}.prompt = {b}.prompt AND {a}.model = {b}.model"


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


# --- the per-fingerprint summary the stats screen reads (v2) ----------------------------
# ``fingerprint_stats`` holds, per failing fingerprint of finished matrix runs: how many
# runs had it, first and last seen, an example combination (its first run's) and
# ``by_attempt``: the earliest pass of a combination after one of its runs there.  That is
# MIN over the fingerprint's runs of "the next pass of the run's combination", so a new
# failing run adds one index lookup and a new pass lowers it for the fingerprints of the
# failing runs since the combination's previous pass.  Anything rarer (a verdict that
# changes, a deleted run) recomputes the fingerprints it touches from ``runs``.
_FAILING = _COUNTED + " AND {r}.verdict != 'pass' AND {r}.fingerprint IS NOT NULL"
_PASSING = _COUNTED + " AND {r}.verdict = 'pass'"


def _next_pass(run: str, *, before: bool = False) -> str:
    """The start of the first pass of ``run``'s combination after ``run`` started (with
    ``before``: of the last pass before it)."""
    pick, compare, alias = ("MAX", "<", "q") if before else ("MIN", ">", "p")
    return (
        f"(SELECT {pick}({alias}.started) FROM runs {alias} INDEXED BY runs_combination WHERE "
        + _SAME_COMBO.format(a=alias, b=run)
        + f" AND {alias}.verdict = 'pass' AND {alias}.started {compare} {run}.started)"
    )


def _add_failing(run: str) -> str:
    return (
        "INSERT INTO fingerprint_stats (fingerprint, count, first_seen, last_seen, by_attempt,"
        f" example) VALUES ({run}.fingerprint, 1, {run}.started, {run}.started,"
        f" {_next_pass(run)}, {run}.spec || '/' || {run}.prompt || '/' || {run}.model)"
        " ON CONFLICT (fingerprint) DO UPDATE SET count = count + 1,"
        " first_seen = MIN(first_seen, excluded.first_seen),"
        " last_seen = MAX(last_seen, excluded.last_seen),"
        " by_attempt = MIN(COALESCE(by_attempt, excluded.by_attempt),"
        " COALESCE(excluded.by_attempt, by_attempt)),"
        " example = CASE WHEN excluded.first_seen < first_seen THEN excluded.example"
        " ELSE example END;"
    )


def _add_passing(run: str) -> str:
    """Lower ``by_attempt`` to this pass for the failing runs it is the next pass of: those
    of its combination since the combination's previous pass.  Idempotent."""
    return (
        f"UPDATE fingerprint_stats SET by_attempt = MIN(COALESCE(by_attempt, {run}.started),"
        f" {run}.started) WHERE {run}.verdict = 'pass' AND {run}.model IS NOT NULL"
        " AND fingerprint IN (SELECT h.fingerprint FROM runs h INDEXED BY runs_combination"
        " WHERE "
        + _SAME_COMBO.format(a="h", b=run)
        + f" AND {_FAILING.format(r='h')} AND h.started < {run}.started"
        f" AND h.started >= COALESCE({_next_pass(run, before=True)}, -1e308));"
    )


def _recompute(where: str) -> str:
    """Rebuild the summary rows of the fingerprints ``where`` selects (``h`` is a run)."""
    return (
        "INSERT OR REPLACE INTO fingerprint_stats (fingerprint, count, first_seen, last_seen,"
        " by_attempt, example) SELECT h.fingerprint, COUNT(*), MIN(h.started), MAX(h.started),"
        f" MIN({_next_pass('h')}), (SELECT e.spec || '/' || e.prompt || '/' || e.model"
        f" FROM runs e WHERE e.fingerprint = h.fingerprint AND {_FAILING.format(r='e')}"
        " ORDER BY e.started LIMIT 1)"
        f" FROM runs h WHERE {_FAILING.format(r='h')} AND {where} GROUP BY h.fingerprint;"
    )


def _forget(run: str) -> str:
    """Take ``run``'s part out: its fingerprint and those whose first fix it was."""
    return (
        f"DELETE FROM fingerprint_stats WHERE fingerprint = {run}.fingerprint;"
        + _recompute(f"h.fingerprint = {run}.fingerprint")
        + _recompute(
            "h.fingerprint IN (SELECT fingerprint FROM fingerprint_stats"
            f" WHERE by_attempt = {run}.started)"
        )
    )


_WATCHED = ("verdict", "fingerprint", "spec", "prompt", "model", "started")


def _v2(db: sqlite_utils.Database) -> None:
    db.execute(
        "CREATE TABLE fingerprint_stats (fingerprint TEXT PRIMARY KEY, count INTEGER NOT NULL,"
        " first_seen REAL NOT NULL, last_seen REAL NOT NULL, by_attempt REAL, example TEXT)"
    )
    failing, passing = _FAILING.format(r="new"), _PASSING.format(r="new")
    counted_old = _COUNTED.format(r="old")
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in _WATCHED)
    watched = ", ".join(_WATCHED)
    triggers = {
        "failing_run": ("INSERT", failing, _add_failing("new")),
        "passing_run": ("INSERT", passing, _add_passing("new")),
        "failing_verdict": (
            f"UPDATE OF {watched}", f"NOT ({counted_old}) AND {failing}", _add_failing("new")
        ),
        "passing_verdict": (
            f"UPDATE OF {watched}", f"NOT ({counted_old}) AND {passing}", _add_passing("new")
        ),
        "changed_run": (
            f"UPDATE OF {watched}",
            f"{counted_old} AND ({changed})",
            _forget("old") + _recompute("h.fingerprint = new.fingerprint") + _add_passing("new"),
        ),
        "deleted_run": ("DELETE", counted_old, _forget("old")),
    }
    for name, (event, when, body) in triggers.items():
        db.execute(
            f"CREATE TRIGGER fingerprint_stats_{name} AFTER {event} ON runs"
            f" WHEN {when} BEGIN {body} END"
        )
    db.execute(_recompute("1").rstrip(";"))  # runs recorded before the summary existed


MIGRATIONS: list[Migration] = [_v1, _v2]


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




def _window(since: float | None, alias: str = "") -> tuple[str, list[Any]]:
    prefix = f"{alias}." if alias else ""
    return (f" AND {prefix}started >= ?", [since]) if since is not None else ("", [])


def outcome_groups(database: Database, *, since: float | None) -> list[dict[str, Any]]:
    """Per model × prompt version × verdict: finished matrix runs (``total``) and the first
    and last start among them, in one walk of the covering index."""
    window, params = _window(since)
    return database.query(
        "SELECT model, prompt, verdict, COUNT(*) AS total, MIN(started) AS first,"
        " MAX(started) AS last FROM runs INDEXED BY runs_model_prompt"
        f" WHERE {_FINISHED}{window} GROUP BY model, prompt, verdict",
        params,
    )


def outcome_buckets(
    database: Database, groups: Sequence[dict[str, Any]], buckets: int
) -> list[dict[str, Any]]:
    """How many runs of each group (an :func:`outcome_groups` row) fall in each of
    ``buckets`` equal spans between the groups' first and last start (``bucket`` 0..n-1).

    One range count per group and span: each is a seek into the covering index, so no
    run is read twice and nothing is sorted (grouping by a computed bucket sorts them all).
    """
    if not groups:
        return []
    first = min(float(g["first"]) for g in groups)
    last = max(float(g["last"]) for g in groups)
    width = max(last - first, 1e-9) / buckets
    keys = json.dumps([[g["model"], g["prompt"], g["verdict"]] for g in groups])
    return database.query(
        "WITH RECURSIVE span(b) AS (SELECT 0 UNION ALL SELECT b + 1 FROM span WHERE b < ? - 1),"
        " g AS (SELECT value ->> 0 AS model, value ->> 1 AS prompt, value ->> 2 AS verdict"
        "  FROM json_each(?))"
        " SELECT g.model, g.prompt, g.verdict, span.b AS bucket,"
        " (SELECT COUNT(*) FROM runs r INDEXED BY runs_model_prompt"
        "  WHERE r.model = g.model AND r.prompt = g.prompt AND r.verdict = g.verdict"
        "  AND r.started >= ? + span.b * ?"
        "  AND r.started < (CASE WHEN span.b = ? - 1 THEN ? ELSE ? + (span.b + 1) * ? END))"
        " AS total FROM g, span",
        [buckets, keys, first, width, buckets, math.inf, first, width],
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
    was first fixed through a later attempt (``by_attempt``: a later pass of a combination
    that had it) and through a rerun or fan-out (``by_rerun``: a passing rerun of a run that
    had it)."""
    if since is None:  # all of history: the summary the triggers keep
        rows = database.query(
            "SELECT fingerprint, count, first_seen, last_seen, by_attempt, example"
            " FROM fingerprint_stats"
        )
    else:
        rows = _fingerprint_window(database, since)
    # Passing reruns are few: walked from their own index to the run they rerun.
    params = [since] if since is not None else []
    window_h, _ = _window(since, "h")
    window_c, _ = _window(since, "c")
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


def _fingerprint_window(database: Database, since: float) -> list[dict[str, Any]]:
    """:func:`fingerprint_rows` over the runs started since ``since``: the earliest fix
    through a combination is the next pass after the fingerprint's first run there, one
    index lookup per (fingerprint, combination), not per run."""
    return database.query(
        "SELECT fingerprint, SUM(n) AS count, MIN(first) AS first_seen, MAX(last) AS last_seen,"
        " MIN(next_pass) AS by_attempt, spec || '/' || prompt || '/' || model AS example"
        " FROM (SELECT g.*, (SELECT p.started FROM runs p INDEXED BY runs_combination WHERE "
        + _SAME_COMBO.format(a="p", b="g")
        + "   AND p.started > g.first AND p.verdict = 'pass' AND p.started >= ?"
        "   ORDER BY p.started LIMIT 1) AS next_pass"
        "  FROM (SELECT h.fingerprint, h.spec, h.prompt, h.model, COUNT(*) AS n,"
        "   MIN(h.started) AS first, MAX(h.started) AS last"
        f"   FROM runs h NOT INDEXED WHERE {_FAILING.format(r='h')} AND h.started >= ?"
        "   GROUP BY h.fingerprint, h.spec, h.prompt, h.model) g)"
        " GROUP BY fingerprint",
        [since, since],
    )


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
