"""The engine object on its own: submit, rerun, cancel, sandboxes, live state, recording."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from console.engine import Engine
from console.engine.views import matrix_state
from console.engine.writer import RecordingError
from console.matrix import load_matrix
from console.model import Event, ProcessStarted, StageChanged, VerdictReached
from console.queue.base import parse_queue_url
from console.settings import Settings
from storage import jobs as job_store
from storage import runs
from storage.db import Database
from tests.support.kafka_broker import KafkaBroker

FIXTURES = Path(__file__).parent.parent / "fixtures" / "queue"

pytestmark = pytest.mark.timeout(120)


async def until(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Wait for ``condition`` on the loop (no fixed sleeps: a deadline and short polls)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)


async def send_raw(bootstrap: str, topic: str, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, partition=0)
    finally:
        await producer.stop()


def final_cells(db: Database) -> dict[str, tuple]:
    return {
        c.key: (c.attempt, c.run_id, c.status, c.verdict) for c in matrix_state(db)
    }


def live_cells(engine: Engine) -> dict[str, tuple]:
    return {
        c.key: (c.attempt, c.run_id, c.status, c.verdict) for c in engine.live.cells.values()
    }


async def test_a_matrix_and_a_rerun_submitted_while_it_runs(db: Database) -> None:
    engine = await Engine(Settings(), db, slots=2).start()
    try:
        jobs = await engine.submit_matrix(load_matrix(FIXTURES / "quick.toml"))
        assert len(jobs) == 4
        first_verdict = asyncio.get_running_loop().create_future()

        def on_event(event: Event) -> None:
            if isinstance(event, VerdictReached) and not first_verdict.done():
                first_verdict.set_result(event.run_id)

        engine.subscribe(on_event)
        run_id = await asyncio.wait_for(first_verdict, 60)
        rerun = await engine.rerun(run_id)  # while the others still run
        assert rerun.rerun_of == run_id and rerun.attempt == 2
        assert await engine.wait_done([j.job_id for j in [*jobs, rerun]])
    finally:
        await engine.stop()
    cells = final_cells(db)
    assert cells[rerun.combination.key][0] == 2
    assert {c[2] for c in cells.values()} == {"done"}
    # What the events said is what the database says.
    assert live_cells(engine) == cells
    assert runs.get_run(db, cells[rerun.combination.key][1]).rerun_of == run_id  # type: ignore[union-attr]


async def test_cancel_ends_one_run_as_aborted_and_the_others_finish(
    db: Database, tmp_path: Path
) -> None:
    engine = await Engine(Settings(), db, slots=3).start()
    started: dict[str, int] = {}

    def on_event(event: Event) -> None:
        if isinstance(event, ProcessStarted) and event.pid:
            started[event.run_id] = event.pid

    engine.subscribe(on_event)
    try:
        slow = await engine.submit_matrix(load_matrix(FIXTURES / "slow.toml"))
        quick = await engine.submit_matrix(load_matrix(FIXTURES / "quick.toml"))
        await until(lambda: any(b.combination and b.combination.spec == "slow" and b.pid
                                for b in engine.sandboxes()))
        (box,) = [b for b in engine.sandboxes() if b.combination and b.combination.spec == "slow"]
        pid = box.pid
        assert pid is not None and psutil.pid_exists(pid)
        assert await engine.cancel(box.run_id)
        assert not await engine.cancel("no-such-run")
        assert await engine.wait_done([j.job_id for j in [*slow, *quick]])
    finally:
        await engine.stop()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    record = runs.get_run(db, box.run_id)
    assert record is not None and record.status == "aborted"
    assert job_store.get_job(db, slow[0].job_id).verdict == job_store.ABORTED  # type: ignore[union-attr]
    verdicts = {job_store.get_job(db, j.job_id).verdict for j in quick}  # type: ignore[union-attr]
    assert None not in verdicts and job_store.ABORTED not in verdicts
    assert final_cells(db)[slow[0].combination.key][2] == "aborted"
    assert live_cells(engine) == final_cells(db)
    assert not engine.sandboxes()


async def test_sandboxes_are_listed_while_they_run_and_gone_after(db: Database) -> None:
    engine = await Engine(Settings(), db, slots=1).start()
    seen_stages: list[str] = []

    def on_event(event: Event) -> None:
        if isinstance(event, StageChanged) and event.status == "running":
            seen_stages.append(event.name)

    engine.subscribe(on_event)
    try:
        jobs = await engine.submit_matrix(load_matrix(FIXTURES / "slow.toml"))
        await until(lambda: bool(engine.sandboxes()) and engine.sandboxes()[0].pid is not None)
        (box,) = engine.sandboxes()
        assert box.combination is not None and box.combination.key == "slow/v1/m1"
        assert psutil.pid_exists(box.pid)  # type: ignore[arg-type]
        assert box.age() >= 0
        from console.engine import sandbox_usage

        usage = await sandbox_usage(engine.sandboxes())
        assert usage[box.run_id][1] > 0  # RSS of a live tree
        assert await engine.wait_done([j.job_id for j in jobs])
        await until(lambda: not engine.sandboxes())
    finally:
        await engine.stop()
    assert "port" in seen_stages


async def test_the_event_loop_never_stalls_while_a_matrix_runs(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every callback the loop runs is timed: wall time, and the loop thread's CPU time
    # (which a busy machine's scheduling cannot inflate).
    worst = {"wall": 0.0, "cpu": 0.0, "wall_of": "", "cpu_of": ""}
    original = asyncio.events.Handle._run

    def name(handle: asyncio.events.Handle) -> str:
        owner = getattr(getattr(handle, "_callback", None), "__self__", None)
        if isinstance(owner, asyncio.Task):
            return f"task {owner.get_coro()!r}"[:160]
        return repr(handle)[:160]

    def timed(handle: asyncio.events.Handle) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        original(handle)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        if wall > worst["wall"]:
            worst["wall"], worst["wall_of"] = wall, name(handle)
        if cpu > worst["cpu"]:
            worst["cpu"], worst["cpu_of"] = cpu, name(handle)

    monkeypatch.setattr(asyncio.events.Handle, "_run", timed)
    engine = await Engine(Settings(), db, slots=4).start()
    try:
        jobs = await engine.submit_matrix(load_matrix(FIXTURES / "quick.toml"))
        assert await engine.wait_done([j.job_id for j in jobs])
    finally:
        await engine.stop()
    print(
        f"longest callback: {worst['wall'] * 1000:.1f} ms wall ({worst['wall_of']}), "
        f"{worst['cpu'] * 1000:.1f} ms CPU ({worst['cpu_of']})"
    )
    assert worst["cpu"] < 0.020, f"a callback computed for {worst['cpu'] * 1000:.1f} ms"
    # Waiting (I/O, locks) shows only in wall time; a loaded machine stretches it, so the
    # bound is looser, yet a database write or a file copy on the loop still breaks it.
    assert worst["wall"] < 0.100, f"a callback blocked for {worst['wall'] * 1000:.1f} ms"


async def test_a_verdict_that_cannot_be_recorded_is_not_reported_as_recorded(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(database: Database, result: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(runs, "record_result", broken)
    engine = await Engine(Settings(), db, slots=1).start()
    try:
        jobs = await engine.submit_matrix(load_matrix(FIXTURES / "slow.toml"))
        assert not await engine.wait_done([j.job_id for j in jobs])
    finally:
        await engine.stop()
    assert isinstance(engine.failure, RecordingError)
    assert "disk full" in str(engine.failure)
    record = job_store.get_job(db, jobs[0].job_id)
    assert record is not None and record.state != job_store.DONE and record.verdict is None


@pytest.mark.kafka
async def test_a_second_engine_that_only_follows_events_sees_every_verdict(
    kafka_broker: KafkaBroker, kafka_prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VERDICT_QUEUE_KAFKA_PARTITIONS", "2")
    url = parse_queue_url(f"kafka://{kafka_broker.bootstrap}?prefix={kafka_prefix}")
    settings = Settings()
    dbs = [Database(tmp_path / name) for name in ("client.db", "watcher.db", "worker.db")]
    client = await Engine(settings, dbs[0], queue_url=url).start()
    watcher = await Engine(settings, dbs[1], queue_url=url).start()
    worker = None
    try:
        jobs = await client.submit_matrix(load_matrix(FIXTURES / "quick.toml"))
        await send_raw(kafka_broker.bootstrap, client.kafka_names().jobs, b"not a job")
        # nothing consumes yet: every job (and the junk record) is lag
        assert await client.kafka_figures() == (len(jobs) + 1, 0)
        # The watcher hears of the queued jobs too: on screen and in its own job ledger.
        keys = {j.combination.key for j in jobs}
        await until(
            lambda: {k for k, c in watcher.live.cells.items() if c.status == "queued"} >= keys,
            within=30,
        )
        await until(lambda: len(job_store.jobs_by_id(dbs[1], [j.job_id for j in jobs]))
                    == len(jobs), within=30)
        worker = await Engine(settings, dbs[2], queue_url=url, slots=2, role="worker").start()
        assert await client.wait_done([j.job_id for j in jobs])
        await until(
            lambda: {k for k, c in watcher.live.cells.items() if c.status == "done"} >= keys,
            within=60,
        )
        figures = await client.kafka_figures()
        deadline = time.monotonic() + 30
        while figures != (0, 1) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # the workers commit after their verdicts are sent
            figures = await client.kafka_figures()
        assert figures == (0, 1)  # all consumed, the junk record dead-lettered
    finally:
        for engine in (worker, client, watcher):
            if engine is not None:
                await engine.stop(grace=5)
    expected = {k: v[3] for k, v in final_cells(dbs[0]).items()}
    assert {k: c.verdict for k, c in watcher.live.cells.items()} == expected
    watcher_runs = runs.recent_runs(dbs[1], limit=50)
    assert {r.verdict for r in watcher_runs if r.verdict} == set(expected.values())
    # The watcher's ledger ends where the submitter's does: every job done, same verdicts.
    ids = [j.job_id for j in jobs]
    mine = {r.job_id: (r.state, r.verdict) for r in job_store.jobs_by_id(dbs[0], ids)}
    theirs = {r.job_id: (r.state, r.verdict) for r in job_store.jobs_by_id(dbs[1], ids)}
    assert theirs == mine and {state for state, _ in mine.values()} == {job_store.DONE}
    for database in dbs:
        database.close()
