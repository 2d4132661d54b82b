"""The pipeline for one job (generate → run_check → events) and the loop that feeds it.

:func:`process_job` turns a :class:`~console.model.Job` into a verdict and emits the
events on the way.  :class:`Worker` takes jobs from a :class:`~console.queue.base.JobQueue`
while :class:`~console.capacity.Capacity` allows, runs them concurrently, and acks each job
only after its verdict is durably recorded.  A job whose verdict is already recorded (a
redelivery) is acked without running again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import tempfile
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console import paths
from console.errors import UsageError, one_line
from console.model import (
    CheckResult,
    Event,
    Job,
    JobFinished,
    JobQueued,
    JobStarted,
    RunAborted,
    RunStarted,
    StageChanged,
    Verdict,
    VerdictReached,
)
from console.settings import Settings
from storage import jobs as job_store

if TYPE_CHECKING:
    from console.capacity import Capacity
    from console.generate.result import Generator
    from console.matrix import Matrix
    from console.queue.base import Delivery, JobQueue
    from storage.db import Database

log = logging.getLogger(__name__)

Emit = Callable[[Event], None]
RESULTS_KEPT = 256


def worker_name() -> str:
    """A readable name for this worker process: ``host:pid``."""
    return job_store.process_owner() if socket.gethostname() else "worker"


def _job_emitter(job: Job, emit: Emit | None) -> Emit:
    """An ``emit`` that stamps the job's identity on the events that carry it."""

    def stamped(event: Event) -> None:
        if emit is None:
            return
        if isinstance(event, RunStarted):
            event.job_id = event.job_id or job.job_id
            event.combination = event.combination or job.combination
            event.attempt = job.attempt
            event.rerun_of = event.rerun_of or job.rerun_of
        elif isinstance(event, VerdictReached):
            event.result.job_id = event.result.job_id or job.job_id
        emit(event)

    return stamped


def _generation_failed(
    job: Job, run_id: str, reason: str, started: float, scratch: Path, send: Emit
) -> CheckResult:
    """Record ``generation_failed`` for ``job``: its run, the failed stage, the verdict."""
    result = generation_failed_result(job, run_id, reason, started)
    send(RunStarted(run_id=run_id, project=str(scratch / "project"), ts=started))
    send(
        StageChanged(
            run_id=run_id,
            name="generate",
            status="failed",
            detail=result.reason,
            ms=result.stages[0].ms,
        )
    )
    send(VerdictReached(run_id=run_id, result=result))
    return result


def generation_failed_result(job: Job, run_id: str, reason: str, started: float) -> CheckResult:
    """The verdict of a job whose project could not be generated (no sandbox run)."""
    import time

    from console.fingerprint import fingerprint
    from console.model import StageResult

    finished = time.time()
    return CheckResult(
        run_id=run_id,
        verdict=Verdict.GENERATION_FAILED,
        reason=reason or "generation failed",
        stages=[
            StageResult(
                name="generate",
                ok=False,
                started=started,
                ms=(finished - started) * 1000,
                detail=reason,
            )
        ],
        fingerprint=fingerprint(Verdict.GENERATION_FAILED, None, extra=reason),
        started=started,
        finished=finished,
        job_id=job.job_id,
    )


