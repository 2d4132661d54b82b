"""Storage for jobs: the embedded queue's durable state and every mode's job ledger.

One row per job (one attempt of one combination).  The embedded queue leases rows from
here; distributed workers use the same table as their local ledger so a redelivered job
whose verdict is already recorded is not run again.  ``state`` moves
``queued → leased → done``; a lease held by a process that no longer exists is put back
to ``queued`` when the queue starts.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.model import Job
from storage.db import Database, Migration

if TYPE_CHECKING:
    import sqlite_utils

COMPONENT = "jobs"

QUEUED = "queued"
LEASED = "leased"
DONE = "done"
ABORTED = "aborted"  # the verdict column of a job a person cancelled


def _create_jobs(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE jobs (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id TEXT NOT NULL UNIQUE,
            combination TEXT NOT NULL,
            spec TEXT NOT NULL,
            prompt TEXT NOT NULL,
            model TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            matrix TEXT,
            rerun_of TEXT,
            origin TEXT NOT NULL DEFAULT 'run',
            queue TEXT NOT NULL DEFAULT 'embedded',
            state TEXT NOT NULL DEFAULT 'queued',
            lease_owner TEXT,
            leased_at REAL,
            run_id TEXT,
            verdict TEXT,
            fingerprint TEXT,
            job_json TEXT NOT NULL,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            finished REAL
        )
        """
    )
    db.execute("CREATE INDEX jobs_state ON jobs (queue, state, seq)")
    db.execute("CREATE INDEX jobs_combination ON jobs (combination, attempt)")


MIGRATIONS: list[Migration] = [_create_jobs]


@dataclass(frozen=True)
class JobRecord:
    """One row of the ``jobs`` table."""

    job: Job
    state: str
    queue: str
    origin: str
    run_id: str | None
    verdict: str | None
    fingerprint: str | None
    lease_owner: str | None
    finished: float | None

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self.job.job_id


def _record(row: dict) -> JobRecord:
    return JobRecord(
        job=Job.model_validate_json(row["job_json"]),
        state=row["state"],
        queue=row["queue"],
        origin=row["origin"],
        run_id=row["run_id"],
        verdict=row["verdict"],
        fingerprint=row["fingerprint"],
        lease_owner=row["lease_owner"],
        finished=row["finished"],
    )


