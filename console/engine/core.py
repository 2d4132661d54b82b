"""The engine: one long-lived object that runs, queues and watches the work.

Opened on settings and a database, an :class:`Engine` owns the job queue (embedded SQLite
or Kafka), one worker pool within capacity, the event bus, the recording writer and the
live state.  ``verdict run``, ``rerun`` and ``worker`` are thin commands over it, and the
console is one more client of the same object.

Roles:

- ``local`` (embedded queue): jobs run in this process; events are recorded and applied
  to :attr:`Engine.live` as they happen.
- ``client`` (``kafka://`` queue, console side): jobs are sent to ``verdict.jobs``; the
  events remote workers publish on ``verdict.events`` are followed for as long as the
  engine lives, recorded, and applied to :attr:`Engine.live`.
- ``worker`` (``kafka://`` queue, worker side): jobs are taken from ``verdict.jobs`` and
  every event goes to ``verdict.events``.

Nothing here blocks the event loop (database work runs on the writer thread or in
``asyncio.to_thread``) and nothing here installs signal handlers: the owner of the process
(a CLI command, the console) decides what a signal means and calls :meth:`Engine.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from console.engine.live import LiveState, SandboxState
from console.engine.writer import RecordingWriter
from console.events import EventBus, Subscriber
from console.model import Event, Job, JobFinished, JobQueued, RunAborted, VerdictReached
from console.queue.base import QueueUrl, parse_queue_url
from console.settings import Settings
from storage import jobs as job_store

if TYPE_CHECKING:
    from console.matrix import Matrix
    from console.worker import Worker
    from storage.db import Database

log = logging.getLogger(__name__)

Role = Literal["local", "client", "worker"]


class Engine:
    """See the module docstring.

    Args:
        settings: typed settings (queue, sandbox, LLM).
        db: the database; the engine records into it and reads the job ledger.
        queue_url: ``embedded`` or ``kafka://…`` (default: the settings' queue).
        slots: jobs running at once in this process (default: the settings').
        role: see the module docstring; by default ``local`` for the embedded queue and
            ``client`` for Kafka.
        process: the per-job pipeline (tests swap it).
        capacity: how many jobs may start (default: slots and machine headroom; a
            Kubernetes worker passes the cluster's quota).
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        queue_url: QueueUrl | None = None,
        slots: int | None = None,
        role: Role | None = None,
        process: Callable[..., Awaitable[Any]] | None = None,
        capacity: Any = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.queue_url = queue_url or parse_queue_url(settings.queue.url)
        self.slots = slots or settings.queue.slots
        self.role: Role = role or ("local" if self.queue_url.kind == "embedded" else "client")
        self.bus = EventBus()
        self.live = LiveState()
        self.writer: RecordingWriter | None = None
        self.worker: Worker | None = None
        self.failure: BaseException | None = None  # what stopped the engine's own work
        self._process = process
        self._capacity = capacity
        self._queue: Any = None
        self._publisher: Any = None
        self._watcher: Any = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._done_changed = asyncio.Event()
        self._started = False

    # --- life cycle ------------------------------------------------------------------------
    async def start(self) -> Engine:
        """Open the queue and start working (or following); returns the engine."""
        if self._started:
            return self
        self._started = True
        if self.role != "worker":
            from console.recorder import Recorder
            from console.worker import record_event

            recorder = Recorder(self.db)
            self.writer = RecordingWriter(self.db, lambda e: record_event(self.db, recorder, e))
            self.writer.start()
            self.bus.subscribe(self.writer.submit, critical=True)
        self.bus.subscribe(self._apply)
        if self.role != "client":
            await self._preload()
        if self.role == "local":
            await self._start_local()
        elif self.role == "client":
            await self._start_client()
        else:
            await self._start_worker()
        return self

    async def __aenter__(self) -> Engine:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self, grace: float = 0.0) -> None:
        """Stop taking work; running jobs get ``grace`` seconds, then are abandoned
        (released to the queue, their sandboxes stopped); everything recorded is written."""
        if self.worker is not None:
            self.worker.stop_grace = grace
        self._stop.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                await self._publisher.close()
        if self._queue is not None:
            with contextlib.suppress(Exception):
                await self._queue.close()
        if self._watcher is not None:
            with contextlib.suppress(Exception):
                await self._watcher.close()
        if self.writer is not None:
            await asyncio.to_thread(self.writer.close)

    async def _preload(self) -> None:
        """Import what running a job needs, off the loop: a first import inside a job would
        otherwise hold the loop for tens of milliseconds."""
        await asyncio.to_thread(_import_job_modules)

    async def _start_local(self) -> None:
        from console.queue.embedded import EmbeddedQueue

        self._queue = EmbeddedQueue(self.db, drain=False)
        await self._queue.start()
        self.worker = self._new_worker(self._queue, emit=self.bus, confirm=self._confirm)
        self._tasks.append(asyncio.create_task(self._work(), name="engine-worker"))

    async def _start_client(self) -> None:
        from console.queue.kafka_common import KafkaNames, ensure_topics

        names = KafkaNames.for_url(self.queue_url)
        await ensure_topics(
            self.queue_url.bootstrap,
            [names.jobs, names.dlq, names.events],
            self.settings.queue.kafka_partitions,
        )
        self._tasks.append(asyncio.create_task(self._follow(), name="engine-follow"))

    async def _start_worker(self) -> None:
        from console.queue.kafka import KafkaEventPublisher, KafkaJobQueue

        self._queue = KafkaJobQueue(self.queue_url, self.settings.queue)
        await self._queue.start()
        self._publisher = KafkaEventPublisher(self._queue.producer, self._queue.names.events)
        publisher = self._publisher

        def emit(event: Event) -> None:
            publisher(event)
            self.bus.publish(event)

        self.worker = self._new_worker(self._queue, emit=emit, flush=publisher.flush)
        self._tasks.append(asyncio.create_task(self._work(), name="engine-worker"))

    def _new_worker(self, queue: Any, **hooks: Any) -> Worker:
        from console.capacity import Capacity
        from console.worker import GeneratorCache, Worker

        extra: dict[str, Any] = {"process": self._process} if self._process else {}
        return Worker(
            queue,
            self._capacity or Capacity.from_settings(self.settings.queue, self.slots),
            db=self.db,
            generator_for=GeneratorCache(self.settings, self.db),
            settings=self.settings,
            **hooks,
            **extra,
        )

    async def _work(self) -> None:
        assert self.worker is not None
        stop = asyncio.Event()

        async def relay() -> None:
            await self._stop.wait()
            stop.set()

        relay_task = asyncio.create_task(relay())
        try:
            await self.worker.run(stop, grace=0.0)
        except Exception as exc:  # noqa: BLE001 - kept and reported, the engine stays up
            self.failure = exc
            log.error("the worker stopped: %s", exc)
        finally:
            relay_task.cancel()
            self._done_changed.set()

    async def _follow(self) -> None:
        from console.queue.kafka_console import consume_events

        assert self.writer is not None
        writer = self.writer
        try:
            await consume_events(
                self.queue_url,
                self.db,
                follow=True,
                stop=self._stop,
                on_event=self.bus.publish,
                record=lambda event: None,  # the bus hands it to the writer
                before_commit=writer.confirm,
            )
        except Exception as exc:  # noqa: BLE001 - kept and reported
            self.failure = exc
            log.error("following events stopped: %s", exc)
            self._done_changed.set()

    async def _confirm(self, run_id: str) -> None:
        assert self.writer is not None
        await self.writer.confirm(run_id)

    def _apply(self, event: Event) -> None:
        self.live.apply(event)
        if isinstance(event, JobFinished | VerdictReached | RunAborted):
            self._done_changed.set()

    # --- work --------------------------------------------------------------------------------
    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` with every event (on the engine's loop); returns unsubscribe."""
        return self.bus.subscribe(subscriber)

    async def submit(self, jobs: Sequence[Job], *, origin: str = "run") -> list[Job]:
        """Queue ``jobs`` (ids already queued are left alone) and announce them."""
        jobs = list(jobs)
        if self.role == "local":
            await self._queue.put(jobs, origin=origin)
        elif self.role == "client":
            await self._submit_kafka(jobs, origin)
        else:
            raise RuntimeError("a worker engine takes jobs from Kafka; it does not queue them")
        for job in jobs:
            self.bus.publish(JobQueued(job=job))
        return jobs

    async def _submit_kafka(self, jobs: list[Job], origin: str) -> None:
        from console.queue.kafka_common import KafkaNames, new_producer, produce_jobs

        names = KafkaNames.for_url(self.queue_url)
        known = await asyncio.to_thread(job_store.jobs_by_id, self.db, [j.job_id for j in jobs])
        already = {r.job_id for r in known if r.queue == "kafka"}
        await asyncio.to_thread(job_store.enqueue, self.db, jobs, queue="kafka", origin=origin)
        producer = new_producer(self.queue_url.bootstrap)
        await producer.start()
        try:
            fresh = [j for j in jobs if j.job_id not in already]
            await produce_jobs(producer, names.jobs, fresh, events=names.events)
        finally:
            await producer.stop()

    async def submit_matrix(self, matrix: Matrix) -> list[Job]:
        """Queue one job per combination of ``matrix`` (resuming unfinished ones)."""
        from console.engine.planning import plan_matrix

        jobs = await asyncio.to_thread(plan_matrix, self.db, matrix, self.queue_url.kind)
        return await self.submit(jobs, origin="run")

    async def rerun(self, run_id: str) -> Job:
        """Queue the next attempt of ``run_id``'s combination, linked to it."""
        from console.engine.planning import job_of_run, matrix_of, rerun_job

        def plan() -> Job:
            original = job_of_run(self.db, run_id)
            return rerun_job(self.db, matrix_of(original, required=False), original, run_id)

        job = await asyncio.to_thread(plan)
        await self.submit([job], origin="rerun")
        return job

    async def fan_out(self, run_id: str) -> list[Job]:
        """Queue every other prompt version × model of ``run_id``'s spec."""
        from console.engine.planning import fan_out_jobs, job_of_run, matrix_of

        def plan() -> list[Job]:
            original = job_of_run(self.db, run_id)
            matrix = matrix_of(original, required=True)
            assert matrix is not None
            return fan_out_jobs(self.db, matrix, original, run_id)

        jobs = await asyncio.to_thread(plan)
        return await self.submit(jobs, origin="fan_out")

    async def cancel(self, run_id: str) -> bool:
        """Stop one run of this engine's workers; it is recorded as ``aborted``.

        Returns False when no worker of this engine is running it (a remote worker's run
        cannot be cancelled from here).
        """
        return self.worker is not None and self.worker.cancel(run_id)

    def kafka_names(self) -> Any:
        """Topic and group names of a Kafka engine."""
        from console.queue.kafka_common import KafkaNames

        return KafkaNames.for_url(self.queue_url)

    async def kafka_figures(self) -> tuple[int, int] | None:
        """(consumer lag of the jobs topic, records in the DLQ) for a Kafka engine, else None."""
        if self.queue_url.kind != "kafka":
            return None
        if self._watcher is None:
            from console.queue.kafka_console import KafkaQueueWatcher

            self._watcher = KafkaQueueWatcher(self.queue_url)
        figures = await self._watcher.figures()
        return figures.lag, figures.dlq

    def sandboxes(self) -> list[SandboxState]:
        """The running sandboxes, oldest first (from events; usage: :func:`sandbox_usage`)."""
        return sorted(self.live.sandboxes.values(), key=lambda box: box.started)

    async def wait_done(
        self, job_ids: Sequence[str], *, stop: asyncio.Event | None = None, drain: bool = False
    ) -> bool:
        """Wait until every job in ``job_ids`` has a verdict (and, with ``drain``, until
        the embedded queue has nothing queued or running).  Returns False when ``stop`` was
        set or the engine's work stopped first."""
        stop = stop or asyncio.Event()
        ids = list(job_ids)
        while True:
            self._done_changed.clear()
            if await asyncio.to_thread(self._all_done, ids, drain):
                return True
            if stop.is_set() or self._stop.is_set() or self._work_stopped():
                return False
            waiters = [
                asyncio.ensure_future(self._done_changed.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            try:
                # Another process on the same database may finish our jobs: look now and then.
                await asyncio.wait(waiters, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    @property
    def topic(self) -> str:
        """The jobs topic a worker engine consumes (empty for other roles)."""
        return self._queue.names.jobs if self.role == "worker" else ""

    async def wait_stopped(self, stop: asyncio.Event) -> None:
        """Wait until ``stop`` is set or the engine's own work ends (a worker's error)."""
        while not stop.is_set() and not self._work_stopped():
            self._done_changed.clear()
            waiters = [
                asyncio.ensure_future(self._done_changed.wait()),
                asyncio.ensure_future(stop.wait()),
            ]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()

    def _work_stopped(self) -> bool:
        return self.failure is not None or (
            bool(self._tasks) and all(task.done() for task in self._tasks)
        )

    def _all_done(self, job_ids: list[str], drain: bool) -> bool:
        records = job_store.jobs_by_id(self.db, job_ids)
        if len(records) < len(job_ids) or any(r.state != job_store.DONE for r in records):
            return False
        if drain and self.role == "local":
            states = job_store.count_by_state(self.db, queue="embedded")
            if states.get(job_store.QUEUED) or (self.worker is not None and self.worker.running):
                return False
        return True


JOB_MODULES = (
    "console.checker",
    "console.sequence",
    "console.sandbox.local",
    "console.sandbox.copy",
    "console.sandbox.proctree",
    "console.generate.payload",
    "console.generate.record",
    "console.generate.result",
    "console.generate.select",
    "console.generate.replay",
    "console.llm.context",
    "console.explain.traces",
    "console.fingerprint",
    "console.detect",
    "console.recorder",
)


def _import_job_modules() -> None:
    from importlib import import_module

    for name in JOB_MODULES:
        import_module(name)


async def sandbox_usage(boxes: Sequence[SandboxState]) -> dict[str, tuple[float, int]]:
    """CPU % and RSS bytes of each local sandbox's process tree, by run id (psutil, in a
    thread)."""

    def measure() -> dict[str, tuple[float, int]]:
        import psutil

        usage: dict[str, tuple[float, int]] = {}
        for box in boxes:
            if box.pid is None:
                continue
            try:
                root = psutil.Process(box.pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            cpu, rss = 0.0, 0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
            usage[box.run_id] = (cpu, rss)
        return usage

    return await asyncio.to_thread(measure)
