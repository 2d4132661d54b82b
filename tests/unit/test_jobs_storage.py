"""storage.jobs: the durable job ledger behind the embedded queue."""

from __future__ import annotations

import socket
import subprocess
import sys

from console.model import Combination, Job
from storage import jobs as job_store
from storage.db import Database


def make_job(n: int, attempt: int = 1, model: str = "m") -> Job:
    return Job(
        job_id=f"job{n}-{attempt}",
        combination=Combination(spec="s", prompt=f"v{n}", model=model),
        attempt=attempt,
    )


def test_enqueue_is_idempotent_by_job_id(db: Database) -> None:
    assert job_store.enqueue(db, [make_job(1), make_job(2)]) == 2
    assert job_store.enqueue(db, [make_job(1)]) == 0
    assert job_store.count_by_state(db) == {"queued": 2}


def test_lease_is_fifo_and_exclusive(db: Database) -> None:
    job_store.enqueue(db, [make_job(1), make_job(2)])
    first = job_store.lease_next(db, "a")
    second = job_store.lease_next(db, "b")
    assert first is not None and second is not None
    assert (first.job_id, second.job_id) == ("job1-1", "job2-1")
    assert job_store.lease_next(db, "c") is None
    record = job_store.get_job(db, "job1-1")
    assert record is not None and record.state == "leased" and record.lease_owner == "a"


def test_a_verdict_is_recorded_once(db: Database) -> None:
    job_store.enqueue(db, [make_job(1)])
    job_store.lease_next(db, "a")
    assert job_store.complete(db, "job1-1", run_id="r1", verdict="pass", fingerprint=None)
    assert not job_store.complete(db, "job1-1", run_id="r2", verdict="crashed", fingerprint="f")
    record = job_store.get_job(db, "job1-1")
    assert record is not None
    assert (record.state, record.run_id, record.verdict) == ("done", "r1", "pass")
    job_store.requeue(db, "job1-1")  # a finished job never goes back to the queue
    assert job_store.lease_next(db, "a") is None


def test_recover_leases_requeues_only_dead_owners(db: Database) -> None:
    job_store.enqueue(db, [make_job(1), make_job(2), make_job(3)])
    host = socket.gethostname()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        job_store.lease_next(db, f"{host}:{dead.pid}")
        job_store.lease_next(db, f"{host}:{sleeper.pid}")
        assert job_store.recover_leases(db) == 1
        states = {r.job_id: r.state for r in job_store.jobs_by_id(db, ["job1-1", "job2-1"])}
        assert states == {"job1-1": "queued", "job2-1": "leased"}
    finally:
        sleeper.kill()
        sleeper.wait()


def test_lease_of_a_delivered_job_keeps_a_recorded_verdict(db: Database) -> None:
    job = make_job(1)
    record = job_store.lease(db, job, "w1", queue="kafka")
    assert record.state == "leased" and record.queue == "kafka"
    job_store.complete(db, job.job_id, run_id="r1", verdict="pass", fingerprint=None)
    again = job_store.lease(db, job, "w2", queue="kafka")
    assert again.state == "done" and again.run_id == "r1"


def test_attempts_and_unfinished_jobs_per_combination(db: Database) -> None:
    first = make_job(1)
    job_store.enqueue(db, [first])
    key = first.combination.key
    assert job_store.max_attempt(db, key) == 1
    unfinished = job_store.unfinished(db, key)
    assert unfinished is not None and unfinished.job_id == first.job_id
    job_store.complete(db, first.job_id, run_id="r1", verdict="pass", fingerprint=None)
    assert job_store.unfinished(db, key) is None
    job_store.enqueue(db, [make_job(1, attempt=2)], origin="rerun")
    assert job_store.max_attempt(db, key) == 2
    assert job_store.max_attempt(db, "other/v/m") == 0
    record = job_store.job_for_run(db, "r1")
    assert record is not None and record.job_id == first.job_id


def test_jobs_by_id_keeps_the_given_order(db: Database) -> None:
    job_store.enqueue(db, [make_job(n) for n in range(5)])
    ids = ["job3-1", "missing", "job0-1", "job4-1"]
    assert [r.job_id for r in job_store.jobs_by_id(db, ids)] == ["job3-1", "job0-1", "job4-1"]