def process_owner() -> str:
    """The lease owner name of this process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(
    db: Database,
    jobs: Iterable[Job],
    *,
    queue: str = "embedded",
    origin: str = "run",
    state: str = QUEUED,
) -> int:
    """Add jobs (an id already present is left as it is); returns how many were added."""
    now = time.time()
    added = 0
    with db.write() as sdb:
        for job in jobs:
            cursor = sdb.execute(
                "INSERT OR IGNORE INTO jobs (job_id, combination, spec, prompt, model, attempt,"
                " matrix, rerun_of, origin, queue, state, job_json, created, updated)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.job_id,
                    job.combination.key,
                    job.combination.spec,
                    job.combination.prompt,
                    job.combination.model,
                    job.attempt,
                    job.matrix,
                    job.rerun_of,
                    origin,
                    queue,
                    state,
                    job.model_dump_json(),
                    now,
                    now,
                ),
            )
            added += cursor.rowcount
    return added


def lease_next(db: Database, owner: str, *, queue: str = "embedded") -> Job | None:
    """Take the oldest queued job of ``queue`` (marking it leased by ``owner``), or None."""
    with db.write() as sdb:
        row = sdb.execute(
            "SELECT seq, job_json FROM jobs WHERE queue = ? AND state = ? ORDER BY seq LIMIT 1",
            (queue, QUEUED),
        ).fetchone()
        if row is None:
            return None
        now = time.time()
        sdb.execute(
            "UPDATE jobs SET state = ?, lease_owner = ?, leased_at = ?, updated = ? WHERE seq = ?",
            (LEASED, owner, now, now, row[0]),
        )
    return Job.model_validate_json(row[1])


def lease(db: Database, job: Job, owner: str, *, queue: str) -> JobRecord:
    """Mark ``job`` leased by ``owner`` (inserting it if unknown); returns its record.

    A job already ``done`` stays done: the caller sees the recorded verdict and skips it.
    """
    with db.write() as sdb:
        enqueue(db, [job], queue=queue, state=LEASED)
        now = time.time()
        sdb.execute(
            "UPDATE jobs SET state = ?, lease_owner = ?, leased_at = ?, updated = ?"
            " WHERE job_id = ? AND state != ?",
            (LEASED, owner, now, now, job.job_id, DONE),
        )
        record = get_job(db, job.job_id)
    assert record is not None
    return record


def set_run(db: Database, job_id: str, run_id: str) -> None:
    """Remember the run currently verifying ``job_id``."""
    with db.write() as sdb:
        sdb.execute(
            "UPDATE jobs SET run_id = ?, updated = ? WHERE job_id = ? AND state != ?",
            (run_id, time.time(), job_id, DONE),
        )


def catch_up(db: Database, job_id: str) -> None:
    """Bring a job row added after its runs were recorded up to date with them: its first
    verdict, or else the run verifying it."""
    with db.write() as sdb:
        row = sdb.execute(
            "SELECT run_id, verdict, fingerprint FROM runs WHERE job_id = ?"
            " ORDER BY verdict IS NULL, COALESCE(finished, started) LIMIT 1",
            (job_id,),
        ).fetchone()
        if row is None:
            return
        run_id, verdict, fingerprint = row
        if verdict is not None:
            complete(db, job_id, run_id=run_id, verdict=verdict, fingerprint=fingerprint)
        else:
            set_run(db, job_id, run_id)


def complete(
    db: Database, job_id: str, *, run_id: str, verdict: str, fingerprint: str | None
) -> bool:
    """Record the verdict of ``job_id`` once.

    Returns True when this call recorded it, False when the job already had a verdict
    (the first one stands).
    """
    now = time.time()
    with db.write() as sdb:
        row = sdb.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is not None and row[0] == DONE:
            return False
        sdb.execute(
            "UPDATE jobs SET state = ?, run_id = ?, verdict = ?, fingerprint = ?,"
            " lease_owner = NULL, finished = ?, updated = ? WHERE job_id = ?",
            (DONE, run_id, verdict, fingerprint, now, now, job_id),
        )
    return row is not None


def cancel(db: Database, job_id: str, *, run_id: str | None) -> bool:
    """End a job that was cancelled by a person: done, with the verdict ``aborted``.

    Returns False when the job already had a verdict (the verdict stands).
    """
    now = time.time()
    with db.write() as sdb:
        cursor = sdb.execute(
            "UPDATE jobs SET state = ?, run_id = COALESCE(?, run_id), verdict = ?,"
            " lease_owner = NULL, finished = ?, updated = ? WHERE job_id = ? AND state != ?",
            (DONE, run_id, ABORTED, now, now, job_id, DONE),
        )
    return cursor.rowcount > 0


def requeue(db: Database, job_id: str) -> None:
    """Put a leased job back in the queue (abandoned before its verdict)."""
    with db.write() as sdb:
        sdb.execute(
            "UPDATE jobs SET state = ?, lease_owner = NULL, leased_at = NULL, updated = ?"
            " WHERE job_id = ? AND state = ?",
            (QUEUED, time.time(), job_id, LEASED),
        )


def recover_leases(db: Database, *, queue: str = "embedded", alive: set[str] | None = None) -> int:
    """Requeue leases whose owner process is gone; returns how many were requeued.

    A lease is kept when its owner is in ``alive`` or is a live process on this host.
    """
    return len(recover_stale_leases(db, queue=queue, alive=alive))


def recover_stale_leases(
    db: Database, *, queue: str = "embedded", alive: set[str] | None = None
) -> list[JobRecord]:
    """Requeue leases whose owner process is gone; returns them as they were (with the
    ``run_id`` of the abandoned run, if it had started).

    A lease is kept when its owner is in ``alive`` or is a live process on this host that
    was already running when it took the lease (a reused pid does not keep a lease).
    """
    import psutil  # deferred: only the queue's start needs it

    host = socket.gethostname()
    requeued: list[JobRecord] = []
    with db.write() as sdb:
        rows = sdb.execute(
            "SELECT job_id, lease_owner, leased_at FROM jobs WHERE queue = ? AND state = ?",
            (queue, LEASED),
        ).fetchall()
        for job_id, owner, leased_at in rows:
            if alive and owner in alive:
                continue
            owner_host, _, pid = (owner or "").rpartition(":")
            if owner_host == host and pid.isdigit() and int(pid) != os.getpid():
                if _started_before(psutil, int(pid), leased_at):
                    continue
            record = get_job(db, job_id)
            requeue(db, job_id)
            if record is not None:
                requeued.append(record)
    return requeued


def _started_before(psutil: Any, pid: int, leased_at: float | None) -> bool:
    """Whether process ``pid`` exists and was started before ``leased_at`` (so it could
    have taken the lease); a pid reused by a newer process does not count."""
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        return False
    # create_time has a resolution of one clock tick; allow a little slack.
    return leased_at is None or created <= leased_at + 1.0


def get_job(db: Database, job_id: str) -> JobRecord | None:
    """The record of ``job_id``, or None."""
    rows = db.query("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
    return _record(rows[0]) if rows else None


def count_by_state(db: Database, *, queue: str | None = None) -> dict[str, int]:
    """How many jobs are in each state (optionally of one queue)."""
    sql = "SELECT state, COUNT(*) AS n FROM jobs"
    params: tuple[str, ...] = ()
    if queue is not None:
        sql += " WHERE queue = ?"
        params = (queue,)
    rows = db.query(sql + " GROUP BY state", params)
    return {row["state"]: int(row["n"]) for row in rows}


def unfinished(db: Database, combination: str) -> JobRecord | None:
    """The oldest queued or leased job of a combination, if any."""
    rows = db.query(
        "SELECT * FROM jobs WHERE combination = ? AND state != ? ORDER BY seq LIMIT 1",
        (combination, DONE),
    )
    return _record(rows[0]) if rows else None


def max_attempt(db: Database, combination: str) -> int:
    """The highest attempt number recorded for a combination (0 when none)."""
    rows = db.query("SELECT MAX(attempt) AS a FROM jobs WHERE combination = ?", (combination,))
    return int(rows[0]["a"] or 0)


def jobs_by_id(db: Database, job_ids: Sequence[str]) -> list[JobRecord]:
    """Records of the given jobs, in the order given (unknown ids are skipped)."""
    found: dict[str, JobRecord] = {}
    for start in range(0, len(job_ids), 500):
        chunk = list(job_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for row in db.query(f"SELECT * FROM jobs WHERE job_id IN ({marks})", chunk):
            found[row["job_id"]] = _record(row)
    return [found[job_id] for job_id in job_ids if job_id in found]


def job_for_run(db: Database, run_id: str) -> JobRecord | None:
    """The job whose run is ``run_id``, or None."""
    rows = db.query("SELECT * FROM jobs WHERE run_id = ? ORDER BY seq DESC LIMIT 1", (run_id,))
    return _record(rows[0]) if rows else None


def payload_json(job: Job) -> str:
    """The job as compact JSON (the queue message body)."""
    return json.dumps(job.model_dump(mode="json"), separators=(",", ":"))
