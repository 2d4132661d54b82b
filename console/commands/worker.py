"""``verdict worker --queue kafka://HOST:PORT``: consume jobs from Kafka and verify them.

The worker joins the ``verdict-workers`` group on ``verdict.jobs``, runs up to ``--slots``
jobs at once while the machine has headroom, sends every event to ``verdict.events`` and
commits a job only after its verdict is on the broker.  SIGTERM/SIGINT: stop taking jobs,
let running ones finish for ``--grace`` seconds, abandon the rest (they are delivered
again).  A SIGKILLed worker's jobs are delivered again too.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from console.commands.common import (
    grace_arg,
    open_recording_db,
    positive_int,
    settings_from_args,
)
from console.errors import UsageError
from console.queue.base import parse_queue_url
from console.signals import StopOnSignals

log = logging.getLogger(__name__)


def add_parser(sub: Any) -> None:
    """Register ``verdict worker``."""
    parser = sub.add_parser(
        "worker",
        help="consume jobs from Kafka and verify them",
        description="Run a worker process for the distributed queue.",
    )
    parser.add_argument("--queue", help="kafka://HOST:PORT[?prefix=P] (or VERDICT_QUEUE_URL)")
    parser.add_argument("--slots", type=positive_int, help="jobs running at once")
    parser.add_argument(
        "--sandbox", choices=["local", "kube"], help="where projects run (local or kube pods)"
    )
    parser.add_argument("--context", help="kubeconfig context for --sandbox kube")
    parser.add_argument(
        "--grace",
        type=grace_arg,
        default=30.0,
        help="seconds running jobs may finish after SIGTERM (default 30)",
    )
    parser.add_argument("--quiet", action="store_true", help="no per-job lines on stderr")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``verdict worker``."""
    settings = settings_from_args(args)
    url = parse_queue_url(args.queue or settings.queue.url)
    if url.kind != "kafka":
        raise UsageError("--queue: a worker needs kafka://HOST:PORT (embedded runs in 'run')")
    if args.sandbox:
        settings.sandbox.kind = args.sandbox
    if args.context:
        settings.sandbox.kube_context = args.context
    if args.grace < 0:
        raise UsageError(f"--grace: must be 0 or more, got {args.grace}")
    slots = args.slots or settings.queue.slots
    logging.basicConfig(level=logging.WARNING, format="verdict worker: %(message)s")
    capacity = None
    if settings.sandbox.kind == "kube":
        from console.sandbox.kube_capacity import cluster_capacity

        capacity = cluster_capacity(settings.sandbox, slots)  # a bad cluster ends here
    db = open_recording_db(settings)
    try:
        return asyncio.run(
            _serve(url, settings, db, slots, args.grace, not args.quiet, capacity)
        )
    finally:
        db.close()


async def _serve(
    url: Any,
    settings: Any,
    db: Any,
    slots: int,
    grace: float,
    chatty: bool,
    capacity: Any = None,
) -> int:
    from console.engine import Engine
    from console.model import Event, JobFinished, JobStarted

    def say(event: Event) -> None:
        if chatty and isinstance(event, JobStarted | JobFinished):
            what = "started" if isinstance(event, JobStarted) else event.verdict.value
            print(f"{event.job_id} {event.run_id}: {what}", file=sys.stderr, flush=True)

    engine = Engine(settings, db, queue_url=url, slots=slots, role="worker", capacity=capacity)
    engine.subscribe(say)
    stop = asyncio.Event()
    with StopOnSignals(stop):
        await engine.start()
        try:
            assert engine.worker is not None
            print(
                f"worker {engine.worker.name}: {url.text} topic {engine.topic}, {slots} slot(s)",
                file=sys.stderr,
                flush=True,
            )
            await engine.wait_stopped(stop)
        finally:
            await engine.stop(grace=grace)
    if engine.failure is not None:
        raise engine.failure
    return 0
