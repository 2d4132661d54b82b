"""``verdict run MATRIX``: queue one job per combination, run them, show the verdict table.

Embedded (default): the jobs go into the SQLite queue and run in this process with a live
progress display.  Kafka (``--queue kafka://HOST:PORT``): the jobs go to ``verdict.jobs``
and this command waits for every verdict on ``verdict.events`` (recording every event it
reads) unless ``--no-wait``.  Exit status: 0 all pass, 1 otherwise, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.commands.common import open_recording_db, positive_int, settings_from_args
from console.errors import UsageError
from console.model import Event, Job, JobFinished, JobQueued, JobStarted, StageChanged
from console.queue.base import QueueUrl, parse_queue_url
from console.signals import StopOnSignals
from storage import jobs as job_store
from storage import runs

if TYPE_CHECKING:
    from console.matrix import Matrix
    from console.settings import Settings
    from storage.db import Database


def add_parser(sub: Any) -> None:
    """Register ``verdict run``."""
    parser = sub.add_parser(
        "run",
        help="queue and run every combination of a matrix file",
        description="Queue one job per spec x prompt x model of MATRIX and run them; "
        "exit 0 if every combination passes, 1 otherwise, 2 on bad input.",
    )
    parser.add_argument("matrix", type=Path, help="matrix file (TOML)")
    add_queue_options(parser)
    parser.set_defaults(func=handle)


def add_queue_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``rerun``."""
    parser.add_argument("--queue", help="'embedded' (default) or kafka://HOST:PORT[?prefix=P]")
    parser.add_argument("--slots", type=positive_int, help="jobs running at once")
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="with Kafka: return once the jobs are queued",
    )
    parser.add_argument("--json", action="store_true", help="print the verdicts as JSON")


def handle(args: argparse.Namespace) -> int:
    """Run ``verdict run``."""
    from console.matrix import load_matrix

    settings = settings_from_args(args)
    matrix = load_matrix(args.matrix)
    queue_url = parse_queue_url(args.queue or matrix.settings.queue or settings.queue.url)
    slots = args.slots or matrix.settings.slots or settings.queue.slots
    if matrix.settings.sandbox and matrix.settings.sandbox != settings.sandbox.kind:
        settings.sandbox.kind = matrix.settings.sandbox
    if matrix.settings.network:  # local runs; a Kafka worker follows its own settings
        settings.sandbox.network = matrix.settings.network
    db = open_recording_db(settings)
    try:
        jobs = plan_jobs(db, matrix, queue_url)
        return execute(
            jobs,
            settings=settings,
            db=db,
            queue_url=queue_url,
            slots=slots,
            wait=not args.no_wait,
            as_json=args.json,
        )
    finally:
        db.close()


def plan_jobs(db: Database, matrix: Matrix, queue_url: QueueUrl) -> list[Job]:
    """One job per combination: an unfinished one is resumed, else a new attempt."""
    from console.engine.planning import plan_matrix

    return plan_matrix(db, matrix, queue_url.kind)


def execute(
    jobs: Sequence[Job],
    *,
    settings: Settings,
    db: Database,
    queue_url: QueueUrl,
    slots: int,
    wait: bool = True,
    as_json: bool = False,
    origin: str = "run",
    title: str = "",
) -> int:
    """Queue ``jobs``, run or await them, print the table (or JSON); returns the exit status."""
    if not jobs:
        raise UsageError("nothing to run")
    display = ProgressDisplay(len(jobs), title=title)
    display.name_jobs(jobs)
    try:
        stopped = asyncio.run(
            run_jobs(
                jobs,
                settings=settings,
                db=db,
                queue_url=queue_url,
                slots=slots,
                wait=wait,
                on_event=display.handle,
                origin=origin,
            )
        )
    finally:
        display.close()
    records = job_store.jobs_by_id(db, [job.job_id for job in jobs])
    if as_json:
        print(json.dumps(jobs_json(records), indent=2))
    else:
        print_table(records, db=db)
    if stopped:
        return 128 + stopped  # 130 after SIGINT, 143 after SIGTERM, as check does
    if queue_url.kind != "embedded" and not wait:
        return 0
    return 0 if records and all(r.verdict == "pass" for r in records) else 1


async def run_jobs(
    jobs: Sequence[Job],
    *,
    settings: Settings,
    db: Database,
    queue_url: QueueUrl,
    slots: int,
    wait: bool = True,
    on_event: Callable[[Event], None] | None = None,
    origin: str = "run",
) -> int:
    """Queue ``jobs`` on an engine and wait for their verdicts.

    Embedded: the jobs run in this process, and so do jobs left queued or in flight by an
    earlier process (the queue is drained).  Returns the signal number when interrupted
    (SIGINT/SIGTERM; running jobs are abandoned and stay queued), else 0.
    """
    from console.engine import Engine

    stop = asyncio.Event()
    engine = Engine(settings, db, queue_url=queue_url, slots=slots)
    with StopOnSignals(stop) as signals:
        await engine.start()
        try:
            if on_event is not None:
                engine.subscribe(on_event)
            await engine.submit(jobs, origin=origin)
            if wait or queue_url.kind == "embedded":
                done = await engine.wait_done(
                    [job.job_id for job in jobs], stop=stop, drain=queue_url.kind == "embedded"
                )
                if not done and engine.failure is not None:
                    raise engine.failure
        finally:
            await engine.stop(grace=0.0)
    return (signals.received or signal.SIGINT) if stop.is_set() else 0


