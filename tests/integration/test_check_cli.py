"""``verdict check`` and ``verdict history`` as scripts call them: exit codes, JSON, database."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from storage import runs
from storage.db import Database
from tests.support.cli import run_verdict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PY = shlex.quote(sys.executable)
JSON_KEYS = {
    "run_id",
    "isolation",
    "warnings",
    "verdict",
    "reason",
    "exit",
    "port",
    "http",
    "stages",
    "log_matches",
    "failure",
    "fingerprint",
    "log_tail",
    "command",
    "install",
    "from",
    "detection",
    "started",
    "finished",
}


def verdict(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, VERDICT_SANDBOX_STOP_GRACE="0.5", VERDICT_SANDBOX_SETTLE="0.3")
    return run_verdict(*args, db=db, timeout=120, env=env)


def test_check_json_pass_and_crash_then_history(db_path: Path) -> None:
    ok = verdict("check", str(FIXTURES / "pyapp"), "--run", f"{PY} app.py", "--json", db=db_path)
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert set(data) == JSON_KEYS
    assert data["verdict"] == "pass" and data["http"] == {"root": 200, "health": None}
    assert data["exit"] == {"code": None, "signal": None, "class": None}
    assert [s["name"] for s in data["stages"]] == ["start", "port", "http_root", "settle"]

    crash = verdict(
        "check", str(FIXTURES / "pyapp"), "--env", "MODE=config_error", "--json", db=db_path
    )
    assert crash.returncode == 1
    assert "detected from app.py" in crash.stderr  # says what it chose
    bad = json.loads(crash.stdout)
    assert bad["verdict"] == "crashed" and bad["exit"]["class"] == "error"
    assert bad["failure"]["exception"] == "KeyError"
    assert {"name", "file", "line", "app"} == set(bad["failure"]["frames"][0])
    assert bad["log_tail"][-1] == "KeyError: 'database_url'"

    history = verdict("history", "--limit", "5", "--json", db=db_path)
    assert history.returncode == 0, history.stderr
    rows = json.loads(history.stdout)
    assert [row["run_id"] for row in rows] == [bad["run_id"], data["run_id"]]
    assert rows[0]["verdict"] == "crashed" and rows[0]["fingerprint"] == bad["fingerprint"]
    assert rows[0]["log_lines"] > 0

    table = verdict("history", db=db_path)
    assert table.returncode == 0 and "crashed" in table.stdout and "pass" in table.stdout


def test_human_report(db_path: Path) -> None:
    out = verdict("check", str(FIXTURES / "nodeapp"), "--env", "MODE=crash", db=db_path)
    assert out.returncode == 1
    assert "CRASHED" in out.stdout and "TypeError" in out.stdout and "loadUser" in out.stdout
    moved = verdict(
        "check", str(FIXTURES / "pyapp"), "--run", f"{PY} app.py", "--env", "MODE=ignore_port",
        db=db_path,
    )
    assert moved.returncode == 0, moved.stderr
    assert "warning: the app listened on port" in moved.stdout  # the table says it too


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/dir"], "no such project directory"),
        (["{fixtures}"], "nothing to run"),
        (["{pyapp}", "--expect-log", "("], "invalid regex"),
        (["{pyapp}", "--fail-log", "[a"], "invalid regex"),
        (["{pyapp}", "--start-timeout", "soon"], "--start-timeout"),
        (["{pyapp}", "--memory-mb", "-5"], "--memory-mb"),
        (["{pyapp}", "--env", "NOVALUE"], "--env"),
    ],
)
def test_bad_input_is_one_line_and_status_2(db_path: Path, args: list[str], message: str) -> None:
    filled = [a.format(fixtures=FIXTURES, pyapp=FIXTURES / "pyapp") for a in args]
    out = verdict("check", *filled, db=db_path)
    assert out.returncode == 2
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    # Nothing ran, nothing was recorded.
    history = verdict("history", "--json", db=db_path)
    assert json.loads(history.stdout) == []


def _with_token(token: str) -> list[int]:
    """Processes whose environment carries ``TEST_TOKEN=token``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if f"TEST_TOKEN={token}".encode() in handle.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


def test_no_survivors_after_the_command_returns(db_path: Path) -> None:
    token = uuid.uuid4().hex
    out = verdict(
        "check",
        str(FIXTURES / "pyapp"),
        "--env",
        "MODE=escape",
        "--env",
        f"TEST_TOKEN={token}",
        "--json",
        db=db_path,
    )
    assert out.returncode == 0, out.stderr
    tail = json.loads(out.stdout)["log_tail"]
    assert any(line.startswith("detached") for line in tail)
    assert _with_token(token) == []


def _ignoring_sigint() -> None:
    # What a shell does to a job started with `&`: SIGINT is inherited as ignored.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("sig", "background"),
    [(signal.SIGINT, False), (signal.SIGINT, True), (signal.SIGTERM, False)],
    ids=["sigint", "sigint-background-job", "sigterm"],
)
def test_a_signal_stops_the_run_and_its_processes(
    db_path: Path, sig: signal.Signals, background: bool
) -> None:
    token = uuid.uuid4().hex
    env = dict(os.environ, VERDICT_SANDBOX_STOP_GRACE="0.5")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console.cli",
            "--db",
            str(db_path),
            "check",
            str(FIXTURES / "pyapp"),
            "--env",
            "MODE=escape",
            "--env",
            f"TEST_TOKEN={token}",
            "--settle",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_ignoring_sigint if background else None,
    )
    deadline = time.monotonic() + 30
    while len(_with_token(token)) < 3:  # app, stubborn child, detached grandchild
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == 128 + sig
    assert _with_token(token) == []
    (stored,) = runs.recent_runs(Database(db_path), 5)
    assert stored.status == "aborted" and stored.verdict is None
