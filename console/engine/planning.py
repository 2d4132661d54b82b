"""Which jobs to queue: a matrix run, a rerun of one combination, a fan-out.

Planning reads the job ledger (attempt numbers, unfinished jobs) and never writes; the
engine queues what it returns.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from console.errors import UsageError
from console.model import Combination, Job
from storage import jobs as job_store

if TYPE_CHECKING:
    from console.matrix import Matrix
    from storage.db import Database


def plan_matrix(db: Database, matrix: Matrix, queue_kind: str) -> list[Job]:
    """One job per combination: an unfinished one is resumed, else a new attempt."""
    planned: list[Job] = []
    for combination in matrix.combinations():
        pending = job_store.unfinished(db, combination.key)
        if pending is not None and pending.queue == queue_kind:
            planned.append(pending.job)
            continue
        attempt = job_store.max_attempt(db, combination.key) + 1
        planned.append(matrix.job_for(combination, attempt=attempt))
    return planned


def job_of_run(db: Database, run_id: str) -> Job:
    """The matrix job whose run is ``run_id``.

    Raises:
        UsageError: no such run, or a ``verdict check`` run (no combination to rerun).
    """
    record = job_store.job_for_run(db, run_id)
    if record is not None:
        return record.job
    from storage import runs

    if runs.get_run(db, run_id) is None:
        raise UsageError(f"no run {run_id!r} (see 'verdict history')")
    raise UsageError(f"run {run_id!r} is not a matrix job (rerun it with 'verdict check')")


def matrix_of(job: Job, *, required: bool) -> Matrix | None:
    """The job's matrix file as it is now, if it still exists (required for fan-out)."""
    from console.matrix import load_matrix

    if job.matrix and Path(job.matrix).is_file():
        return load_matrix(Path(job.matrix))
    if required:
        raise UsageError(f"--fan-out needs the run's matrix file, which is gone: {job.matrix}")
    return None


def rerun_job(db: Database, matrix: Matrix | None, original: Job, run_id: str) -> Job:
    """The next attempt of ``original``'s combination, linked to ``run_id``.

    The matrix as it is now is used when it still has the combination (a fixed prompt
    template is picked up); otherwise the original job's resolved payload is reused.
    """
    combination = original.combination
    attempt = job_store.max_attempt(db, combination.key) + 1
    if matrix is not None and combination in matrix.combinations():
        return matrix.job_for(combination, attempt=attempt, rerun_of=run_id)
    digest = hashlib.sha256(f"{original.job_id}:{attempt}".encode()).hexdigest()[:20]
    return original.model_copy(
        update={"job_id": "j" + digest, "attempt": attempt, "rerun_of": run_id}
    )


def fan_out_jobs(db: Database, matrix: Matrix, original: Job, run_id: str) -> list[Job]:
    """A new attempt of every other prompt version × model of ``original``'s spec.

    Raises:
        UsageError: the spec has no other combination.
    """
    jobs = []
    spec = original.combination.spec
    for combination in matrix.combinations(spec=spec):
        if combination == Combination.model_validate(original.combination.model_dump()):
            continue
        attempt = job_store.max_attempt(db, combination.key) + 1
        jobs.append(matrix.job_for(combination, attempt=attempt, rerun_of=run_id))
    if not jobs:
        raise UsageError(
            f"{matrix.path}: spec {original.combination.spec!r} has no other "
            "prompt version x model to fan out to"
        )
    return jobs
