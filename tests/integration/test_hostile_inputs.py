"""Hostile input to every command: one line on stderr, exit status 2, nothing recorded lost.

The list keeps every input found to escape that rule once; a new command or option gets
its cases here.  Each case runs ``verdict`` as a user would, against a database that
already holds a recorded run, and checks that the run is still there, unchanged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from console.model import CheckResult, RunStarted, Verdict, VerdictReached
from console.recorder import Recorder
from storage.db import Database
from tests.support.cli import VERDICT, db_rows, run_verdict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PYAPP = FIXTURES / "pyapp"
QUEUE = FIXTURES / "queue"
HUGE = str(2**70)  # beyond 64 bits
LONG_ID = "0" * 50_001
TIMEOUT_ENV, RETRIES_ENV = "VERDICT_LLM_TIMEOUT", "VERDICT_LLM_MAX_RETRIES"
RECORDED = ("0mwseedrun0001a", "0mwseedrun0002b")  # share the prefix "0mwseedrun000"


@pytest.fixture
def recorded_db(tmp_path: Path) -> Path:
    """A database holding two finished runs."""
    path = tmp_path / "verdict.db"
    database = Database(path)
    recorder = Recorder(database)
    for run_id in RECORDED:
        recorder.handle(RunStarted(run_id=run_id, project="p", command="c"))
        result = CheckResult(run_id=run_id, verdict=Verdict.CRASHED, reason="it crashed")
        recorder.handle(VerdictReached(run_id=run_id, result=result))
    database.close()
    return path


def _matrix(tmp_path: Path, settings: str = "", model: str = "") -> Path:
    text = (QUEUE / "quick.toml").read_text()
    text = text.replace('"prompts/', f'"{QUEUE}/prompts/')
    text = text.replace('dir = "replay"', f'dir = "{QUEUE}/replay"')
    if settings:
        text = text.replace("start_timeout = 20\n", f"{settings}\n")
    text = text.replace('name = "m1"\n', f'name = "m1"\n{model}\n')
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    return path


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _nested(tmp_path: Path) -> Path:
    path = tmp_path / "deep.toml"
    path.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    return path


def _trace(tmp_path: Path) -> Path:
    path = tmp_path / "trace.txt"
    path.write_text('Traceback (most recent call last):\n  File "a.py", line 1\nKeyError: x\n')
    return path


def _newline_name(tmp_path: Path) -> Path:
    return tmp_path / "bad\nname.toml"


def _run_matrix(settings: str = "", model: str = "") -> Callable[[Path], list[str]]:
    return lambda tmp: ["run", str(_matrix(tmp, settings, model))]


def _explain_request(method: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["explain", "--trace", str(_trace(tmp)), "--method", method, "--url", "/x"]


def _check(*extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["check", str(PYAPP), "--run", f"{sys.executable} app.py", *extra]


# (id, argv from tmp_path, extra environment, a word the one line must hold)
CASES: list[tuple[str, Callable[[Path], list[str]], dict[str, str], str]] = [
    ("history-limit-huge", lambda t: ["history", "--limit", HUGE], {}, "--limit"),
    ("show-log-huge", lambda t: ["show", RECORDED[0], "--log", HUGE], {}, "--log"),
    ("check-memory-huge", _check("--memory-mb", HUGE), {}, "--memory-mb"),
    ("explanations-limit-huge", lambda t: ["explanations", "--limit", HUGE], {}, "--limit"),
    ("show-long-id", lambda t: ["show", LONG_ID], {}, "no run"),
    ("explain-long-id", lambda t: ["explain", LONG_ID], {}, "no run"),
    ("rerun-long-id", lambda t: ["rerun", LONG_ID], {}, "no run"),
    ("matrix-nested-5000", lambda t: ["run", str(_nested(t))], {}, "nested"),
    ("matrix-dev-zero", lambda t: ["run", "/dev/zero"], {}, "not a regular file"),
    ("matrix-fifo", lambda t: ["run", str(_fifo(t))], {}, "not a regular file"),
    ("trace-dev-zero", lambda t: ["explain", "--trace", "/dev/zero"], {}, "not a regular"),
    ("trace-fifo", lambda t: ["explain", "--trace", str(_fifo(t))], {}, "not a regular file"),
    ("start-timeout-inf", _check("--start-timeout", "inf"), {}, "--start-timeout"),
    ("start-timeout-1e400", _check("--start-timeout", "1e400"), {}, "--start-timeout"),
    ("settle-nan", _check("--settle", "nan"), {}, "--settle"),
    ("install-timeout-inf", _check("--install-timeout", "inf"), {}, "--install-timeout"),
    ("worker-grace-inf", lambda t: ["worker", "--grace", "inf"], {}, "--grace"),
    ("matrix-start-timeout-inf", _run_matrix("start_timeout = inf"), {}, "start_timeout"),
    ("matrix-start-timeout-nan", _run_matrix("start_timeout = nan"), {}, "start_timeout"),
    ("matrix-start-timeout-1e400", _run_matrix("start_timeout = 1e400"), {}, "start_timeout"),
    ("llm-timeout-negative", lambda t: ["history"], {TIMEOUT_ENV: "-5"}, TIMEOUT_ENV),
    ("llm-retries-negative", lambda t: ["history"], {RETRIES_ENV: "-1"}, RETRIES_ENV),
    ("since-overflow", lambda t: ["usage", "--since", "9" * 400 + "w", "--json"], {}, "--since"),
    ("since-empty", lambda t: ["usage", "--since", "", "--json"], {}, "--since"),
    ("health-newline", _check("--health", "/he\nalth"), {}, "--health"),
    ("run-empty", lambda t: ["check", str(PYAPP), "--run", ""], {}, "--run"),
    ("method-with-spaces", _explain_request("G ET"), {}, "--method"),
    ("matrix-base-url-not-url", _run_matrix(model='base_url = "not a url"'), {}, "base_url"),
    ("env-path", _check("--env", "PATH=/nowhere"), {}, "PATH"),
    ("env-home", _check("--env", "HOME=/nowhere"), {}, "HOME"),
    ("file-name-newline", lambda t: ["run", str(_newline_name(t))], {}, "no such file"),
    ("ambiguous-prefix", lambda t: ["show", "0mwseedrun000"], {}, "ambiguous"),
    ("copy-root", lambda t: ["check", "/", "--run", "true"], {}, "system directory"),
    ("copy-proc", lambda t: ["check", "/proc", "--run", "true"], {}, "system directory"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "env", "word"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_one_line_exit_2_and_nothing_lost(
    tmp_path: Path,
    recorded_db: Path,
    argv: Callable[[Path], list[str]],
    env: dict[str, str],
    word: str,
) -> None:
    before = db_rows(recorded_db, "SELECT run_id, status, verdict, reason FROM runs")
    environment = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "no-config"), **env}
    done = run_verdict(*argv(tmp_path), db=recorded_db, env=environment, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert len(lines) == 1, done.stderr[-2000:]
    assert word in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert "config.toml" not in lines[0]  # no file to blame when the file is not there
    after = db_rows(recorded_db, "SELECT run_id, status, verdict, reason FROM runs")
    assert after[: len(before)] == before


def test_a_one_letter_known_secret_redacts_nothing() -> None:
    from console.explain.redact import Redactor
    from console.settings import Settings

    settings = Settings.model_validate({"llm": {"api_key": "a"}, "explain": {"secrets": ["b"]}})
    redactor = Redactor.from_settings(settings, environ={"OPENAI_API_KEY": "c"})
    assert redactor.redact("a banana cab").text == "a banana cab"


def _stopped_by_sigterm(argv: list[str], ready: str) -> int:
    """Start ``argv``, SIGTERM it once ``ready`` shows on stderr, return its exit status."""
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    for line in process.stderr:
        if ready in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=60)


def test_run_and_check_end_alike_on_sigterm(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "verdict.db")]
    check = _stopped_by_sigterm([*VERDICT, *db, "check", str(PYAPP), "--settle", "60"], "running")
    run = _stopped_by_sigterm([*VERDICT, *db, "run", str(_matrix(tmp_path))], "queued")
    assert check == 143
    assert run == 143
