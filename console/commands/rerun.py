"""``verdict rerun RUN_ID [--fan-out]``: run a combination again, or every other one.

A rerun is a new attempt of the run's combination; ``--fan-out`` runs the same spec with
every other prompt version × model of its matrix and reports which combinations pass.
Each new job records ``rerun_of = RUN_ID`` (in the job ledger and on its run), so the
history shows which attempt fixed which fingerprint.  Exit status: plain rerun 0 when it
passes; fan-out 0 when at least one combination passes; 1 otherwise; 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from console.commands.common import open_recording_db, run_id_arg, settings_from_args
from console.commands.run import add_queue_options, execute
from console.queue.base import parse_queue_url
from storage import jobs as job_store

if TYPE_CHECKING:
    pass


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
    from console.engine.planning import fan_out_jobs, job_of_run, matrix_of, rerun_job

    settings = settings_from_args(args)
    db = open_recording_db(settings)
    try:
        original = job_of_run(db, args.run_id)
        matrix = matrix_of(original, required=args.fan_out)
        queue_url = parse_queue_url(
            args.queue or (matrix.settings.queue if matrix else None) or settings.queue.url
        )
        slots = args.slots or (matrix.settings.slots if matrix else None) or settings.queue.slots
        if args.fan_out:
            assert matrix is not None
            jobs = fan_out_jobs(db, matrix, original, args.run_id)
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
