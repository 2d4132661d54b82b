"""The embedded (SQLite-backed) queue: order, waiting, release, restart survival."""

from __future__ import annotations

import asyncio
from pathlib import Path

from console.model import Combination, Job
from console.queue.base import parse_queue_url
from console.queue.embedded import EmbeddedQueue
from storage import jobs as job_store
from storage.db import Database


def make_job(n: int) -> Job:
    return Job(job_id=f"job{n}", combination=Combination(spec="s", prompt=f"v{n}", model="m"))


async def test_jobs_come_out_in_order_and_drain_ends(db: Database) -> None:
    queue = EmbeddedQueue(db, drain=True)
    await queue.start()
    await queue.put([make_job(1), make_job(2)])
    got = [await queue.get(), await queue.get()]
    assert [d.job.job_id for d in got if d] == ["job1", "job2"]
    assert await queue.get() is None


async def test_a_waiting_get_wakes_on_put(db: Database) -> None:
    queue = EmbeddedQueue(db, drain=False, poll_interval=30)
    await queue.start()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    await queue.put([make_job(1)])
    delivery = await asyncio.wait_for(getter, 5)
    assert delivery is not None and delivery.job.job_id == "job1"
    await queue.close()
    assert await queue.get() is None


async def test_released_job_is_delivered_again(db: Database) -> None:
    queue = EmbeddedQueue(db)
    await queue.start()
    await queue.put([make_job(1)])
    delivery = await queue.get()
    assert delivery is not None
    await queue.release(delivery)
    again = await queue.get()
    assert again is not None and again.job.job_id == "job1"


async def test_queued_and_in_flight_jobs_survive_a_restart(db_path: Path) -> None:
    first = Database(db_path)
    queue = EmbeddedQueue(first, owner="gone-host:1")  # a process that no longer exists
    await queue.start()
    await queue.put([make_job(1), make_job(2), make_job(3)])
    in_flight = await queue.get()
    assert in_flight is not None and in_flight.job.job_id == "job1"
    first.close()  # the process "dies" without acking

    second = Database(db_path)
    restarted = EmbeddedQueue(second)
    await restarted.start()
    assert restarted.recovered == 1
    ids = []
    while (delivery := await restarted.get()) is not None:
        ids.append(delivery.job.job_id)
    assert sorted(ids) == ["job1", "job2", "job3"]
    assert job_store.count_by_state(second) == {"leased": 3}
    second.close()


def test_queue_urls() -> None:
    assert parse_queue_url(None).kind == "embedded"
    url = parse_queue_url("kafka://127.0.0.1:9092?prefix=t1.")
    assert (url.kind, url.bootstrap, url.prefix) == ("kafka", "127.0.0.1:9092", "t1.")
    assert url.text == "kafka://127.0.0.1:9092?prefix=t1."
    for bad in ("redis://x:1", "kafka://", "kafka://host", "kafka://h:99999", "kafka://h:1?x=1"):
        try:
            parse_queue_url(bad)
        except ValueError as exc:
            assert "--queue" in str(exc)
        else:
            raise AssertionError(f"{bad} accepted")
