"""The Kafka backend, console side: queue jobs and record the events workers publish.

The console reads every partition of the events topic itself (no group rebalancing) and
keeps its position in the console group's committed offsets, committed only after the
events are recorded, so nothing is lost between runs.

aiokafka is imported only inside this module's functions (``verdict --help`` stays fast).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from console.events import EventDecodeError, decode_event
from console.model import Event, Job, JobFinished, VerdictReached
from console.queue.base import QueueUrl
from console.queue.kafka_common import (
    MAX_MESSAGE_BYTES,
    KafkaNames,
    ensure_topics,
    new_producer,
    produce_jobs,
)
from console.settings import QueueSettings
from storage import jobs as job_store

if TYPE_CHECKING:
    from storage.db import Database

log = logging.getLogger(__name__)


async def submit_and_wait(
    jobs: Sequence[Job],
    *,
    url: QueueUrl,
    db: Database,
    wait: bool = True,
    on_event: Callable[[Event], None] | None = None,
    origin: str = "run",
    settings: QueueSettings | None = None,
    stop: asyncio.Event | None = None,
) -> bool:
    """Queue ``jobs`` on Kafka and, with ``wait``, record events until each has a verdict.

    Every event read from the events topic is recorded (not only this run's), and the
    console group's offsets are committed after recording, so nothing is lost between
    runs.  Returns True when stopped (SIGINT/SIGTERM) before every verdict came back.
    """
    from console.signals import StopOnSignals

    settings = settings or QueueSettings()
    names = KafkaNames.for_url(url)
    await ensure_topics(
        url.bootstrap, [names.jobs, names.dlq, names.events], settings.kafka_partitions
    )
    already = {
        r.job_id for r in job_store.jobs_by_id(db, [j.job_id for j in jobs]) if r.queue == "kafka"
    }
    job_store.enqueue(db, jobs, queue="kafka", origin=origin)
    producer = new_producer(url.bootstrap)
    await producer.start()
    try:
        await produce_jobs(producer, names.jobs, [j for j in jobs if j.job_id not in already])
    finally:
        await producer.stop()
    if not wait:
        return False
    stop = stop or asyncio.Event()
    with StopOnSignals(stop):
        await consume_events(
            url,
            db,
            until_done=[j.job_id for j in jobs],
            on_event=on_event,
            stop=stop,
        )
    return stop.is_set()


def console_group(names: KafkaNames, db: Database) -> str:
    """The consumer group whose committed offsets are this database's place in the events
    topic: one per database file, so a restarted console resumes where its records end,
    while another console (another file) reads every event for itself."""
    where = str(db.path.resolve()) if db.path is not None else "memory"
    return f"{names.console_group}.{hashlib.sha256(where.encode()).hexdigest()[:12]}"


async def consume_events(
    url: QueueUrl,
    db: Database,
    *,
    until_done: Sequence[str] = (),
    on_event: Callable[[Event], None] | None = None,
    stop: asyncio.Event | None = None,
    poll_ms: int = 200,
    follow: bool = False,
    record: Callable[[Event], object] | None = None,
    before_commit: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Record events from the events topic into ``db`` until ``until_done`` have verdicts.

    With ``follow`` it goes on until ``stop`` is set (a console watching remote workers).
    ``record`` replaces the direct write (the engine hands events to its recording
    writer) and ``before_commit`` is awaited before offsets are committed, so an offset is
    committed only once its events are in the database.  The console reads every partition
    itself (no group rebalancing) and keeps its position in the committed offsets of its
    database's own group (:func:`console_group`).  Undecodable events are logged and
    skipped.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from console.recorder import Recorder
    from console.worker import record_event

    names = KafkaNames.for_url(url)
    stop = stop or asyncio.Event()
    pending = {
        job_id
        for job_id in until_done
        if (r := job_store.get_job(db, job_id)) is None or r.state != job_store.DONE
    }
    if not pending and not follow:
        return
    if record is None:
        recorder = Recorder(db)

        def record(event: Event) -> object:
            return record_event(db, recorder, event)

    consumer = AIOKafkaConsumer(
        bootstrap_servers=url.bootstrap,
        group_id=console_group(names, db),
        client_id="verdict-console",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = consumer.partitions_for_topic(names.events) or {0}
        consumer.assign([TopicPartition(names.events, p) for p in sorted(partitions)])
        while (pending or follow) and not stop.is_set():
            batches = await consumer.getmany(timeout_ms=poll_ms)
            finished: list[str] = []
            for tp, records in batches.items():
                for message in records:
                    try:
                        event = decode_event(message.value or b"")
                    except EventDecodeError as exc:
                        log.warning(
                            "skipped undecodable event at %s[%s]@%s: %s",
                            tp.topic,
                            tp.partition,
                            message.offset,
                            exc,
                        )
                        continue
                    record(event)
                    if on_event is not None:
                        on_event(event)
                    if isinstance(event, VerdictReached):
                        finished.append(event.result.job_id or "")
                    elif isinstance(event, JobFinished):
                        finished.append(event.job_id)
            if not batches:
                continue
            if before_commit is not None:
                await before_commit()
            for job_id in finished:
                if job_id in pending:
                    r = job_store.get_job(db, job_id)
                    if r is not None and r.state == job_store.DONE:
                        pending.discard(job_id)
            await consumer.commit({tp: records[-1].offset + 1 for tp, records in batches.items()})
    finally:
        await consumer.stop()


class KafkaFigures:
    """Kafka's side of the queue: jobs not yet taken by the workers, and dead letters."""

    def __init__(self, lag: int, dlq: int) -> None:
        self.lag = lag
        self.dlq = dlq


class KafkaQueueWatcher:
    """Reads the workers' consumer lag on the jobs topic and the size of the DLQ.

    One long-lived consumer (no group membership: it only asks for offsets), so a console
    can ask every few seconds without joining or disturbing the workers' group.
    """

    def __init__(self, url: QueueUrl) -> None:
        self.url = url
        self.names = KafkaNames.for_url(url)
        self._consumer: Any = None

    async def figures(self) -> KafkaFigures:
        """Lag (end offsets minus the workers' committed offsets) and DLQ records."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.url.bootstrap,
                group_id=self.names.worker_group,  # committed() reads this group's offsets
                client_id="verdict-console-lag",
                enable_auto_commit=False,
            )
            await consumer.start()
            self._consumer = consumer
        consumer = self._consumer
        jobs = [
            TopicPartition(self.names.jobs, p)
            for p in sorted(consumer.partitions_for_topic(self.names.jobs) or ())
        ]
        dlq = [
            TopicPartition(self.names.dlq, p)
            for p in sorted(consumer.partitions_for_topic(self.names.dlq) or ())
        ]
        if not jobs:
            await consumer.topics()
        ends = await consumer.end_offsets(jobs + dlq) if jobs or dlq else {}
        lag = 0
        for tp in jobs:
            committed = await consumer.committed(tp)
            lag += max(ends.get(tp, 0) - (committed or 0), 0)
        dead = sum(ends.get(tp, 0) for tp in dlq)
        return KafkaFigures(lag, dead)

    async def close(self) -> None:
        """Stop the consumer."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
