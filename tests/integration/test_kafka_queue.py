"""The Kafka backend against a real Kafka-compatible broker (Tansu on loopback).

The job pipeline is replaced by a stand-in here (the queue is the subject); the real
pipeline over Kafka is covered by test_kafka_workers.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from console.capacity import Capacity, Headroom
from console.model import CheckResult, Combination, Job, Verdict
from console.queue.base import parse_queue_url
from console.queue.kafka import KafkaJobQueue
from console.queue.kafka_common import ensure_topics
from console.settings import QueueSettings
from console.worker import Worker
from storage.db import Database
from tests.support.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]

PARTITIONS = 4


def settings(**overrides: Any) -> QueueSettings:
    values: dict[str, Any] = {
        "kafka_partitions": PARTITIONS,
        "kafka_session_timeout_ms": 6000,
        "kafka_heartbeat_interval_ms": 500,
        "kafka_poll_ms": 100,
    }
    values.update(overrides)
    return QueueSettings(**values)


def make_job(n: int) -> Job:
    return Job(job_id=f"job{n}", combination=Combination(spec="s", prompt=f"v{n}", model="m"))


def roomy() -> Headroom:
    return Headroom(free_memory_mb=1e6, cpu_percent=0)


async def eventually(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class Raw:
    """A plain producer for writing exactly the records a test wants."""

    def __init__(self, broker: KafkaBroker) -> None:
        from aiokafka import AIOKafkaProducer

        self.producer = AIOKafkaProducer(
            bootstrap_servers=broker.bootstrap, enable_idempotence=False, acks="all"
        )

    async def send(self, topic: str, value: bytes, *, partition: int, key: bytes = b"k") -> None:
        await self.producer.send_and_wait(topic, value, key=key, partition=partition)


@pytest.fixture
async def raw(kafka_broker: KafkaBroker) -> AsyncIterator[Raw]:
    producer = Raw(kafka_broker)
    await producer.producer.start()
    yield producer
    await producer.producer.stop()


async def started(broker: KafkaBroker, prefix: str, queue_settings: QueueSettings) -> KafkaJobQueue:
    queue = KafkaJobQueue(parse_queue_url(broker.url(prefix)), queue_settings)
    await queue.start()
    return queue


class Recording:
    """A stand-in pipeline: records what ran where, optionally held at a gate."""

    def __init__(self, hold: bool = False, duration: float = 0.0) -> None:
        self.hold = hold
        self.duration = duration
        self.running = 0
        self.peak = 0
        self.ran: list[tuple[str, str]] = []  # (worker name, job id)
        self.started = asyncio.Queue[str]()
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, job_id: str) -> asyncio.Event:
        return self.gates.setdefault(job_id, asyncio.Event())

    async def __call__(self, job: Job, *, worker: str = "", **_: Any) -> CheckResult:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.started.put_nowait(job.job_id)
        try:
            if self.hold:
                await self.gate(job.job_id).wait()
            if self.duration:
                await asyncio.sleep(self.duration)  # the job's own work takes this long
        finally:
            self.running -= 1
        self.ran.append((worker, job.job_id))
        return CheckResult(run_id=f"r-{job.job_id}", verdict=Verdict.PASS, reason="ok")


def make_worker(
    queue: KafkaJobQueue, db: Database, slots: int, process: Recording, name: str = "w"
) -> Worker:
    return Worker(
        queue,
        Capacity(slots, probe=roomy),
        db=db,
        emit=lambda e: None,
        generator_for=lambda job: None,  # type: ignore[arg-type,return-value]
        process=process,
        name=name,
    )


async def committed(queue: KafkaJobQueue, partition: int) -> int | None:
    from aiokafka import TopicPartition

    return await queue.consumer.committed(TopicPartition(queue.names.jobs, partition))


async def broker_commit_reaches(
    queue: KafkaJobQueue, partition: int, offset: int, within: float = 10.0
) -> int | None:
    """Poll the broker until the group's committed offset is ``offset``; return the last seen.

    The queue marks an offset finished before its commit round-trip ends, so the broker is
    asked directly rather than the queue's own bookkeeping.
    """
    deadline = time.monotonic() + within
    seen = await committed(queue, partition)
    while seen != offset and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        seen = await committed(queue, partition)
    return seen


async def test_poison_messages_go_to_the_dlq_and_consumption_continues(
    kafka_broker: KafkaBroker, kafka_prefix: str, raw: Raw
) -> None:
    queue = await started(kafka_broker, kafka_prefix, settings())
    try:
        await raw.send(queue.names.jobs, b"\x00not json", partition=0)
        await raw.send(queue.names.jobs, b'{"job_id": "x"}', partition=0)  # no combination
        await raw.send(queue.names.jobs, make_job(1).model_dump_json().encode(), partition=0)
        delivery = await asyncio.wait_for(queue.get(), 30)
        assert delivery is not None and delivery.job.job_id == "job1"
        await queue.ack(delivery)
        assert queue.dead_lettered == 2
        assert await committed(queue, 0) == 3
    finally:
        await queue.close()

    from aiokafka import AIOKafkaConsumer

    reader = AIOKafkaConsumer(
        queue.names.dlq, bootstrap_servers=kafka_broker.bootstrap, auto_offset_reset="earliest"
    )
    await reader.start()
    try:
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while len(records) < 2 and time.monotonic() < deadline:
            for batch in (await reader.getmany(timeout_ms=200)).values():
                records.extend(batch)
    finally:
        await reader.stop()
    assert [r.value for r in records] == [b"\x00not json", b'{"job_id": "x"}']
    for offset, record in enumerate(records):
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["origin.topic"] == queue.names.jobs
        assert headers["origin.partition"] == "0"
        assert headers["origin.offset"] == str(offset)
        assert headers["error"]


async def test_capacity_one_never_runs_two_jobs_and_pauses_partitions(
    kafka_broker: KafkaBroker, kafka_prefix: str, db: Database, raw: Raw
) -> None:
    queue = await started(kafka_broker, kafka_prefix, settings())
    process = Recording(hold=True)
    worker = make_worker(queue, db, 1, process)
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop))
    try:
        for n in range(3):
            await raw.send(
                queue.names.jobs, make_job(n).model_dump_json().encode(), partition=n % PARTITIONS
            )
        for _ in range(3):
            job_id = await asyncio.wait_for(process.started.get(), 30)
            assert process.running == 1
            await eventually(lambda: queue.paused, 10)  # full: every partition paused
            process.gate(job_id).set()
        await eventually(lambda: len(process.ran) == 3)
        assert process.peak == 1
        assert sorted(job_id for _, job_id in process.ran) == ["job0", "job1", "job2"]
    finally:
        stop.set()
        await run
        await queue.close()


async def test_a_job_longer_than_max_poll_interval_causes_no_rebalance(
    kafka_broker: KafkaBroker, kafka_prefix: str, db: Database, raw: Raw
) -> None:
    max_poll_ms = 1000
    queue = await started(
        kafka_broker, kafka_prefix, settings(kafka_max_poll_interval_ms=max_poll_ms)
    )
    process = Recording(duration=3 * max_poll_ms / 1000)
    worker = make_worker(queue, db, 1, process)
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop))
    try:
        await raw.send(queue.names.jobs, make_job(1).model_dump_json().encode(), partition=1)
        await eventually(lambda: len(process.ran) == 1, 60)
        assert await broker_commit_reaches(queue, 1, 1) == 1
        assert queue.assignments == 1 and queue.revocations == 0
    finally:
        stop.set()
        await run
        await queue.close()


async def test_two_workers_share_the_partitions(
    kafka_broker: KafkaBroker, kafka_prefix: str, db: Database, raw: Raw
) -> None:
    url = parse_queue_url(kafka_broker.url(kafka_prefix))
    await ensure_topics(url.bootstrap, [f"{kafka_prefix}verdict.jobs"], PARTITIONS)
    queues = [await started(kafka_broker, kafka_prefix, settings()) for _ in range(2)]
    process = Recording()
    stop = asyncio.Event()
    runs = [
        asyncio.create_task(make_worker(q, db, 2, process, name=f"w{i}").run(stop))
        for i, q in enumerate(queues)
    ]
    try:

        def split() -> bool:
            a, b = (set(q.consumer.assignment()) for q in queues)
            return bool(a) and bool(b) and not a & b and len(a | b) == PARTITIONS

        await eventually(split, 60)
        for n in range(8):
            await raw.send(
                queues[0].names.jobs,
                make_job(n).model_dump_json().encode(),
                partition=n % PARTITIONS,
            )
        await eventually(lambda: len(process.ran) == 8, 60)
        assert sorted(job_id for _, job_id in process.ran) == [f"job{n}" for n in range(8)]
        assert {name for name, _ in process.ran} == {"w0", "w1"}
    finally:
        stop.set()
        await asyncio.gather(*runs)
        for q in queues:
            await q.close()
