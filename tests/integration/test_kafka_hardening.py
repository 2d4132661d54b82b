"""Adversarial Kafka cases against the loopback broker: oversized events, bad payloads."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from console.events import decode_event
from console.model import CheckResult, LogBatch, LogLine, Verdict, VerdictReached
from console.queue.base import parse_queue_url
from console.queue.kafka import KafkaEventPublisher
from console.queue.kafka_common import MAX_MESSAGE_BYTES, KafkaNames, ensure_topics, new_producer
from tests.support.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]


async def read_until(
    bootstrap: str, topic: str, last: Callable[[bytes], bool], within: float = 30.0
) -> list[bytes]:
    """Every record of ``topic`` up to the first for which ``last`` holds."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
    )
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + within
    try:
        while not (values and last(values[-1])) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                values.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return values


async def test_a_log_burst_larger_than_a_record_reaches_the_events_topic_whole(
    kafka_broker: KafkaBroker, kafka_prefix: str
) -> None:
    names = KafkaNames.for_url(parse_queue_url(kafka_broker.url(kafka_prefix)))
    await ensure_topics(kafka_broker.bootstrap, [names.events], 1)
    producer = new_producer(kafka_broker.bootstrap)
    await producer.start()
    text = "x" * 16_000
    lines = [LogLine(seq=n, ts=0.0, text=f"{n} {text}") for n in range(1, 401)]  # ~6.4 MB
    tail = lines[-50:] * 8
    result = CheckResult(run_id="r1", verdict=Verdict.CRASHED, reason="boom", log_tail=tail)
    try:
        publisher = KafkaEventPublisher(producer, names.events)
        publisher(LogBatch(run_id="r1", lines=lines, truncated=True))
        publisher(VerdictReached(run_id="r1", result=result))
        await publisher.flush()  # a refused record would raise here
        await publisher.close()
    finally:
        await producer.stop()
    values = await read_until(
        kafka_broker.bootstrap, names.events, lambda v: b"verdict_reached" in v
    )
    events = [decode_event(v) for v in values]
    batches = [e for e in events if isinstance(e, LogBatch)]
    assert [line.seq for b in batches for line in b.lines] == list(range(1, 401))
    assert [b.truncated for b in batches][-1] is True and len(batches) > 1
    assert all(len(v) <= MAX_MESSAGE_BYTES for v in values)
    [verdict] = [e for e in events if isinstance(e, VerdictReached)]
    assert verdict.result.reason == "boom" and verdict.result.log_tail[-1] == lines[-1]