async def process_job(
    job: Job,
    *,
    generator: Generator,
    matrix: Matrix | None = None,
    emit: Emit | None = None,
    settings: Settings | None = None,
    run_id: str | None = None,
    worker: str = "",
) -> CheckResult:
    """Generate the job's project, verify it, and emit the events; returns the verdict.

    A generation that fails gives the verdict ``generation_failed`` with its reason and no
    sandbox run.  LLM calls made on the way carry the job's context (sandbox = run id).
    """
    import time

    from console.checker import new_run_id, run_check
    from console.generate.payload import check_spec_for_job
    from console.generate.record import generation_event, generator_kind
    from console.generate.result import GenerationResult
    from console.llm.context import llm_context

    settings = settings or Settings()
    run_id = run_id or new_run_id()
    send = _job_emitter(job, emit)
    send(JobStarted(job_id=job.job_id, run_id=run_id, worker=worker))
    scratch = Path(tempfile.mkdtemp(prefix=f"{run_id}-", dir=paths.runs_dir(create=True)))
    try:
        with llm_context(sandbox=run_id, job_id=job.job_id, combination=job.combination.key):
            started = time.time()
            try:
                generated = await generator.generate(job, scratch / "project")
            except Exception as exc:
                # A generator bug or a local fault (disk full) must not stop the worker or
                # come back on every redelivery: this job's verdict says what happened.
                reason = f"generator error: {one_line(exc)}"
                log.warning("job %s: %s", job.job_id, reason)
                generated = GenerationResult(ok=False, reason=reason)
            kind = generator_kind(generator, job)
            send(generation_event(job.job_id, run_id, generated, kind))  # raw answers kept
            if not generated.ok:
                result = _generation_failed(job, run_id, generated.reason, started, scratch, send)
            else:
                project = generated.project_dir or scratch / "project"
                try:
                    if matrix is not None:
                        spec = matrix.check_spec_for(job, project, generated)
                    else:
                        spec = check_spec_for_job(job, project, generated)
                except (ValueError, TypeError) as exc:
                    # A job from elsewhere (Kafka) whose checks make no sense: a verdict,
                    # not a worker that stops on every redelivery of it.
                    problem = f"unusable job payload: {one_line(exc)}"
                    result = _generation_failed(job, run_id, problem, started, scratch, send)
                else:
                    try:
                        result = await run_check(
                            spec, settings=settings.sandbox, run_id=run_id, emit=send, job=job
                        )
                    except UsageError as exc:
                        # The generated project cannot even be started (no run command, ...).
                        result = _generation_failed(
                            job, run_id, f"unusable project: {exc}", started, scratch, send
                        )
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)
    result.job_id = job.job_id
    send(
        JobFinished(
            job_id=job.job_id,
            run_id=result.run_id,
            verdict=result.verdict,
            fingerprint=result.fingerprint,
        )
    )
    return result


def record_event(db: Database, recorder: Any, event: Event) -> bool:
    """Record one event through ``recorder``, keeping one verdict per job.

    A ``VerdictReached`` is written in the same transaction as the job's ledger entry, and a
    second verdict for a job that already has one from another run is dropped (the first
    stands).  Returns False when the event was dropped.
    """
    if isinstance(event, VerdictReached) and event.result.job_id:
        result = event.result
        job_id = result.job_id
        assert job_id is not None
        with db.write():
            record = job_store.get_job(db, job_id)
            if record is not None and record.state == job_store.DONE:
                if record.run_id != result.run_id:
                    log.info("job %s already has a verdict; dropped %s", job_id, result.run_id)
                    return False
            recorder.handle(event)
            job_store.complete(
                db,
                job_id,
                run_id=result.run_id,
                verdict=result.verdict.value,
                fingerprint=result.fingerprint,
            )
        return True
    if isinstance(event, JobQueued):
        # Another console's job, heard of on the events topic: into this ledger too, caught
        # up with whatever of it was recorded first (events of one job may come in any order).
        with db.write():
            if job_store.enqueue(db, [event.job], queue="kafka", origin="remote"):
                job_store.catch_up(db, event.job.job_id)
        return True
    if isinstance(event, JobStarted):
        with db.write():
            record = job_store.get_job(db, event.job_id)
            old = record.run_id if record and record.state != job_store.DONE else None
            if old and old != event.run_id and _still_running(db, old):
                # The job is being run again (its worker died): the old run ends here.
                reason = f"abandoned: the job was started again as run {event.run_id}"
                recorder.handle(RunAborted(run_id=old, reason=reason, ts=event.ts))
            job_store.set_run(db, event.job_id, event.run_id)
    recorder.handle(event)
    return True


def _still_running(db: Database, run_id: str) -> bool:
    from storage import runs

    return runs.run_status(db, run_id) == "running"


