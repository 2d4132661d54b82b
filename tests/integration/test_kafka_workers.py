"""``verdict worker`` processes and ``verdict run --queue kafka://…`` against a real broker."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.support.cli import VERDICT
from tests.support.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]

FIXTURES = Path(__file__).parent.parent / "fixtures" / "queue"


def kafka_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        VERDICT_QUEUE_KAFKA_PARTITIONS="2",
        VERDICT_QUEUE_KAFKA_SESSION_TIMEOUT_MS="6000",
        VERDICT_QUEUE_KAFKA_HEARTBEAT_INTERVAL_MS="500",
        VERDICT_QUEUE_KAFKA_POLL_MS="100",
    )
    return env


class Worker:
    """A ``verdict worker`` subprocess whose stderr lines are collected."""

    def __init__(self, url: str, db: Path, slots: int = 1) -> None:
        self.process = subprocess.Popen(
            [
                *VERDICT,
                "--db",
                str(db),
                "worker",
                "--queue",
                url,
                "--slots",
                str(slots),
                "--grace",
                "5",
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=kafka_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"worker never printed {text!r}; saw {self.seen}")

    def kill_hard(self) -> None:
        """SIGKILL the worker and everything it started (the machine died)."""
        children = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        for child in children:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill_hard()
        return self.process.returncode


def verdicts_of_job(db: Path, job_id: str) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(
            "SELECT v.run_id, v.verdict FROM verdicts v JOIN runs r USING (run_id)"
            " WHERE r.job_id = ?",
            (job_id,),
        ).fetchall()


def test_a_killed_worker_s_job_is_redelivered_and_gets_exactly_one_verdict(
    kafka_broker: KafkaBroker, kafka_prefix: str, tmp_path: Path
) -> None:
    url = kafka_broker.url(kafka_prefix)
    first = Worker(url, tmp_path / "worker-a.db")
    second: Worker | None = None
    run = subprocess.Popen(
        [
            *VERDICT,
            "--db",
            str(tmp_path / "console.db"),
            "run",
            str(FIXTURES / "slow.toml"),
            "--queue",
            url,
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kafka_env(),
    )
    try:
        started = first.wait_for(": started", 90)
        job_id = started.split()[0]
        first.kill_hard()
        second = Worker(url, tmp_path / "worker-b.db")
        second.wait_for(f"{job_id} ", 90)
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        entry = json.loads(out)["jobs"][0]
        assert (entry["job_id"], entry["verdict"]) == (job_id, "pass")
        assert verdicts_of_job(tmp_path / "console.db", job_id) == [(entry["run_id"], "pass")]
        assert second.stop() == 0
    finally:
        if run.poll() is None:
            run.kill()
        first.stop()
        if second is not None:
            second.stop()


def test_no_wait_then_wait_records_every_verdict_once(
    kafka_broker: KafkaBroker, kafka_prefix: str, tmp_path: Path
) -> None:
    url = kafka_broker.url(kafka_prefix)
    console_db = tmp_path / "console.db"
    matrix = str(FIXTURES / "quick.toml")
    queued = subprocess.run(
        [*VERDICT, "--db", str(console_db), "run", matrix, "--queue", url, "--no-wait", "--json"],
        capture_output=True,
        text=True,
        env=kafka_env(),
        timeout=60,
    )
    assert queued.returncode == 0, queued.stderr
    pending = json.loads(queued.stdout)["jobs"]
    assert len(pending) == 4 and all(e["verdict"] is None for e in pending)

    worker = Worker(url, tmp_path / "worker.db", slots=2)
    try:
        waited = subprocess.run(
            [*VERDICT, "--db", str(console_db), "run", matrix, "--queue", url, "--json"],
            capture_output=True,
            text=True,
            env=kafka_env(),
            timeout=120,
        )
        assert waited.returncode == 1, waited.stderr  # v2 combinations fail
        jobs = {(e["prompt"], e["model"]): e for e in json.loads(waited.stdout)["jobs"]}
        assert {k: e["verdict"] for k, e in jobs.items()} == {
            ("v1", "m1"): "pass",
            ("v1", "m2"): "pass",
            ("v2", "m1"): "crashed",
            ("v2", "m2"): "generation_failed",
        }
        # the second run waited for the jobs the first one queued (same ids, attempt 1)
        assert {e["job_id"] for e in jobs.values()} == {e["job_id"] for e in pending}
        for entry in jobs.values():
            assert len(verdicts_of_job(console_db, entry["job_id"])) == 1
    finally:
        assert worker.stop() == 0
