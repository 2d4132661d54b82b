"""Storage for runs: the run itself, its stages, log lines, verdict and parsed failure.

Writes are idempotent (events may be delivered twice when they travel on Kafka) and do
not depend on arrival order: every write first makes sure the run's row exists.  Reads
return :class:`RunRecord` objects for the CLI, the console's history and ``rerun``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from console.model import (
    CheckResult,
    GenerationFinished,
    LogBatch,
    LogLine,
    PortFound,
    RunAborted,
    RunStarted,
    StageChanged,
    Verdict,
)
from storage.db import Database, Migration

if TYPE_CHECKING:
    import sqlite_utils

COMPONENT = "runs"


def _v1(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            project TEXT,
            command TEXT,
            job_id TEXT,
            spec TEXT,
            prompt TEXT,
            model TEXT,
            attempt INTEGER,
            rerun_of TEXT,
            started REAL,
            finished REAL,
            status TEXT NOT NULL DEFAULT 'running',
            verdict TEXT,
            reason TEXT,
            exit_code INTEGER,
            exit_signal TEXT,
            exit_class TEXT,
            port INTEGER,
            http_root INTEGER,
            http_health INTEGER,
            fingerprint TEXT,
            log_lines INTEGER NOT NULL DEFAULT 0,
            log_truncated INTEGER NOT NULL DEFAULT 0,
            result TEXT
        )"""
    )
    db.execute("CREATE INDEX runs_started ON runs (started)")
    db.execute("CREATE INDEX runs_job ON runs (job_id)")
    db.execute("CREATE INDEX runs_fingerprint ON runs (fingerprint)")
    db.execute(
        """CREATE TABLE stages (
            run_id TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            ok INTEGER,
            started REAL,
            ms REAL,
            detail TEXT NOT NULL DEFAULT '',
            position INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, name)
        )"""
    )
    db.execute(
        """CREATE TABLE log_lines (
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            ts REAL NOT NULL,
            stream TEXT NOT NULL,
            phase TEXT NOT NULL,
            text TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID"""
    )
    db.execute(
        """CREATE TABLE verdicts (
            run_id TEXT PRIMARY KEY,
            verdict TEXT NOT NULL,
            reason TEXT NOT NULL,
            fingerprint TEXT,
            decided REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE failures (
            run_id TEXT PRIMARY KEY,
            exception TEXT NOT NULL,
            message TEXT NOT NULL,
            language TEXT NOT NULL,
            frames TEXT NOT NULL,
            causes TEXT NOT NULL,
            fingerprint TEXT
        )"""
    )
    db.execute("CREATE INDEX failures_fingerprint ON failures (fingerprint)")


def _v2(db: sqlite_utils.Database) -> None:
    # One row per generation (per run): the generator's outcome and its raw answers.
    db.execute(
        """CREATE TABLE generations (
            run_id TEXT PRIMARY KEY,
            job_id TEXT,
            ok INTEGER NOT NULL,
            reason TEXT NOT NULL DEFAULT '',
            generator TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 0,
            ms REAL,
            files TEXT NOT NULL DEFAULT '[]',
            responses TEXT NOT NULL DEFAULT '[]',
            notes TEXT NOT NULL DEFAULT '[]',
            ts REAL
        )"""
    )
    db.execute("CREATE INDEX generations_job ON generations (job_id)")
    db.execute("CREATE INDEX runs_rerun_of ON runs (rerun_of)")


def _v3(db: sqlite_utils.Database) -> None:
    # Who runs it (so runs a killed harness left can be found) and how it was isolated.
    db.execute("ALTER TABLE runs ADD COLUMN owner TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN isolation TEXT")
    db.execute("CREATE INDEX runs_status ON runs (status)")


MIGRATIONS: list[Migration] = [_v1, _v2, _v3]


