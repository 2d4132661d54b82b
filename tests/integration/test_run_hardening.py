"""Adversarial use of ``verdict run``/``rerun``/``worker``: bad databases, two processes at
once, a process killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support.cli import VERDICT, db_rows, run_verdict

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "queue"


PROJECT = Path(__file__).parent.parent / "fixtures" / "pyapp"


@pytest.mark.parametrize(
    "command",
    [
        ["run", str(FIXTURES / "quick.toml")],
        ["rerun", "r1"],
        ["worker", "--queue", "kafka://127.0.0.1:9"],
        ["check", str(PROJECT)],
        ["history"],
        ["show", "r1"],
        ["explain", "r1"],
        ["explanations"],
        ["usage"],
    ],
    ids=lambda command: command[0],
)
def test_a_database_that_cannot_be_opened_is_one_line_and_exit_2(
    tmp_path: Path, command: list[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = run_verdict(*command, db=blocker / "v.db")
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "cannot open the database" in result.stderr and str(blocker) in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through file permissions")
def test_a_read_only_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    db = tmp_path / "ro" / "v.db"
    assert run_verdict("run", str(FIXTURES / "quick.toml"), db=db).returncode == 1
    for path in db.parent.iterdir():
        path.chmod(0o444)
    db.parent.chmod(0o555)
    try:
        result = run_verdict("run", str(FIXTURES / "quick.toml"), db=db)
    finally:
        db.parent.chmod(0o755)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def passing_matrix(tmp_path: Path) -> Path:
    """Two passing cells, with files taken from the queue fixtures."""
    matrix = tmp_path / "pass.toml"
    matrix.write_text(
        f"""
[settings]
start_timeout = 20

[[spec]]
name = "quick"
task = "A stdlib HTTP server answering 200 on every path."

[[prompt]]
version = "v1"
template = "{FIXTURES / "prompts" / "v1.txt"}"

[[model]]
name = "m1"

[[model]]
name = "m2"

[generator]
kind = "replay"
dir = "{FIXTURES / "replay"}"
"""
    )
    return matrix


def test_a_job_held_by_another_live_run_is_awaited_then_run_when_that_process_dies(
    tmp_path: Path,
) -> None:
    from console.matrix import load_matrix
    from storage import jobs as job_store
    from storage.db import Database

    matrix = passing_matrix(tmp_path)
    db = tmp_path / "v.db"
    jobs = load_matrix(matrix).jobs()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        database = Database(db)
        job_store.enqueue(database, jobs)
        held = job_store.lease_next(database, f"{socket.gethostname()}:{other.pid}")
        database.close()
        assert held is not None and held.job_id == jobs[0].job_id
        process = subprocess.Popen(
            [*VERDICT, "--db", str(db), "run", str(matrix), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while db_rows(db, "SELECT state FROM jobs WHERE job_id = ?", jobs[1].job_id) != [("done",)]:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        time.sleep(1.0)  # it keeps waiting for the held job rather than reporting it pending
        assert process.poll() is None
    finally:
        other.kill()
        other.wait()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    entries = json.loads(out)["jobs"]
    assert [(e["job_id"], e["verdict"]) for e in entries] == [(j.job_id, "pass") for j in jobs]
    assert db_rows(db, "SELECT COUNT(*) FROM verdicts") == [(2,)]


def test_after_a_sigkill_the_rerun_ends_the_killed_run_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    from console.sandbox import proctree

    db = tmp_path / "v.db"
    process = subprocess.Popen(
        [*VERDICT, "--db", str(db), "run", str(FIXTURES / "slow.toml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed_run = None
    try:
        deadline = time.monotonic() + 60
        while killed_run is None and time.monotonic() < deadline:
            with_run: list[tuple] = []
            if db.exists():
                try:
                    with_run = db_rows(db, "SELECT r.run_id FROM runs r WHERE r.status = 'running'")
                except sqlite3.OperationalError:
                    pass  # tables not created yet
            marked = with_run and proctree.scan_marked(f"VERDICT_RUN={with_run[0][0]}".encode())
            if marked:
                killed_run = with_run[0][0]
            time.sleep(0.05)
        assert killed_run, "the app never started"
    finally:
        process.send_signal(signal.SIGKILL)  # the process only: its sandbox is orphaned
        process.wait(10)
    marker = f"VERDICT_RUN={killed_run}".encode()
    # Its app may be gone already (it dies with the harness where namespaces are permitted);
    # either way the next run must end the killed run and leave nothing of it running.
    try:
        result = run_verdict("run", str(FIXTURES / "slow.toml"), "--json", db=db)
        assert result.returncode == 0, result.stderr
        assert not proctree.scan_marked(marker)
    finally:
        for pid in proctree.scan_marked(marker):
            psutil.Process(pid).kill()
    (entry,) = json.loads(result.stdout)["jobs"]
    assert entry["verdict"] == "pass" and entry["run_id"] != killed_run
    assert db_rows(db, "SELECT status FROM runs WHERE run_id = ?", killed_run) == [("aborted",)]
    assert db_rows(db, "SELECT COUNT(*) FROM verdicts") == [(1,)]


def test_a_rerun_whose_matrix_moved_says_it_reruns_the_recorded_job(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    matrix = passing_matrix(tmp_path)
    first = json.loads(run_verdict("run", str(matrix), "--json", db=db).stdout)["jobs"][0]
    matrix.rename(tmp_path / "moved.toml")
    result = run_verdict("rerun", first["run_id"], "--json", db=db)
    assert result.returncode == 0, result.stderr
    assert "is gone; rerunning the job as it was queued" in result.stderr
    (entry,) = json.loads(result.stdout)["jobs"]
    assert (entry["attempt"], entry["verdict"]) == (2, "pass")
    assert db_rows(db, "SELECT rerun_of FROM runs WHERE run_id = ?", entry["run_id"]) == [
        (first["run_id"],)
    ]
