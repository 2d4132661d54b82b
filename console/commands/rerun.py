"""``verdict rerun RUN_ID [--fan-out]``: run a combination again, or every other one.

A rerun is a new attempt of the run's combination; ``--fan-out`` runs the same spec with
every other prompt version × model of its matrix and reports which combinations pass.
Each new job records ``rerun_of = RUN_ID`` (in the job ledger and on its run), so the
history shows which attempt fixed which fingerprint.  Exit status: plain rerun 0 when it
passes; fan-out 0 when at least one combination passes; 1 otherwise; 2 on bad input.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.commands.common import open_recording_db, run_id_arg, settings_from_args
from console.commands.run import add_queue_options, execute
from console.errors import UsageError
from console.model import Combination, Job
from console.queue.base import parse_queue_url
from storage import jobs as job_store

if TYPE_CHECKING:
    from console.matrix import Matrix
    from storage.db import Database


def add_parser(sub: Any) -> None:
    """Register ``verdict rerun``."""
    parser = sub.add_parser(
        "rerun",
        help="run a combination again (or every other one with --fan-out)",
        description="Rerun the combination of RUN_ID as a new attempt linked to it; with "
        "--fan-out, run the same spec with every other prompt version x model.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", type=run_id_arg, help="a run of a matrix job")
    parser.add_argument(
        "--fan-out",
        action="store_true",
        help="run every other prompt version x model of the spec; report which pass",
    )
    add_queue_options(parser)
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``verdict rerun``."""
    settings = settings_from_args(args)
    db = open_recording_db(settings)
    try:
        original = _job_of_run(db, args.run_id)
        matrix = _matrix_of(original, required=args.fan_out)
        queue_url = parse_queue_url(
            args.queue or (matrix.settings.queue if matrix else None) or settings.queue.url
        )
        slots = args.slots or (matrix.settings.slots if matrix else None) or settings.queue.slots
        if args.fan_out:
            assert matrix is not None
            jobs = fan_out_jobs(db, matrix, original, args.run_id)
            if not jobs:
                raise UsageError(
                    f"{matrix.path}: spec {original.combination.spec!r} has no other "
                    "prompt version x model to fan out to"
                )
            origin, title = "fan_out", f"fan-out of {args.run_id}"
        else:
            jobs = [rerun_job(db, matrix, original, args.run_id)]
            origin, title = "rerun", f"rerun of {args.run_id}"
            if matrix is None or original.combination not in matrix.combinations():
                why = "is gone" if matrix is None else "no longer has this combination"
                print(
                    f"{title}: the matrix file {original.matrix} {why}; rerunning the job"
                    " as it was queued (its recorded prompt, model and checks)",
                    file=sys.stderr,
                )
        old = job_store.get_job(db, original.job_id)
        if not args.json and old is not None:
            print(
                f"{title}: {original.combination.key} was {old.verdict or 'unfinished'}"
                f" (fingerprint {old.fingerprint or '-'})",
                file=sys.stderr,
            )
        status = execute(
            jobs,
            settings=settings,
            db=db,
            queue_url=queue_url,
            slots=slots,
            wait=not args.no_wait,
            as_json=args.json,
            origin=origin,
            title=title,
        )
        if args.fan_out and status == 1:
            records = job_store.jobs_by_id(db, [job.job_id for job in jobs])
            passing = [r.job.combination.key for r in records if r.verdict == "pass"]
            print(
                f"{len(passing)} of {len(records)} combinations pass"
                + (": " + ", ".join(passing) if passing else ""),
                file=sys.stderr,
            )
            return 0 if passing else 1
        return status
    finally:
        db.close()


def _job_of_run(db: Database, run_id: str) -> Job:
    record = job_store.job_for_run(db, run_id)
    if record is not None:
        return record.job
    from storage import runs

    if runs.get_run(db, run_id) is None:
        raise UsageError(f"no run {run_id!r} (see 'verdict history')")
    raise UsageError(f"run {run_id!r} is not a matrix job (rerun it with 'verdict check')")


def _matrix_of(job: Job, *, required: bool) -> Matrix | None:
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
    """A new attempt of every other prompt version × model of ``original``'s spec."""
    jobs = []
    spec = original.combination.spec
    for combination in matrix.combinations(spec=spec):
        if combination == Combination.model_validate(original.combination.model_dump()):
            continue
        attempt = job_store.max_attempt(db, combination.key) + 1
        jobs.append(matrix.job_for(combination, attempt=attempt, rerun_of=run_id))
    return jobs