class RunRecord(BaseModel):
    """One stored run: its columns, plus the full result once a verdict was reached."""

    run_id: str
    project: str | None = None
    command: str | None = None
    job_id: str | None = None
    spec: str | None = None
    prompt: str | None = None
    model: str | None = None
    attempt: int | None = None
    rerun_of: str | None = None
    started: float | None = None
    finished: float | None = None
    status: str = "running"
    verdict: Verdict | None = None
    reason: str | None = None
    exit_code: int | None = None
    exit_signal: str | None = None
    exit_class: str | None = None
    port: int | None = None
    http_root: int | None = None
    http_health: int | None = None
    fingerprint: str | None = None
    log_lines: int = 0
    log_truncated: bool = False
    isolation: str | None = None
    result: CheckResult | None = Field(default=None, repr=False)

    @property
    def duration(self) -> float | None:
        """Seconds from start to verdict (None while running)."""
        if self.started is None or self.finished is None:
            return None
        return self.finished - self.started


def _ensure_run(db: sqlite_utils.Database, run_id: str, started: float | None = None) -> None:
    db.execute(
        "INSERT OR IGNORE INTO runs (run_id, started) VALUES (?, ?)",
        (run_id, started if started is not None else time.time()),
    )


# --- writes -----------------------------------------------------------------------------
def record_run_started(database: Database, event: RunStarted) -> None:
    """Store a run's start and what it is a run of (job, combination, attempt)."""
    combo = event.combination
    with database.write() as db:
        _ensure_run(db, event.run_id, event.ts)
        db.execute(
            "UPDATE runs SET project = ?, command = ?, job_id = ?, spec = ?, prompt = ?,"
            " model = ?, attempt = ?, rerun_of = ?, started = ?, owner = ?, isolation = ?"
            " WHERE run_id = ?",
            (
                event.project,
                event.command,
                event.job_id,
                combo.spec if combo else None,
                combo.prompt if combo else None,
                combo.model if combo else None,
                event.attempt,
                event.rerun_of,
                event.ts,
                event.owner or None,
                event.isolation or None,
                event.run_id,
            ),
        )


def record_stage(database: Database, event: StageChanged) -> None:
    """Store a stage's progress (``running`` first, then ``ok``/``failed``/``skipped``)."""
    ok = {"ok": 1, "failed": 0}.get(event.status)
    with database.write() as db:
        _ensure_run(db, event.run_id)
        db.execute(
            "INSERT INTO stages (run_id, name, status, ok, started, ms, detail, position)"
            " VALUES (?, ?, ?, ?, ?, ?, ?,"
            "  (SELECT COUNT(*) FROM stages WHERE run_id = ?))"
            " ON CONFLICT(run_id, name) DO UPDATE SET status = excluded.status,"
            " ok = excluded.ok, ms = excluded.ms,"
            " detail = CASE WHEN excluded.detail != '' THEN excluded.detail ELSE detail END",
            (
                event.run_id,
                event.name,
                event.status,
                ok,
                event.ts,
                event.ms,
                event.detail,
                event.run_id,
            ),
        )


