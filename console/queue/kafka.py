"""The Kafka backend, worker side: the jobs-topic consumer and the events publisher.

Workers form one consumer group on the jobs topic (messages keyed by combination).  A
record is committed only after its job's verdict is durably on the events topic
(at-least-once); a redelivered job is recognised by its id and not run twice.  Records that
are not valid jobs go to ``verdict.jobs.dlq`` with the error and their origin in headers.

Consumption follows capacity: records are fetched only while a worker is waiting for a job
(a slot is free); otherwise every assigned partition is paused — but the consumer keeps
polling, so a long job never makes it leave the group.  Pauses are re-applied after a
rebalance and finished offsets are committed when partitions are revoked.

Names, topics, the producer and the job codec are in :mod:`console.queue.kafka_common`; the
console side (submitting jobs, recording events) is in :mod:`console.queue.kafka_console`.
aiokafka is imported only inside this module's functions (``verdict --help`` stays fast).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from console.events import encode_event
from console.model import (
    Event,
    GenerationFinished,
    Job,
    JobFinished,
    JobQueued,
    LogBatch,
    VerdictReached,
)
from console.queue.base import Delivery, QueueUrl
from console.queue.kafka_common import (
    MAX_MESSAGE_BYTES,
    InvalidJobMessage,
    KafkaNames,
    decode_job,
    ensure_topics,
    new_producer,
    produce_jobs,
)
from console.settings import QueueSettings

log = logging.getLogger(__name__)

# Well under the producer's and the broker's record limit (MAX_MESSAGE_BYTES).
EVENT_LIMIT_BYTES = MAX_MESSAGE_BYTES // 4


class KafkaEventPublisher:
    """An ``emit`` callable that sends events, in order, to the events topic.

    ``emit`` is synchronous (the engine calls it from its own code); events are queued and
    sent by one task, so their order is kept.  :meth:`flush` waits until the broker has
    acknowledged everything emitted so far and raises if a send failed.
    """

    def __init__(self, producer: Any, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self._pending: asyncio.Queue[Event] = asyncio.Queue()
        self._futures: list[asyncio.Future[Any]] = []
        self._sender: asyncio.Task[None] | None = None

    def __call__(self, event: Event) -> None:
        """Queue ``event`` for sending."""
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_all())
        self._pending.put_nowait(event)

    async def _send_all(self) -> None:
        while True:
            event = await self._pending.get()
            try:
                key = _event_key(event)
                for value in encode_within(event, EVENT_LIMIT_BYTES):
                    future = await self.producer.send(
                        self.topic, value, key=key.encode("utf-8") if key else None
                    )
                    self._futures.append(future)
            except Exception as exc:
                failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                failed.set_exception(exc)
                self._futures.append(failed)
            finally:
                self._pending.task_done()

    async def flush(self) -> None:
        """Wait until every emitted event is on the broker; raise if one failed."""
        await self._pending.join()
        futures, self._futures = self._futures, []
        if futures:
            await asyncio.gather(*futures)

    async def close(self) -> None:
        """Flush and stop the sender task."""
        try:
            await self.flush()
        finally:
            if self._sender is not None:
                self._sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sender


def encode_within(event: Event, limit: int) -> list[bytes]:
    """``event`` as one or more records of at most ``limit`` bytes each, in order.

    A burst of log output can make one batch larger than a broker accepts, and a record
    that is refused would fail the job on every redelivery.  A batch is split by lines;
    a verdict's log tail is shortened from its oldest line; a generation's raw responses
    and file paths are cut further.
    """
    value = encode_event(event)
    if len(value) <= limit:
        return [value]
    if isinstance(event, LogBatch) and len(event.lines) > 1:
        half = len(event.lines) // 2
        first = event.model_copy(update={"lines": event.lines[:half], "truncated": False})
        second = event.model_copy(update={"lines": event.lines[half:]})
        return encode_within(first, limit) + encode_within(second, limit)
    if isinstance(event, VerdictReached) and event.result.log_tail:
        result = event.result.model_copy(update={"log_tail": event.result.log_tail[1:]})
        return encode_within(event.model_copy(update={"result": result}), limit)
    if isinstance(event, GenerationFinished):
        from console.generate.record import shrink

        # Capped when built; a record still too big loses half of each text until it fits.
        smaller = shrink(event)
        if len(encode_event(smaller)) < len(value):
            return encode_within(smaller, limit)
    return [value]  # nothing left to shorten: the broker has the last word


def _event_key(event: Event) -> str | None:
    if isinstance(event, JobFinished):
        return event.job_id
    if isinstance(event, JobQueued):
        return event.job.job_id
    return getattr(event, "run_id", None)


class _Offsets:
    """Offsets in flight per partition; what may be committed once some are done."""

    def __init__(self) -> None:
        self.inflight: dict[Any, dict[int, bool]] = {}
        self.committed: dict[Any, int] = {}

    def track(self, tp: Any, offset: int) -> None:
        self.inflight.setdefault(tp, {})[offset] = False

    def done(self, tp: Any, offset: int) -> int | None:
        """Mark done; returns the new commit position of ``tp`` if it moved."""
        offsets = self.inflight.get(tp)
        if offsets is None or offset not in offsets:
            return None  # partition revoked meanwhile
        offsets[offset] = True
        position = None
        for off in sorted(offsets):
            if not offsets[off]:
                break
            del offsets[off]
            position = off + 1
        if position is not None:
            self.committed[tp] = position
        return position

    def forget(self, tps: Any) -> None:
        for tp in tps:
            self.inflight.pop(tp, None)
            self.committed.pop(tp, None)


class KafkaJobQueue:
    """A worker's view of the jobs topic (see the module docstring)."""

    kind = "kafka"

    def __init__(
        self,
        url: QueueUrl,
        settings: QueueSettings | None = None,
        *,
        client_id: str = "verdict-worker",
    ) -> None:
        self.url = url
        self.names = KafkaNames.for_url(url)
        self.settings = settings or QueueSettings()
        self.client_id = client_id
        self.consumer: Any = None
        self.producer: Any = None
        self.assignments = 0  # partition assignments seen (1 + rebalances)
        self.revocations = 0
        self.dead_lettered = 0
        self._offsets = _Offsets()
        self._ready: asyncio.Queue[Delivery] = asyncio.Queue()
        self._waiting = 0
        self._want = asyncio.Event()
        self._closed = False
        self._poller: asyncio.Task[None] | None = None
        self._commit_lock = asyncio.Lock()
        self._assigned = asyncio.Event()

    @property
    def paused(self) -> bool:
        """Whether every assigned partition is paused right now."""
        if self.consumer is None:
            return False
        assigned = self.consumer.assignment()
        return bool(assigned) and set(self.consumer.paused()) >= set(assigned)

    async def start(self) -> None:
        """Create topics, connect, join the worker group and start polling."""
        from aiokafka import AIOKafkaConsumer

        s = self.settings
        await ensure_topics(
            self.url.bootstrap,
            [self.names.jobs, self.names.dlq, self.names.events],
            s.kafka_partitions,
        )
        self.producer = new_producer(self.url.bootstrap)
        await self.producer.start()
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.url.bootstrap,
            group_id=self.names.worker_group,
            client_id=self.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=s.kafka_session_timeout_ms,
            heartbeat_interval_ms=s.kafka_heartbeat_interval_ms,
            max_poll_interval_ms=s.kafka_max_poll_interval_ms,
            rebalance_timeout_ms=max(s.kafka_session_timeout_ms, 5_000),
            max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        )
        await self.consumer.start()
        self.consumer.subscribe([self.names.jobs], listener=self._listener())
        self._poller = asyncio.create_task(self._poll_loop(), name="kafka-jobs-poll")

    def _listener(self) -> Any:
        from aiokafka import ConsumerRebalanceListener

        queue = self

        class Listener(ConsumerRebalanceListener):
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await queue._on_revoked(revoked)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                queue.assignments += 1
                queue._apply_pause()
                if assigned:
                    queue._assigned.set()

        return Listener()

    async def wait_assigned(self) -> None:
        """Wait until this worker has been given partitions (it joined the group)."""
        await self._assigned.wait()

    async def _on_revoked(self, revoked: Any) -> None:
        revoked = set(revoked)
        if not revoked:
            return
        self.revocations += 1
        # Finished offsets first, so the next owner does not run those jobs again.
        positions = {tp: pos for tp, pos in self._offsets.committed.items() if tp in revoked}
        if positions:
            with contextlib.suppress(Exception):
                await self.consumer.commit(positions)
        self._offsets.forget(revoked)
        # Jobs fetched but not started belong to the next owner now.
        kept = []
        while not self._ready.empty():
            delivery = self._ready.get_nowait()
            if delivery.token[0] not in revoked:
                kept.append(delivery)
        for delivery in kept:
            self._ready.put_nowait(delivery)

    def _wanted(self) -> int:
        return self._waiting - self._ready.qsize()

    def _apply_pause(self) -> None:
        assigned = self.consumer.assignment()
        if not assigned:
            return
        if self._wanted() > 0:
            self.consumer.resume(*assigned)
        else:
            self.consumer.pause(*assigned)

    async def _poll_loop(self) -> None:
        poll_ms = self.settings.kafka_poll_ms
        while not self._closed:
            self._apply_pause()
            want = self._wanted()
            self._want.clear()
            fetch = asyncio.ensure_future(
                self.consumer.getmany(timeout_ms=poll_ms, max_records=max(want, 1))
            )
            if want <= 0:
                # Paused: keep polling (group membership) but wake as soon as a slot frees.
                waker = asyncio.ensure_future(self._want.wait())
                await asyncio.wait({fetch, waker}, return_when=asyncio.FIRST_COMPLETED)
                waker.cancel()
                if not fetch.done():
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await fetch
                    continue
            try:
                batches = await fetch
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._closed:
                    return
                log.exception("polling %s failed; retrying", self.names.jobs)
                await asyncio.sleep(0.5)
                continue
            for tp, records in batches.items():
                for record in records:
                    await self._accept(tp, record)

    async def _accept(self, tp: Any, record: Any) -> None:
        self._offsets.track(tp, record.offset)
        try:
            job = decode_job(record.value)
        except InvalidJobMessage as exc:
            await self._dead_letter(tp, record, str(exc))
            await self._done(tp, record.offset)
            return
        self._ready.put_nowait(Delivery(job, token=(tp, record.offset)))

    async def _dead_letter(self, tp: Any, record: Any, error: str) -> None:
        headers = [
            ("error", error.encode("utf-8")),
            ("origin.topic", tp.topic.encode("utf-8")),
            ("origin.partition", str(tp.partition).encode("ascii")),
            ("origin.offset", str(record.offset).encode("ascii")),
        ]
        await self.producer.send_and_wait(
            self.names.dlq, record.value or b"", key=record.key, headers=headers
        )
        self.dead_lettered += 1
        log.warning(
            "%s[%s]@%s -> %s: %s", tp.topic, tp.partition, record.offset, self.names.dlq, error
        )

    async def _done(self, tp: Any, offset: int) -> None:
        position = self._offsets.done(tp, offset)
        if position is None:
            return
        async with self._commit_lock:
            if tp in self.consumer.assignment():
                await self.consumer.commit({tp: position})

    async def put(self, jobs: Sequence[Job]) -> None:
        """Send jobs to the jobs topic."""
        await produce_jobs(self.producer, self.names.jobs, jobs)

    async def get(self) -> Delivery | None:
        """The next job; fetched only now that a worker is waiting for it."""
        if self._closed:
            return None
        self._waiting += 1
        self._want.set()
        getter = asyncio.ensure_future(self._ready.get())
        try:
            while not getter.done():
                if self._closed:
                    getter.cancel()
                    return None
                await asyncio.wait({getter}, timeout=0.5)
            return getter.result()
        finally:
            self._waiting -= 1
            if not getter.done():
                getter.cancel()

    async def ack(self, delivery: Delivery) -> None:
        """Commit the record (and any finished ones before it)."""
        tp, offset = delivery.token
        await self._done(tp, offset)

    async def release(self, delivery: Delivery) -> None:
        """Leave the record uncommitted: it is delivered again after a restart/rebalance."""

    async def close(self) -> None:
        """Commit what is finished, leave the group and disconnect."""
        self._closed = True
        self._want.set()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                positions = dict(self._offsets.committed)
                if positions:
                    await self.consumer.commit(positions)
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()
