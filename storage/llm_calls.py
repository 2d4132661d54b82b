"""The token ledger: one row per LLM call, and the usage totals built from it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

from storage.db import Database, Migration

if TYPE_CHECKING:
    import sqlite_utils

COMPONENT = "llm_calls"

# Grouping keys of ``usage_totals`` -> column.
GROUP_COLUMNS = {"model": "model", "feature": "feature", "user": "user", "job": "job_id"}


def _create_llm_calls(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE llm_calls (
            id INTEGER PRIMARY KEY,
            started_at REAL NOT NULL,
            model TEXT NOT NULL,
            user TEXT,
            sandbox TEXT,
            feature TEXT,
            job_id TEXT,
            combination TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cached_input_tokens INTEGER NOT NULL DEFAULT 0,
            reasoning_tokens INTEGER NOT NULL DEFAULT 0,
            latency_ms REAL NOT NULL,
            first_token_ms REAL,
            streamed INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            error TEXT,
            cost_usd REAL NOT NULL DEFAULT 0
        )
        """
    )
    db.execute("CREATE INDEX llm_calls_started_at ON llm_calls (started_at)")
    db.execute("CREATE INDEX llm_calls_job_id ON llm_calls (job_id)")


MIGRATIONS: list[Migration] = [_create_llm_calls]


@dataclass(slots=True)
class LlmCall:
    """One recorded LLM call (``status`` is ``ok`` or the error's class name)."""

    started_at: float
    model: str
    status: str
    latency_ms: float
    user: str | None = None
    sandbox: str | None = None
    feature: str | None = None
    job_id: str | None = None
    combination: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    first_token_ms: float | None = None
    streamed: bool = False
    error: str | None = None
    cost_usd: float = 0.0
    id: int | None = None


_COLUMNS = [f.name for f in fields(LlmCall) if f.name != "id"]
_INSERT = (
    f"INSERT INTO llm_calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


def insert_call(db: Database, call: LlmCall) -> int:
    """Append ``call`` to the ledger; returns its row id."""
    values = asdict(call)
    params = [values[name] for name in _COLUMNS]
    params[_COLUMNS.index("streamed")] = int(call.streamed)
    with db.write():
        cursor = db.conn.execute(_INSERT, params)
        return int(cursor.lastrowid or 0)


def list_calls(
    db: Database, *, since: float | None = None, limit: int | None = None
) -> list[LlmCall]:
    """Recorded calls, oldest first (``since``: epoch seconds)."""
    sql = "SELECT * FROM llm_calls"
    params: list[object] = []
    if since is not None:
        sql += " WHERE started_at >= ?"
        params.append(since)
    sql += " ORDER BY started_at, id"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = db.query(sql, params)
    for row in rows:
        row["streamed"] = bool(row["streamed"])
    return [LlmCall(**row) for row in rows]


@dataclass(slots=True)
class UsageTotals:
    """Totals of one group (``key`` is None for the grand total or an empty field)."""

    key: str | None
    calls: int
    errors: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: float
    p50_latency_ms: float | None
    p95_latency_ms: float | None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def usage_totals(
    db: Database, *, by: str | None = None, since: float | None = None
) -> list[UsageTotals]:
    """Totals per group (``by``: model, feature, user or job), largest cost first.

    Without ``by`` one row holds the grand total.  Latency percentiles cover every call
    of the group, failed ones included.
    """
    if by is not None and by not in GROUP_COLUMNS:
        raise ValueError(f"cannot group by {by!r}; choose one of {', '.join(GROUP_COLUMNS)}")
    column = GROUP_COLUMNS[by] if by else None
    where, params = ("WHERE started_at >= ?", [since]) if since is not None else ("", [])
    key_sql = f"NULLIF({column}, '')" if column else "NULL"
    rows = db.query(
        f"SELECT {key_sql} AS key, latency_ms, status, input_tokens, cached_input_tokens,"
        f" output_tokens, reasoning_tokens, cost_usd FROM llm_calls {where}",
        params,
    )
    groups: dict[str | None, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["key"], []).append(row)
    totals = []
    for key, members in groups.items():
        latencies = [float(m["latency_ms"]) for m in members]
        totals.append(
            UsageTotals(
                key=key,
                calls=len(members),
                errors=sum(1 for m in members if m["status"] != "ok"),
                input_tokens=sum(int(m["input_tokens"]) for m in members),
                cached_input_tokens=sum(int(m["cached_input_tokens"]) for m in members),
                output_tokens=sum(int(m["output_tokens"]) for m in members),
                reasoning_tokens=sum(int(m["reasoning_tokens"]) for m in members),
                cost_usd=sum(float(m["cost_usd"]) for m in members),
                p50_latency_ms=percentile(latencies, 50),
                p95_latency_ms=percentile(latencies, 95),
            )
        )
    totals.sort(key=lambda t: (-t.cost_usd, -t.calls, t.key or ""))
    return totals