def record_log_batch(database: Database, event: LogBatch) -> None:
    """Store a batch of log lines (a line already stored is ignored)."""
    rows = [
        (event.run_id, line.seq, line.ts, line.stream, line.phase, line.text)
        for line in event.lines
    ]
    with database.write() as db:
        _ensure_run(db, event.run_id)
        cursor = db.conn.executemany(
            "INSERT OR IGNORE INTO log_lines (run_id, seq, ts, stream, phase, text)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        added = max(cursor.rowcount, 0)
        db.execute(
            "UPDATE runs SET log_lines = log_lines + ?,"
            " log_truncated = MAX(log_truncated, ?) WHERE run_id = ?",
            (added, int(event.truncated), event.run_id),
        )


def record_port(database: Database, event: PortFound) -> None:
    """Store the port the app really bound."""
    with database.write() as db:
        _ensure_run(db, event.run_id)
        db.execute("UPDATE runs SET port = ? WHERE run_id = ?", (event.port, event.run_id))


def record_aborted(database: Database, event: RunAborted) -> None:
    """Mark a run that ended without a verdict; a verdict already recorded is kept."""
    with database.write() as db:
        _ensure_run(db, event.run_id, event.ts)
        db.execute(
            "UPDATE runs SET status = 'aborted', finished = ?, reason = ?"
            " WHERE run_id = ? AND verdict IS NULL",
            (event.ts, event.reason, event.run_id),
        )


def record_result(database: Database, result: CheckResult) -> None:
    """Store a verdict with its evidence; recording the same verdict twice keeps one."""
    failure = result.failure
    with database.write() as db:
        _ensure_run(db, result.run_id, result.started)
        db.execute(
            "INSERT OR IGNORE INTO verdicts (run_id, verdict, reason, fingerprint, decided)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                result.run_id,
                result.verdict.value,
                result.reason,
                result.fingerprint,
                result.finished,
            ),
        )
        db.execute(
            "UPDATE runs SET status = 'done', finished = ?, verdict = ?, reason = ?,"
            " exit_code = ?, exit_signal = ?, exit_class = ?, port = ?, http_root = ?,"
            " http_health = ?, fingerprint = ?, result = ?,"
            " command = COALESCE(command, ?), job_id = COALESCE(job_id, ?)"
            " WHERE run_id = ?",
            (
                result.finished,
                result.verdict.value,
                result.reason,
                result.exit.code,
                result.exit.signal,
                result.exit.cls.value if result.exit.cls else None,
                result.port,
                result.http_root,
                result.http_health,
                result.fingerprint,
                result.model_dump_json(),
                result.command,
                result.job_id,
                result.run_id,
            ),
        )
        for position, stage in enumerate(result.stages):
            db.execute(
                "INSERT INTO stages (run_id, name, status, ok, started, ms, detail, position)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(run_id, name) DO UPDATE SET status = excluded.status,"
                " ok = excluded.ok, started = excluded.started, ms = excluded.ms,"
                " detail = excluded.detail, position = excluded.position",
                (
                    result.run_id,
                    stage.name,
                    "ok" if stage.ok else "failed",
                    int(stage.ok),
                    stage.started,
                    stage.ms,
                    stage.detail,
                    position,
                ),
            )
        if failure is not None:
            db.execute(
                "INSERT OR REPLACE INTO failures"
                " (run_id, exception, message, language, frames, causes, fingerprint)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    result.run_id,
                    failure.exception,
                    failure.message,
                    failure.language,
                    json.dumps([frame.model_dump(mode="json") for frame in failure.frames]),
                    json.dumps(failure.causes),
                    result.fingerprint,
                ),
            )


def record_generation(database: Database, event: GenerationFinished) -> None:
    """Store a run's generation; the same event twice keeps one row (the first)."""
    with database.write() as db:
        db.execute(
            "INSERT OR IGNORE INTO generations (run_id, job_id, ok, reason, generator,"
            " attempts, ms, files, responses, notes, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.run_id,
                event.job_id,
                int(event.ok),
                event.reason,
                event.generator,
                event.attempts,
                event.ms,
                json.dumps(event.files, ensure_ascii=False),
                json.dumps(event.responses, ensure_ascii=False),
                json.dumps(event.notes, ensure_ascii=False),
                event.ts,
            ),
        )


# --- reads ------------------------------------------------------------------------------
def _record(row: dict[str, Any]) -> RunRecord:
    data = dict(row)
    raw = data.pop("result", None)
    data["log_truncated"] = bool(data.get("log_truncated"))
    record = RunRecord.model_validate(data)
    if raw:
        record.result = CheckResult.model_validate_json(raw)
    return record


