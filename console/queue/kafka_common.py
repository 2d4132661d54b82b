"""What the Kafka backend's two sides share: topic and group names, topic admin, the
producer, and the jobs-topic record codec.

Jobs go to ``verdict.jobs`` (keyed by combination), events to ``verdict.events``; records
that are not valid jobs go to ``verdict.jobs.dlq``.  The worker side is
:mod:`console.queue.kafka`, the console side :mod:`console.queue.kafka_console`.

aiokafka is imported only inside functions (``verdict --help`` stays fast).  The broker need
not support idempotent or transactional producers: neither is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from console.errors import UsageError
from console.model import Job
from console.queue.base import QueueUrl

JOBS_TOPIC = "verdict.jobs"
DLQ_TOPIC = "verdict.jobs.dlq"
EVENTS_TOPIC = "verdict.events"
WORKER_GROUP = "verdict-workers"
CONSOLE_GROUP = "verdict-console"
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class KafkaNames:
    """Topic and group names, with the URL's prefix applied."""

    jobs: str
    dlq: str
    events: str
    worker_group: str
    console_group: str

    @classmethod
    def for_url(cls, url: QueueUrl) -> KafkaNames:
        """The names for ``url`` (``?prefix=P`` is prepended to each)."""
        p = url.prefix
        return cls(
            jobs=p + JOBS_TOPIC,
            dlq=p + DLQ_TOPIC,
            events=p + EVENTS_TOPIC,
            worker_group=p + WORKER_GROUP,
            console_group=p + CONSOLE_GROUP,
        )


class InvalidJobMessage(ValueError):
    """A record on the jobs topic is not a job."""


def decode_job(value: bytes | None) -> Job:
    """Parse a jobs-topic record value.

    Raises:
        InvalidJobMessage: empty, not JSON, or not a valid job.
    """
    if not value:
        raise InvalidJobMessage("empty message")
    try:
        job = Job.model_validate_json(value)
    except (ValidationError, ValueError) as exc:
        raise InvalidJobMessage(" ".join(str(exc).split())[:500]) from exc
    if not job.job_id.strip():
        raise InvalidJobMessage("job_id is empty")
    return job


def new_producer(bootstrap: str) -> Any:
    """An (unstarted) aiokafka producer for ``bootstrap``, sized for job and event records."""
    from aiokafka import AIOKafkaProducer

    # The broker has no idempotent/transactional producer: plain acks=all it is.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        acks="all",
        linger_ms=0,
        max_request_size=MAX_MESSAGE_BYTES,
    )


class BrokerUnavailable(UsageError):
    """The Kafka broker named by ``--queue`` does not answer."""


async def ensure_topics(bootstrap: str, names: Sequence[str], partitions: int) -> None:
    """Create the topics that do not exist yet.

    Every Kafka command starts here, so an unreachable broker is reported here, as one line.

    Raises:
        BrokerUnavailable: the broker at ``bootstrap`` does not answer.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # the one-line error below says it all
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        await admin.close()
        raise BrokerUnavailable(
            f"cannot reach the Kafka broker at {bootstrap} (connection refused or timed out)"
        ) from exc
    finally:
        client_log.setLevel(level)
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name, partitions, 1) for name in missing])
    finally:
        await admin.close()


async def produce_jobs(
    producer: Any, topic: str, jobs: Sequence[Job], *, events: str | None = None
) -> None:
    """Send jobs keyed by combination and wait until the broker has them all; with
    ``events``, also announce each on that topic (``JobQueued``, keyed by job), so every
    console that follows the events keeps the same job ledger, not only the submitter's."""
    from console.events import encode_event
    from console.model import JobQueued

    futures = [
        await producer.send(
            topic,
            job.model_dump_json().encode("utf-8"),
            key=job.combination.key.encode("utf-8"),
        )
        for job in jobs
    ]
    if events is not None:
        for job in jobs:
            futures.append(
                await producer.send(
                    events, encode_event(JobQueued(job=job)), key=job.job_id.encode("utf-8")
                )
            )
    await asyncio.gather(*futures)