def abandon_run(db: Database, run_id: str, reason: str) -> None:
    """Clean up after a run whose process died before its verdict.

    What the run left running (found by its ``VERDICT_RUN`` marker) is killed, its work
    directories are removed, and the run is recorded as aborted with ``reason`` (a verdict
    recorded meanwhile is kept).
    """
    import os
    import signal

    from console.recorder import Recorder
    from console.sandbox import proctree

    for pid in proctree.scan_marked(f"{proctree.MARKER_ENV}={run_id}".encode()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    base = paths.runs_dir()
    if base.is_dir():
        for path in base.iterdir():
            if path.name == run_id or path.name.startswith(f"{run_id}-"):
                shutil.rmtree(path, ignore_errors=True)
    if _still_running(db, run_id):
        Recorder(db).handle(RunAborted(run_id=run_id, reason=reason))


class _UnavailableGenerator:
    """Stands in when a job's generator cannot be built here: every job fails to generate."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def generate(self, job: Job, dest: Path) -> Any:
        from console.generate.result import GenerationResult

        return GenerationResult(ok=False, reason=self.reason)


class GeneratorCache:
    """The generator each job asks for (``job.payload["generator"]``), built once per kind.

    A generator this worker cannot build (say, an LLM job on a worker without an endpoint)
    makes the job's verdict ``generation_failed`` with the reason, rather than stopping the
    worker.
    """

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db
        self._cache: dict[tuple[str, str, str], Generator] = {}

    def __call__(self, job: Job) -> Generator:
        """The generator for ``job``."""
        from console.errors import UsageError
        from console.generate.select import generator_for_job

        config = dict(job.payload.get("generator") or {})
        model = dict(job.payload.get("model") or {})
        key = (str(config.get("kind")), str(config.get("dir")), str(model.get("name")))
        if key not in self._cache:
            try:
                self._cache[key] = generator_for_job(
                    job.payload, settings=self.settings, db=self.db
                )
            except UsageError as exc:
                self._cache[key] = _UnavailableGenerator(str(exc))
        return self._cache[key]


class Worker:
    """Takes jobs from ``queue`` while ``capacity`` allows and runs them concurrently.

    Args:
        queue: where jobs come from.
        capacity: slots and headroom; one slot per running job.
        db: the job ledger (``storage.jobs``): a job already ``done`` there is skipped.
        emit: where events go (an :class:`~console.events.EventBus` or a Kafka publisher).
        generator_for: the generator for a job.
        settings: sandbox settings and the like.
        flush: awaited after a job's events are emitted and before it is acked, so the
            verdict is durable first (the Kafka publisher's flush).
        confirm: awaited with the run id after ``flush``; raises when the run's events were
            not recorded (the engine's recording writer), so the job is not acked.
        process: the per-job pipeline (:func:`process_job` unless a test swaps it).
    """

    def __init__(
        self,
        queue: JobQueue,
        capacity: Capacity,
        *,
        db: Database,
        emit: Emit,
        generator_for: Callable[[Job], Generator],
        settings: Settings | None = None,
        flush: Callable[[], Awaitable[None]] | None = None,
        confirm: Callable[[str], Awaitable[None]] | None = None,
        name: str | None = None,
        process: Callable[..., Awaitable[CheckResult]] = process_job,
    ) -> None:
        self.queue = queue
        self.capacity = capacity
        self.db = db
        self.emit = emit
        self.generator_for = generator_for
        self.settings = settings or Settings()
        self.flush = flush
        self.confirm = confirm
        self.name = name or worker_name()
        self.process = process
        # The latest results only: a long-lived worker must not grow with every job.
        self.results: deque[CheckResult] = deque(maxlen=RESULTS_KEPT)
        self.skipped: deque[str] = deque(maxlen=RESULTS_KEPT)  # redeliveries already done
        self.running: dict[str, Job] = {}  # run id -> job, while its task runs
        self._task_of_run: dict[str, asyncio.Task[None]] = {}
        self._cancelled: set[str] = set()  # run ids a person cancelled
        self.stop_grace: float | None = None  # set by an owner that stops the worker later
        self._tasks: set[asyncio.Task[None]] = set()
        self._error: BaseException | None = None

    async def run(self, stop: asyncio.Event | None = None, *, grace: float = 30.0) -> None:
        """Work until the queue returns None or ``stop`` is set.

        After a stop, running jobs get ``grace`` seconds to finish; the rest are abandoned
        (released to the queue, so they are delivered again).
        """
        stop = stop or asyncio.Event()
        try:
            while not stop.is_set() and self._error is None:
                if not await self._until(self.capacity.acquire(), stop):
                    break
                delivery = await self._next_delivery(stop)
                if delivery is None:
                    await self.capacity.release()
                    break
                task = asyncio.create_task(self._run_one(delivery), name=delivery.job.job_id)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)
            if self._tasks:
                if self.stop_grace is not None:
                    grace = self.stop_grace
                done, pending = await asyncio.wait(
                    set(self._tasks), timeout=grace if stop.is_set() else None
                )
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending)
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.wait(set(self._tasks))
        if self._error is not None:
            raise self._error

    async def _until(self, awaitable: Awaitable[None], stop: asyncio.Event) -> bool:
        """Await ``awaitable`` unless ``stop`` is set first; True when it completed."""
        work = asyncio.ensure_future(awaitable)
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if work.done():
            work.result()
            return True
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        if work.done() and not work.cancelled():
            # acquired just as we stopped: give it back
            await self.capacity.release()
        return False

    async def _next_delivery(self, stop: asyncio.Event) -> Delivery | None:
        getter = asyncio.ensure_future(self.queue.get())
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if getter.done():
            return getter.result()
        getter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await getter
        if getter.done() and not getter.cancelled() and getter.result() is not None:
            await self.queue.release(getter.result())  # type: ignore[arg-type]
        return None

    def cancel(self, run_id: str) -> bool:
        """End one running job: its sandbox is stopped and it is recorded as aborted.

        Returns False when no job of this worker is running as ``run_id``.
        """
        task = self._task_of_run.get(run_id)
        if task is None or task.done():
            return False
        self._cancelled.add(run_id)
        task.cancel()
        return True

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and self._error is None:
            self._error = task.exception()

    async def _run_one(self, delivery: Delivery) -> None:
        from console.checker import new_run_id

        job = delivery.job
        run_id = new_run_id()
        try:
            if self.queue.kind == "embedded":
                record = await asyncio.to_thread(job_store.get_job, self.db, job.job_id)
            else:
                record = await asyncio.to_thread(
                    job_store.lease, self.db, job, self.name, queue=self.queue.kind
                )
            if record is not None and record.state == job_store.DONE:
                self.skipped.append(job.job_id)
                await self.queue.ack(delivery)
                return
            task = asyncio.current_task()
            assert task is not None
            self.running[run_id] = job
            self._task_of_run[run_id] = task
            try:
                result = await self.process(
                    job,
                    generator=self.generator_for(job),
                    emit=self.emit,
                    settings=self.settings,
                    worker=self.name,
                    run_id=run_id,
                )
                if self.flush is not None:
                    await self.flush()
                if self.confirm is not None:
                    await self.confirm(result.run_id)
                await asyncio.to_thread(
                    job_store.complete,
                    self.db,
                    job.job_id,
                    run_id=result.run_id,
                    verdict=result.verdict.value,
                    fingerprint=result.fingerprint,
                )
            except asyncio.CancelledError:
                if run_id not in self._cancelled:
                    with contextlib.suppress(Exception):
                        await asyncio.shield(self.queue.release(delivery))
                    raise
                # A person cancelled it: the run is recorded as aborted (run_check said
                # so on the way out) and the job ends here instead of being delivered again.
                await asyncio.shield(self._end_cancelled(delivery, run_id))
                return
            except BaseException:
                # Abandoned (stop) or failed unexpectedly: deliver it again later.
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.queue.release(delivery))
                raise
            finally:
                self.running.pop(run_id, None)
                self._task_of_run.pop(run_id, None)
            self.results.append(result)
            await self.queue.ack(delivery)
        finally:
            self._cancelled.discard(run_id)
            await self.capacity.release()

    async def _end_cancelled(self, delivery: Delivery, run_id: str) -> None:
        if self.flush is not None:
            with contextlib.suppress(Exception):
                await self.flush()
        await asyncio.to_thread(job_store.cancel, self.db, delivery.job.job_id, run_id=run_id)
        self.emit(RunAborted(run_id=run_id, reason="cancelled"))  # no-op if already ended
        await self.queue.ack(delivery)
