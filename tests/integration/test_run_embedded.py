"""``verdict run`` with the embedded queue: verdicts, exit codes, restart survival."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from tests.support.cli import VERDICT, db_rows, run_verdict

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "queue"


def test_run_records_a_verdict_per_combination_and_fails_when_one_fails(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    result = run_verdict("run", str(FIXTURES / "quick.toml"), "--slots", "2", "--json", db=db)
    assert result.returncode == 1, result.stderr
    jobs = json.loads(result.stdout)["jobs"]
    assert {(e["prompt"], e["model"]): e["verdict"] for e in jobs} == {
        ("v1", "m1"): "pass",
        ("v1", "m2"): "pass",
        ("v2", "m1"): "crashed",
        ("v2", "m2"): "generation_failed",
    }
    assert all(e["attempt"] == 1 and e["spec"] == "quick" for e in jobs)
    for entry in jobs:
        assert db_rows(
            db, "SELECT job_id, verdict, fingerprint FROM runs WHERE run_id = ?", entry["run_id"]
        ) == [(entry["job_id"], entry["verdict"], entry["fingerprint"])]
    failed = next(e for e in jobs if e["verdict"] == "generation_failed")
    (reason,) = db_rows(db, "SELECT reason FROM runs WHERE run_id = ?", failed["run_id"])[0]
    assert "no recorded generation" in reason

    again = run_verdict("run", str(FIXTURES / "quick.toml"), "--json", db=db)
    assert {e["attempt"] for e in json.loads(again.stdout)["jobs"]} == {2}


def test_table_and_plain_progress_when_not_a_terminal(tmp_path: Path) -> None:
    result = run_verdict("run", str(FIXTURES / "quick.toml"), db=tmp_path / "v.db")
    assert result.returncode == 1
    assert "generation_failed" in result.stdout and "quick" in result.stdout
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 4 and progress[-1].startswith("[4/4] ")


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.toml"], "no such file"),
        (["{quick}", "--slots", "0"], "--slots"),
        (["{quick}", "--queue", "redis://x:1"], "--queue"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_queues_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    db = tmp_path / "v.db"
    args = [a.replace("{quick}", str(FIXTURES / "quick.toml")) for a in args]
    result = run_verdict("run", *args, db=db)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not db.exists() or db_rows(db, "SELECT COUNT(*) FROM jobs") == [(0,)]


def test_jobs_in_flight_survive_a_killed_process(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    process = subprocess.Popen(
        [*VERDICT, "--db", str(db), "run", str(FIXTURES / "slow.toml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        leased: list[tuple] = []
        while not leased and time.monotonic() < deadline:
            if db.exists():
                try:
                    leased = db_rows(
                        db,
                        "SELECT job_id, run_id FROM jobs WHERE state = 'leased'"
                        " AND run_id IS NOT NULL",
                    )
                except sqlite3.OperationalError:
                    pass  # tables not created yet
            time.sleep(0.05)
        assert leased, "the job never started"
        children = psutil.Process(process.pid).children(recursive=True)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    job_id, killed_run = leased[0]

    result = run_verdict("run", str(FIXTURES / "slow.toml"), "--json", db=db)
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)["jobs"]
    assert (entry["job_id"], entry["attempt"], entry["verdict"]) == (job_id, 1, "pass")
    assert entry["run_id"] != killed_run
    verdicts = db_rows(
        db, "SELECT v.run_id FROM verdicts v JOIN runs r USING (run_id) WHERE r.job_id = ?", job_id
    )
    assert verdicts == [(entry["run_id"],)]