class ProgressDisplay:
    """Live progress on stderr: a rich display on a terminal, plain lines otherwise."""

    def __init__(self, total: int, *, title: str = "", stream: Any = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.finished = 0
        self.passed = 0
        self.running: dict[str, str] = {}  # run_id -> "combination: stage"
        self.names: dict[str, str] = {}  # job_id -> combination key
        self.title = title
        self.announced = False
        self._live: Any = None
        if self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream, highlight=False)
            self._live = Live(self._render(), console=console, refresh_per_second=8, transient=True)
            self._live.start()

    def name_jobs(self, jobs: Sequence[Job]) -> None:
        """Know the combination of each job, for readable lines."""
        for job in jobs:
            self.names[job.job_id] = job.combination.key

    def handle(self, event: Event) -> None:
        """Update the display from one event."""
        if isinstance(event, JobQueued) and not self.announced:
            # Say at once that work has begun (a script watching stderr knows it can stop us).
            self.announced = True
            if self._live is None:
                what = self.title or "verdict run"
                print(f"{what}: {self.total} job(s) queued", file=self.stream, flush=True)
            return
        if isinstance(event, JobStarted):
            self.running[event.run_id] = self.names.get(event.job_id, event.job_id)
        elif isinstance(event, StageChanged) and event.run_id in self.running:
            name = self.running[event.run_id].split(": ")[0]
            self.running[event.run_id] = f"{name}: {event.name} {event.status}"
        elif isinstance(event, JobFinished):
            name = self.running.pop(event.run_id, self.names.get(event.job_id, event.job_id))
            name = name.split(": ")[0]
            self.finished += 1
            self.passed += event.verdict.value == "pass"
            if self._live is None:
                line = f"[{self.finished}/{self.total}] {name}: {event.verdict.value} "
                print(line + f"(run {event.run_id})", file=self.stream, flush=True)
        else:
            return
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        head = Text(
            f"{self.title + ' ' if self.title else ''}{self.finished}/{self.total} done, "
            f"{self.passed} pass, {len(self.running)} running"
        )
        lines = [Text(f"  {text}") for text in list(self.running.values())[:12]]
        return Group(head, *lines)

    def close(self) -> None:
        """Stop the live display."""
        if self._live is not None:
            self._live.stop()
            self._live = None


def jobs_json(records: Sequence[job_store.JobRecord]) -> dict[str, Any]:
    """The ``--json`` document: one entry per combination (its latest attempt)."""
    latest: dict[str, job_store.JobRecord] = {}
    for record in records:
        key = record.job.combination.key
        if key not in latest or record.job.attempt >= latest[key].job.attempt:
            latest[key] = record
    return {
        "jobs": [
            {
                "job_id": r.job_id,
                "spec": r.job.combination.spec,
                "prompt": r.job.combination.prompt,
                "model": r.job.combination.model,
                "attempt": r.job.attempt,
                "verdict": r.verdict,
                "run_id": r.run_id,
                "fingerprint": r.fingerprint,
            }
            for r in latest.values()
        ]
    }


def print_table(
    records: Sequence[job_store.JobRecord], *, db: Database | None = None, title: str | None = None
) -> None:
    """The per-combination verdict table on stdout, then why each failing one failed."""
    from rich import box
    from rich.console import Console
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    entries = jobs_json(records)["jobs"]
    table = Table(title=title, box=box.SIMPLE_HEAD, highlight=False, pad_edge=False)
    table.add_column("combination", overflow="fold")
    for column in ("try", "verdict", "run", "error"):
        table.add_column(column, no_wrap=True)  # "error": the fingerprint's first 8 digits
    for entry in entries:
        verdict = entry["verdict"] or "(pending)"
        style = "green" if verdict == "pass" else "red" if entry["verdict"] else "yellow"
        table.add_row(
            Text(f"{entry['spec']}/{entry['prompt']}/{entry['model']}"),
            Text(str(entry["attempt"])),
            Text(verdict, style=style),
            Text(entry["run_id"] or "-"),
            Text((entry["fingerprint"] or "-")[:8]),
        )
    # Pipes get a wide table unless the caller says how wide (COLUMNS).
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    console = Console(file=sys.stdout, highlight=False, width=160 if wide else None)
    console.print(table)
    passed = sum(1 for entry in entries if entry["verdict"] == "pass")
    console.print(Text(f"{passed} of {len(entries)} combinations pass.", style="bold"))
    failing = [e for e in entries if e["verdict"] not in (None, "pass") and e["run_id"]]
    if db is None or not failing:
        return
    console.print()
    for entry in failing:
        run = runs.get_run(db, entry["run_id"])
        line = Text()
        line.append(f"{entry['spec']}/{entry['prompt']}/{entry['model']}", style="bold")
        line.append(f"  {entry['verdict']}", style="red")
        line.append(f"  verdict explain {entry['run_id']}", style="dim")
        console.print(line)
        if run and run.reason:
            console.print(Padding(Text(run.reason), (0, 0, 0, 2), expand=False), style="italic")
