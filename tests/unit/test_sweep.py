"""The sweep ends what a killed harness left: running rows, processes, directories."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console import paths
from console.model import RunStarted
from console.recorder import Recorder
from console.sandbox import proctree
from console.sandbox.sweep import OWNER_FILE, owner_alive, owner_tag, sweep_orphans
from storage import runs
from storage.db import Database

HOST = socket.gethostname()


@pytest.fixture
def dead_owner() -> str:
    """The owner tag of a process that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = proctree.start_time(child.pid)
    child.wait()
    return f"{HOST}:{child.pid}:{started or 1}"


@pytest.fixture
def live_process() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child
    child.kill()
    child.wait()


def _started(db: Database, run_id: str, owner: str) -> Path:
    Recorder(db).handle(RunStarted(run_id=run_id, project="p", owner=owner))
    workdir = paths.runs_dir(create=True) / run_id
    (workdir / "project").mkdir(parents=True)
    (workdir / OWNER_FILE).write_text(owner)
    return workdir


def _status(db: Database, run_id: str) -> tuple[str, str | None]:
    record = runs.get_run(db, run_id)
    assert record is not None
    return record.status, record.reason


def test_owner_tags() -> None:
    assert owner_alive(owner_tag()) is True
    assert owner_alive(f"elsewhere-{HOST}:1:1") is None  # another host: not ours to judge
    assert owner_alive("garbage") is None


def test_a_run_whose_owner_died_is_aborted_and_its_directory_removed(
    db: Database, dead_owner: str
) -> None:
    workdir = _started(db, "r-dead", dead_owner)
    assert sweep_orphans(db) == ["r-dead"]
    status, reason = _status(db, "r-dead")
    assert status == "aborted" and reason and "died before a verdict" in reason
    assert not workdir.exists()
    assert sweep_orphans(db) == []  # idempotent


def test_live_owners_and_other_hosts_are_left_alone(
    db: Database, live_process: subprocess.Popen[bytes]
) -> None:
    live = f"{HOST}:{live_process.pid}:{proctree.start_time(live_process.pid)}"
    mine = _started(db, "r-live", live)
    theirs = _started(db, "r-remote", "some-other-host:1:1")
    assert sweep_orphans(db) == []
    assert _status(db, "r-live")[0] == "running" and mine.exists()
    assert _status(db, "r-remote")[0] == "running" and theirs.exists()


def test_a_reused_pid_does_not_keep_a_run_alive(
    db: Database, live_process: subprocess.Popen[bytes]
) -> None:
    start = proctree.start_time(live_process.pid) or 0
    _started(db, "r-reused", f"{HOST}:{live_process.pid}:{start + 12345}")
    assert sweep_orphans(db) == ["r-reused"]


def test_a_marked_process_of_a_dead_owner_is_killed(db: Database, dead_owner: str) -> None:
    """What a harness without namespaces leaves: processes found by the run's marker."""
    leftover = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        env={**os.environ, proctree.MARKER_ENV: "r-marked"},
    )
    try:
        _started(db, "r-marked", dead_owner)
        sweep_orphans(db)
        assert leftover.wait(timeout=10) < 0
    finally:
        leftover.kill()
        leftover.wait()


def test_directories_of_dead_owners_go_even_without_a_row(db: Database, dead_owner: str) -> None:
    base = paths.runs_dir(create=True)
    orphan = base / "r-other-db"
    orphan.mkdir()
    (orphan / OWNER_FILE).write_text(dead_owner)
    fresh = base / "r-being-created"  # no owner file yet: never touched
    fresh.mkdir()
    sweep_orphans(db)
    assert not orphan.exists()
    assert fresh.exists()


def test_every_recording_command_sweeps_on_start(tmp_path: Path, dead_owner: str) -> None:
    from tests.support.cli import run_verdict

    db_path = tmp_path / "verdict.db"
    database = Database(db_path)
    workdir = _started(database, "r-cli", dead_owner)
    database.close()
    started = time.monotonic()
    done = run_verdict("check", str(tmp_path / "missing"), db=db_path)
    assert done.returncode == 2  # bad input: nothing ran, and nothing was swept
    assert workdir.exists()
    done = run_verdict(
        "check", str(Path(__file__).parents[1] / "fixtures" / "pyapp"), "--run",
        f"{sys.executable} app.py", "--settle", "0", db=db_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 run(s) left by a killed verdict process marked aborted" in done.stderr
    assert not workdir.exists()
    assert time.monotonic() - started < 60


def test_a_directory_left_half_removed_or_half_made_is_still_swept(
    db: Database, dead_owner: str
) -> None:
    from console.sandbox.sweep import OWNERLESS_AFTER, remove_run_dir

    # Removal deletes the owner file last: a harness killed half-way through leaves a
    # directory that still names its (now dead) owner.
    workdir = _started(db, "r-half", dead_owner)
    (workdir / "project" / "app.py").write_text("x = 1\n")
    remove_run_dir(workdir)
    assert not workdir.exists()
    # A directory without an owner file is being made, unless it has been like that for a
    # while (killed between making it and writing its owner, or in the very last step).
    fresh = paths.runs_dir(create=True) / "r-new"
    (fresh / "tmp").mkdir(parents=True)
    stale = paths.runs_dir(create=True) / "r-stale"
    (stale / "project").mkdir(parents=True)
    old = time.time() - OWNERLESS_AFTER - 5
    os.utime(stale, (old, old))
    sweep_orphans(db)
    assert fresh.exists() and not stale.exists()