def get_run(database: Database, run_id: str) -> RunRecord | None:
    """One run by id (a unique prefix of the id works too), or None."""
    rows = database.query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
    if not rows and run_id:
        rows = database.query(
            "SELECT * FROM runs WHERE run_id LIKE ? ESCAPE '\\' LIMIT 2",
            (run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",),
        )
        if len(rows) != 1:
            return None
    return _record(rows[0]) if rows else None


def recent_runs(
    database: Database, limit: int = 20, *, offset: int = 0, verdict: Verdict | None = None
) -> list[RunRecord]:
    """The most recent runs, newest first (optionally of one verdict)."""
    where, params = "", []
    if verdict is not None:
        where, params = "WHERE verdict = ?", [verdict.value]
    rows = database.query(
        f"SELECT * FROM runs {where} ORDER BY started DESC, run_id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [_record(row) for row in rows]


def runs_for_job(database: Database, job_id: str) -> list[RunRecord]:
    """Every run of a job, oldest first."""
    rows = database.query("SELECT * FROM runs WHERE job_id = ? ORDER BY started, run_id", (job_id,))
    return [_record(row) for row in rows]


def runs_with_fingerprint(database: Database, fingerprint: str, limit: int = 50) -> list[RunRecord]:
    """Runs whose failure had this fingerprint, newest first."""
    rows = database.query(
        "SELECT * FROM runs WHERE fingerprint = ? ORDER BY started DESC LIMIT ?",
        (fingerprint, limit),
    )
    return [_record(row) for row in rows]


def run_log(database: Database, run_id: str, offset: int = 0, limit: int = 1000) -> list[LogLine]:
    """Stored log lines of a run in order, ``limit`` of them from position ``offset``."""
    rows = database.query(
        "SELECT seq, ts, stream, phase, text FROM log_lines WHERE run_id = ?"
        " ORDER BY seq LIMIT ? OFFSET ?",
        (run_id, limit, offset),
    )
    return [LogLine.model_validate(row) for row in rows]


def run_stages(database: Database, run_id: str) -> list[dict[str, Any]]:
    """Stages of a run in the order they started (including ones still running)."""
    return database.query(
        "SELECT name, status, ok, started, ms, detail FROM stages WHERE run_id = ?"
        " ORDER BY position, started",
        (run_id,),
    )


def get_generation(database: Database, run_id: str) -> GenerationFinished | None:
    """The recorded generation of a run (None for a ``verdict check`` run)."""
    rows = database.query("SELECT * FROM generations WHERE run_id = ?", (run_id,))
    if not rows:
        return None
    row = rows[0]
    for name in ("files", "responses", "notes"):
        row[name] = json.loads(row[name] or "[]")
    row["ok"] = bool(row["ok"])
    row["ms"] = row["ms"] or 0.0
    return GenerationFinished.model_validate(row)


def reruns_of(database: Database, run_id: str) -> list[RunRecord]:
    """Runs that rerun ``run_id`` (a rerun or a fan-out of it), oldest first."""
    rows = database.query(
        "SELECT * FROM runs WHERE rerun_of = ? ORDER BY started, run_id", (run_id,)
    )
    return [_record(row) for row in rows]


def count_with_fingerprint(database: Database, fingerprint: str) -> int:
    """How many runs ended with this fingerprint."""
    rows = database.query("SELECT COUNT(*) AS n FROM runs WHERE fingerprint = ?", (fingerprint,))
    return int(rows[0]["n"])


def run_status(database: Database, run_id: str) -> str | None:
    """The ``status`` column of a run (running/done/aborted), or None when unknown."""
    rows = database.query("SELECT status FROM runs WHERE run_id = ?", (run_id,))
    return rows[0]["status"] if rows else None


def latest_attempts(database: Database) -> list[dict[str, Any]]:
    """One row per combination: its newest job with that job's run and current stage.

    Columns: combination, spec, prompt, model, attempt, job_id, state (of the job),
    run_id, job_verdict, fingerprint, updated, run_status, verdict, reason, port, started,
    finished, stage (the stage running now, if any).
    """
    return database.query(
        "SELECT j.combination, j.spec, j.prompt, j.model, j.attempt, j.job_id, j.state,"
        " j.run_id, j.verdict AS job_verdict, j.fingerprint, j.updated, j.lease_owner,"
        " r.status AS run_status, r.verdict, r.reason, r.port, r.started, r.finished,"
        " (SELECT s.name FROM stages s WHERE s.run_id = j.run_id AND s.status = 'running'"
        "   ORDER BY s.position DESC LIMIT 1) AS stage"
        " FROM jobs j LEFT JOIN runs r ON r.run_id = j.run_id"
        " WHERE j.seq = (SELECT j2.seq FROM jobs j2 WHERE j2.combination = j.combination"
        "   ORDER BY j2.attempt DESC, j2.seq DESC LIMIT 1)"
        " ORDER BY j.spec, j.prompt, j.model"
    )


def attempts_of(database: Database, combination: str) -> list[dict[str, Any]]:
    """Every attempt of a combination, newest first: job and run columns."""
    return database.query(
        "SELECT j.attempt, j.job_id, j.state, j.run_id, j.origin, j.rerun_of,"
        " r.status AS run_status, r.verdict, r.reason, r.fingerprint, r.started, r.finished"
        " FROM jobs j LEFT JOIN runs r ON r.run_id = j.run_id"
        " WHERE j.combination = ? ORDER BY j.attempt DESC, j.seq DESC",
        (combination,),
    )
