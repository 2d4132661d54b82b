"""The worker: pipeline for one job, concurrency under capacity, one verdict per job."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from console.capacity import Capacity, Headroom
from console.events import EventBus
from console.generate.result import GenerationResult
from console.llm.context import current_context
from console.matrix import load_matrix
from console.model import (
    CheckResult,
    Combination,
    Event,
    Job,
    JobFinished,
    Verdict,
    VerdictReached,
)
from console.queue.base import Delivery
from console.queue.embedded import EmbeddedQueue
from console.worker import GeneratorCache, Worker, process_job, record_event
from storage import jobs as job_store
from storage.db import Database

QUEUE_FIXTURES = Path(__file__).parent.parent / "fixtures" / "queue"


def make_job(n: int) -> Job:
    return Job(job_id=f"job{n}", combination=Combination(spec="s", prompt=f"v{n}", model="m"))


def roomy() -> Headroom:
    return Headroom(free_memory_mb=1e6, cpu_percent=0)


class FailingGenerator:
    """Never produces a project; remembers the LLM context it was called in."""

    def __init__(self) -> None:
        self.contexts: list[Any] = []

    async def generate(self, job: Job, dest: Path) -> GenerationResult:
        self.contexts.append(current_context())
        return GenerationResult(ok=False, reason="model answered with prose, not files")


class ListRecorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def handle(self, event: Event) -> None:
        self.events.append(event)


async def test_generation_failure_is_a_verdict_with_its_reason() -> None:
    events: list[Event] = []
    generator = FailingGenerator()
    job = make_job(1)
    result = await process_job(job, generator=generator, emit=events.append)
    assert result.verdict is Verdict.GENERATION_FAILED
    assert result.reason == "model answered with prose, not files"
    assert result.job_id == "job1" and result.fingerprint
    kinds = [e.kind for e in events]
    assert kinds == [
        "job_started",
        "generation_finished",
        "run_started",
        "stage_changed",
        "verdict_reached",
        "job_finished",
    ]
    generation = events[1]
    assert (generation.ok, generation.reason, generation.generator) == (  # type: ignore[union-attr]
        False,
        "model answered with prose, not files",
        "FailingGenerator",
    )
    started = events[2]
    assert started.job_id == "job1" and started.combination == job.combination  # type: ignore[union-attr]
    context = generator.contexts[0]
    assert (context.sandbox, context.job_id, context.combination) == (
        result.run_id,
        "job1",
        "s/v1/m",
    )


async def test_replayed_project_is_verified_in_a_sandbox() -> None:
    matrix = load_matrix(QUEUE_FIXTURES / "quick.toml")
    job = matrix.jobs()[0]
    events: list[Event] = []
    result = await process_job(job, generator=GeneratorCache(_settings())(job), emit=events.append)
    assert result.verdict is Verdict.PASS, result.reason
    verdicts = [e for e in events if isinstance(e, VerdictReached)]
    assert len(verdicts) == 1 and verdicts[0].result.job_id == job.job_id
    assert {"port_found", "log_batch"} <= {e.kind for e in events}


def _settings() -> Any:
    from console.settings import Settings

    return Settings()


class GatedProcess:
    """A stand-in pipeline that counts how many jobs run at once."""

    def __init__(self, expected_peak: int) -> None:
        self.running = 0
        self.peak = 0
        self.calls: list[str] = []
        self.expected_peak = expected_peak
        self.reached_peak = asyncio.Event()
        self.gate = asyncio.Event()

    async def __call__(self, job: Job, *, emit: Any, **_: Any) -> CheckResult:
        self.calls.append(job.job_id)
        self.running += 1
        self.peak = max(self.peak, self.running)
        if self.running >= self.expected_peak:
            self.reached_peak.set()
        await self.gate.wait()
        self.running -= 1
        result = CheckResult(
            run_id=f"r-{job.job_id}", verdict=Verdict.PASS, reason="ok", job_id=job.job_id
        )
        emit(VerdictReached(run_id=result.run_id, result=result))
        emit(JobFinished(job_id=job.job_id, run_id=result.run_id, verdict=result.verdict))
        return result


async def _worker(db: Database, slots: int, process: Any, **kwargs: Any) -> Worker:
    queue = EmbeddedQueue(db, drain=True)
    await queue.start()
    bus = EventBus()
    recorder = ListRecorder()
    bus.subscribe(lambda e: record_event(db, recorder, e), critical=True)
    worker = Worker(
        queue,
        Capacity(slots, probe=roomy),
        db=db,
        emit=bus,
        generator_for=lambda job: FailingGenerator(),
        process=process,
        **kwargs,
    )
    worker.recorder = recorder  # type: ignore[attr-defined]
    return worker


async def test_capacity_bounds_concurrency_and_every_job_gets_one_verdict(db: Database) -> None:
    jobs = [make_job(n) for n in range(6)]
    job_store.enqueue(db, jobs)
    process = GatedProcess(expected_peak=2)
    worker = await _worker(db, 2, process)
    run = asyncio.create_task(worker.run())
    await asyncio.wait_for(process.reached_peak.wait(), 10)
    assert process.running == 2 and len(process.calls) == 2  # the third waits for a slot
    process.gate.set()
    await asyncio.wait_for(run, 10)
    assert process.peak == 2
    assert sorted(process.calls) == sorted(j.job_id for j in jobs)
    assert job_store.count_by_state(db) == {"done": 6}
    verdicts = [e for e in worker.recorder.events if isinstance(e, VerdictReached)]  # type: ignore[attr-defined]
    assert len(verdicts) == 6


async def test_a_job_recorded_before_a_crash_is_not_run_again(db: Database) -> None:
    job_store.enqueue(db, [make_job(1), make_job(2)])
    job_store.lease_next(db, "gone-host:1")  # job1 was running in a process that died ...
    result = CheckResult(run_id="r-old", verdict=Verdict.CRASHED, reason="", job_id="job1")
    record_event(db, ListRecorder(), VerdictReached(run_id="r-old", result=result))  # ... after
    process = GatedProcess(expected_peak=1)
    process.gate.set()
    worker = await _worker(db, 2, process)
    await asyncio.wait_for(worker.run(), 10)
    assert process.calls == ["job2"]
    record = job_store.get_job(db, "job1")
    assert record is not None and record.run_id == "r-old"


class RedeliveringQueue:
    """A distributed-style queue that delivers the same job twice."""

    kind = "kafka"

    def __init__(self, job: Job) -> None:
        self.pending = [Delivery(job, token=1), Delivery(job, token=2)]
        self.acked: list[int] = []

    async def start(self) -> None:
        pass

    async def put(self, jobs: object) -> None:
        raise AssertionError("not used")

    async def get(self) -> Delivery | None:
        return self.pending.pop(0) if self.pending else None

    async def close(self) -> None:
        pass

    async def ack(self, delivery: Delivery) -> None:
        self.acked.append(delivery.token)

    async def release(self, delivery: Delivery) -> None:
        raise AssertionError("nothing is abandoned here")


async def test_a_redelivered_job_is_acked_without_running_again(db: Database) -> None:
    queue = RedeliveringQueue(make_job(1))
    process = GatedProcess(expected_peak=1)
    process.gate.set()
    worker = Worker(
        queue,
        Capacity(1, probe=roomy),
        db=db,
        emit=lambda e: None,
        generator_for=lambda job: FailingGenerator(),
        process=process,
    )
    await asyncio.wait_for(worker.run(), 10)
    assert process.calls == ["job1"]
    assert queue.acked == [1, 2]
    assert list(worker.skipped) == ["job1"]


async def test_stop_abandons_running_jobs_back_to_the_queue(db: Database) -> None:
    job_store.enqueue(db, [make_job(1), make_job(2)])
    process = GatedProcess(expected_peak=2)
    worker = await _worker(db, 2, process)
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop, grace=0))
    await asyncio.wait_for(process.reached_peak.wait(), 10)
    stop.set()
    await asyncio.wait_for(run, 10)
    assert job_store.count_by_state(db) == {"queued": 2}
    assert worker.capacity.running == 0


def test_a_second_verdict_for_a_job_is_dropped(db: Database) -> None:
    job_store.enqueue(db, [make_job(1)])
    recorder = ListRecorder()

    def verdict(run_id: str) -> VerdictReached:
        result = CheckResult(run_id=run_id, verdict=Verdict.PASS, reason="", job_id="job1")
        return VerdictReached(run_id=run_id, result=result)

    assert record_event(db, recorder, verdict("r1"))
    assert record_event(db, recorder, verdict("r1"))  # same run: the recorder dedupes
    assert not record_event(db, recorder, verdict("r2"))  # another run of the same job
    assert [e.run_id for e in recorder.events] == ["r1", "r1"]  # type: ignore[union-attr]
    record = job_store.get_job(db, "job1")
    assert record is not None and record.run_id == "r1" and record.state == "done"
