"""SIGKILL of ``verdict check`` and ``verdict run`` at random moments leaves nothing behind.

Each kill must leave zero processes at once (the sandbox dies with its harness), and once
the next recording command has started, zero run directories and no run still
``running``: the sweep ends them as ``aborted`` with a reason.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console import paths
from tests.support.cli import VERDICT, db_rows, run_verdict

pytestmark = pytest.mark.timeout(240)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HOSTILE = FIXTURES / "hostile"
QUEUE = FIXTURES / "queue"
KILLS = 20
SEED = int(os.environ.get("VERDICT_TEST_SEED", "20261128"))


def _run_dirs() -> list[Path]:
    base = paths.runs_dir()
    return sorted(base.iterdir()) if base.is_dir() else []


def _sandboxed(token: str) -> list[int]:
    """Processes holding ``token`` on their command line or working inside a run directory."""
    base = str(paths.runs_dir())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if token.encode() in cmdline or cwd.startswith(base):
            found.append(int(entry))
    return found


def _wait_until_none(token: str, seconds: float = 5.0) -> list[int]:
    """Processes the kernel has not finished killing yet, after a bounded wait."""
    deadline = time.monotonic() + seconds
    while (left := _sandboxed(token)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def _owns_a_run(pid: int) -> bool:
    """Whether the process ``pid`` has a run directory (its owner file names it)."""
    for path in _run_dirs():
        try:
            if (path / "owner").read_text().split(":")[-2] == str(pid):
                return True
        except (OSError, IndexError):
            continue
    return False


def _kill_at_random(argv: list[str], moment: float, *, once_running: bool) -> None:
    """Start ``argv`` and SIGKILL it ``moment`` seconds later, counted from its start or,
    with ``once_running``, from when it has a run under way (the moment is the test)."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if once_running:
        deadline = time.monotonic() + 60
        while not _owns_a_run(process.pid) and process.poll() is None:
            assert time.monotonic() < deadline, "no run started within a minute"
            time.sleep(0.01)
    try:
        process.wait(timeout=moment)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()


def _running(db: Path) -> list[tuple]:
    """Runs still marked running (none while a killed harness had not made its tables)."""
    if not db.exists():
        return []
    try:
        return db_rows(db, "SELECT 1 FROM runs WHERE status = 'running'")
    except sqlite3.OperationalError:
        return []


def _assert_all_final(db: Path) -> None:
    rows = db_rows(db, "SELECT run_id, status, reason FROM runs")
    assert rows, "no run was recorded at all"
    assert [row for row in rows if row[1] == "running"] == []
    aborted = [row for row in rows if row[1] == "aborted"]
    assert all(row[2] for row in aborted)


def test_sigkill_of_check_at_random_moments_leaves_nothing(tmp_path: Path) -> None:
    db = tmp_path / "verdict.db"
    token = f"killed-check-{os.getpid()}"
    chooser = random.Random(SEED)
    check = [
        *VERDICT, "--db", str(db), "check", str(HOSTILE), "--run", f"{sys.executable} app.py",
        "--env", "MODE=double_fork", "--env", f"TOKEN={token}", "--settle", "30",
    ]  # fmt: skip
    for number in range(KILLS):
        # Half at any moment of its life (opening the database, copying, starting), half
        # at a moment while the app runs.
        once_running = number % 2 == 1
        moment = chooser.uniform(0.0, 0.8) if once_running else chooser.uniform(0.05, 1.5)
        _kill_at_random(check, moment, once_running=once_running)
        assert _wait_until_none(token) == []
    running_before = db_rows(db, "SELECT count(*) FROM runs WHERE status = 'running'")[0][0]
    assert running_before > 0  # some kills did land while a run was under way
    done = run_verdict(
        "check", str(HOSTILE), "--run", f"{sys.executable} app.py", "--env", "MODE=snoop",
        "--settle", "0", db=db,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "marked aborted" in done.stderr
    assert _run_dirs() == []
    assert _sandboxed(token) == []
    _assert_all_final(db)
    reasons = db_rows(db, "SELECT reason FROM runs WHERE status = 'aborted'")
    assert all("died before a verdict" in row[0] for row in reasons)


def test_sigkill_of_run_at_random_moments_leaves_nothing(tmp_path: Path) -> None:
    db = tmp_path / "verdict.db"
    matrix = tmp_path / "quick.toml"
    text = (QUEUE / "quick.toml").read_text()
    text = text.replace('"prompts/', f'"{QUEUE}/prompts/')
    text = text.replace('dir = "replay"', f'dir = "{QUEUE}/replay"')
    matrix.write_text(text)
    chooser = random.Random(SEED + 1)
    run = [*VERDICT, "--db", str(db), "run", str(matrix)]
    landed = False
    for number in range(KILLS):
        once_running = number % 2 == 1
        moment = chooser.uniform(0.0, 1.0) if once_running else chooser.uniform(0.05, 2.0)
        _kill_at_random(run, moment, once_running=once_running)
        assert _wait_until_none("\0never\0") == []
        # What this kill left is for the next command to clean up (each one sweeps first).
        landed = landed or bool(_run_dirs() or _running(db))
    # Some kills did land while runs were under way: there was something to clean up.
    assert landed
    done = run_verdict("run", str(matrix), db=db, timeout=120)
    assert done.returncode in (0, 1), done.stderr
    assert _run_dirs() == []
    assert _sandboxed("\0never\0") == []
    _assert_all_final(db)
