"""Every verdict and exit class, decided on small real projects run in the local sandbox."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from pathlib import Path

import pytest

from console.checker import run_check
from console.model import CheckResult, CheckSpec, Event, ExitClass, PortFound, Verdict
from console.sequence import SETTLE_TAIL
from console.settings import SandboxSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PYAPP = FIXTURES / "pyapp"
NODEAPP = FIXTURES / "nodeapp"
PY = shlex.quote(sys.executable)
SETTINGS = SandboxSettings(stop_grace=0.5)


async def check(
    mode: str | None = None,
    *,
    project: Path = PYAPP,
    run: str | None = f"{PY} app.py",
    events: list[Event] | None = None,
    **fields: object,
) -> CheckResult:
    env = dict(fields.pop("env", {}) or {})  # type: ignore[call-overload]
    if mode:
        env["MODE"] = mode
    options: dict[str, object] = {"start_timeout": 15.0, "settle": 0.3}
    options.update(fields)
    spec = CheckSpec(project=project, run=run, env=env, **options)  # type: ignore[arg-type]
    sink = events if events is not None else []
    return await run_check(spec, settings=SETTINGS, emit=sink.append)


def stage_names(result: CheckResult) -> list[str]:
    return [stage.name for stage in result.stages]


# --- verdicts -------------------------------------------------------------------------------
async def test_pass_python() -> None:
    events: list[Event] = []
    result = await check("ok", events=events)
    assert result.verdict == Verdict.PASS, result.reason
    assert result.http_root == 200
    assert result.exit.cls is None
    assert stage_names(result) == ["start", "port", "http_root", "settle"]
    assert all(stage.ok for stage in result.stages)
    assert result.fingerprint is None and result.failure is None
    kinds = [event.kind for event in events]
    assert kinds[0] == "run_started" and kinds[-1] == "verdict_reached"
    assert "port_found" in kinds and "log_batch" in kinds


async def test_pass_node_under_limits() -> None:
    result = await check(None, project=NODEAPP, run="node server.js", memory_mb=256)
    assert result.verdict == Verdict.PASS, result.reason
    assert any("node listening" in line.text for line in result.log_tail)


async def test_pass_with_health_and_expected_log() -> None:
    result = await check("expect", health="/health", expect_log=[r"ready to accept"])
    assert result.verdict == Verdict.PASS, result.reason
    assert result.http_health == 200
    assert result.log_matches == ["ready to accept connections"]
    assert "logs" in stage_names(result)


async def test_install_failed() -> None:
    result = await check("ok", install="sh install_fail.sh")
    assert result.verdict == Verdict.INSTALL_FAILED
    assert result.exit.cls == ExitClass.ERROR and result.exit.code == 1
    assert "Could not find a version" in result.reason
    assert stage_names(result) == ["install"]


async def test_install_timeout() -> None:
    start = time.monotonic()
    result = await check("ok", install="sleep 60", install_timeout=0.5)
    assert result.verdict == Verdict.INSTALL_FAILED
    assert result.exit.cls == ExitClass.TIMEOUT
    assert time.monotonic() - start < 10


async def test_crashed_with_python_trace() -> None:
    result = await check("config_error")
    assert result.verdict == Verdict.CRASHED
    assert result.exit.cls == ExitClass.ERROR and result.exit.code == 1
    assert result.failure is not None
    assert result.failure.exception == "KeyError"
    app_frames = [frame.name for frame in result.failure.app_frames()]
    assert app_frames[:2] == ["load_config", "main"]
    assert result.failure.frames[0].file == "app.py"  # relative to the project
    assert "KeyError: 'database_url'" in result.reason
    assert result.fingerprint


async def test_crashed_node_trace() -> None:
    result = await check("crash", project=NODEAPP, run="node server.js")
    assert result.verdict == Verdict.CRASHED
    assert result.failure is not None and result.failure.exception == "TypeError"
    assert result.failure.app_frames()[0].name == "loadUser"
    assert result.failure.app_frames()[0].file == "server.js"


async def test_crash_right_after_binding_is_not_passed() -> None:
    result = await check("crash_after_bind", settle=3.0)
    assert result.verdict == Verdict.CRASHED, result.reason
    assert result.port is not None and result.http_root == 200
    assert result.stages[-1].name == "settle" and not result.stages[-1].ok
    assert result.failure is not None and result.failure.exception == "RuntimeError"


async def test_the_settle_window_counts_from_the_port_and_still_outlasts_the_answer() -> None:
    # GET / takes 0.6 s, longer than the 0.5 s window: the window has run out by the answer,
    # so only the tail after it is waited for...
    slow = await check("slow_root", settle=0.5)
    assert slow.verdict == Verdict.PASS, slow.reason
    settle = next(stage for stage in slow.stages if stage.name == "settle")
    assert SETTLE_TAIL * 1000 <= settle.ms < 0.5 * 1000
    assert "0.5 s after opening it" in slow.reason
    # ...and that tail still sees an app die of its first answer.
    crash = await check("slow_root_crash", settle=0.5)
    assert crash.verdict == Verdict.CRASHED, crash.reason
    assert crash.http_root == 200 and crash.stages[-1].name == "settle"
    # A longer window keeps half of itself after the answer: a first answer that takes
    # longer than the whole window does not use it up.
    late = await check(
        "slow_root_crash", settle=1.0, env={"SLOW": "1.2", "CRASH_AFTER": "0.35"}
    )
    assert late.verdict == Verdict.CRASHED, late.reason


async def test_exited_early() -> None:
    result = await check("exit0")
    assert result.verdict == Verdict.EXITED_EARLY
    assert result.exit.cls == ExitClass.OK and result.exit.code == 0


async def test_exit_does_not_wait_out_the_timeout() -> None:
    start = time.monotonic()
    result = await check("exit0", start_timeout=60.0)
    assert result.verdict == Verdict.EXITED_EARLY
    assert time.monotonic() - start < 12


async def test_no_port() -> None:
    result = await check("no_port", start_timeout=1.5)
    assert result.verdict == Verdict.NO_PORT
    assert result.exit.cls == ExitClass.TIMEOUT
    assert "never opened a listening port" in result.reason


async def test_http_error() -> None:
    result = await check("http500")
    assert result.verdict == Verdict.HTTP_ERROR
    assert result.http_root == 500


async def test_unhealthy() -> None:
    result = await check("unhealthy", health="/health")
    assert result.verdict == Verdict.UNHEALTHY
    assert result.http_root == 200 and result.http_health == 503


async def test_log_error_fail_pattern() -> None:
    result = await check("fail_log", fail_log=[r"ERROR \w+"])
    assert result.verdict == Verdict.LOG_ERROR
    assert "ERROR cannot reach database" in result.reason
    assert result.log_matches == ["ERROR cannot reach database"]


async def test_log_error_expected_line_missing() -> None:
    result = await check("ok", expect_log=[r"never printed"], start_timeout=3.0)
    assert result.verdict == Verdict.LOG_ERROR
    assert "never printed" in result.reason


async def test_timeout_when_root_hangs() -> None:
    result = await check("hang", start_timeout=3.0)
    assert result.verdict == Verdict.TIMEOUT
    assert result.port is not None
    assert result.exit.cls == ExitClass.TIMEOUT


# --- exit classes ---------------------------------------------------------------------------
async def test_exit_usage() -> None:
    result = await check("exit2")
    assert result.verdict == Verdict.CRASHED
    assert result.exit.cls == ExitClass.USAGE and result.exit.code == 2


async def test_exit_not_executable() -> None:
    result = await check(None, run="./not_executable.sh")
    assert result.exit.cls == ExitClass.NOT_EXECUTABLE and result.exit.code == 126


async def test_exit_command_not_found() -> None:
    result = await check(None, run="definitely-not-a-command-xyz")
    assert result.verdict == Verdict.CRASHED
    assert result.exit.cls == ExitClass.COMMAND_NOT_FOUND and result.exit.code == 127
    assert "not found" in result.reason


async def test_exit_signal() -> None:
    result = await check("segv", run=f"exec {PY} app.py")
    assert result.verdict == Verdict.CRASHED
    assert result.exit.cls == ExitClass.SIGNAL and result.exit.signal == "SIGSEGV"


async def test_memory_hog_is_contained() -> None:
    result = await check("hog", memory_mb=80)
    assert result.verdict == Verdict.CRASHED
    assert result.exit.cls == ExitClass.OOM
    assert "memory" in result.reason


# --- the process tree and the environment ---------------------------------------------------
async def test_port_opened_by_a_grandchild() -> None:
    result = await check("ok", run="sh start.sh")
    assert result.verdict == Verdict.PASS, result.reason
    assert result.http_root == 200


async def test_app_ignoring_port_is_found_where_it_listens() -> None:
    result = await check("ignore_port")
    assert result.verdict == Verdict.PASS, result.reason
    assert any(f"listening on {result.port}" == line.text for line in result.log_tail)
    port_stage = next(stage for stage in result.stages if stage.name == "port")
    assert "$PORT was" in port_stage.detail
    # A pass on another port than the offered one carries a warning of its own.
    assert len(result.warnings) == 1
    assert f"listened on port {result.port}, not on the offered port" in result.warnings[0]
    assert result.to_json()["warnings"] == result.warnings


async def test_parent_secret_never_reaches_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VERDICT_CANARY_SECRET", "canary-7f3a9c")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-canary-7f3a9c")
    result = await check("env", env={"EXTRA_SETTING": "given"})
    assert result.verdict == Verdict.PASS, result.reason
    texts = [line.text for line in result.log_tail]
    assert not any("canary-7f3a9c" in text for text in texts)
    names = {text.split("=")[0][4:] for text in texts if text.startswith("ENV ")}
    assert {"PATH", "HOME", "PORT", "HOST", "EXTRA_SETTING"} <= names
    assert "OPENAI_API_KEY" not in names and "VERDICT_CANARY_SECRET" not in names


def _alive(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rfind(b")") + 2 :].split()[0].decode()


class _TreeAtPort(list[Event]):
    """Events, and the run's processes as seen from here once its port was found (the pids
    the app prints are its own namespace's)."""

    def __init__(self) -> None:
        super().__init__()
        self.pids: list[int] = []

    def append(self, event: Event) -> None:
        super().append(event)
        if isinstance(event, PortFound) and not self.pids:
            self.pids = _marked(f"VERDICT_RUN={event.run_id}".encode())


async def test_zero_survivors_and_no_zombies() -> None:
    events = _TreeAtPort()
    result = await check("escape", events=events)
    assert result.verdict == Verdict.PASS, result.reason
    printed = [line.text for line in result.log_tail]
    assert sum(text.split()[0] in ("stubborn", "detached", "grandchild") for text in printed) == 3
    pids = events.pids
    assert len(pids) >= 5, printed  # the app, stubborn, detached, its sleep, and more
    assert [pid for pid in pids if _alive(pid) is not None] == []  # not even zombies
    # Nothing anywhere still carries the run's marker.
    assert _marked(f"VERDICT_RUN={result.run_id}".encode()) == []


def _marked(marker: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as handle:
                    if marker in handle.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
    return found


async def test_checks_run_concurrently_in_one_loop() -> None:
    start = time.monotonic()
    results = await asyncio.gather(
        check("ok", settle=1.0), check("http500"), check("ok", settle=1.0, project=PYAPP)
    )
    assert [r.verdict for r in results] == [Verdict.PASS, Verdict.HTTP_ERROR, Verdict.PASS]
    assert len({r.run_id for r in results}) == 3
    assert len({r.port for r in results}) == 3
    assert time.monotonic() - start < 2 * 1.0 + 8  # overlapping, not one after another


async def test_cancelled_check_leaves_no_process() -> None:
    events: list[Event] = []
    task = asyncio.create_task(check("no_port", start_timeout=60.0, events=events))
    deadline = time.monotonic() + 15
    while not any(event.kind == "log_batch" for event in events):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    pid = int(
        next(
            e
            for e in events
            if e.kind == "stage_changed" and e.name == "start" and e.status == "ok"
        ).detail.split()[1]
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _alive(pid) is None


# --- logs -----------------------------------------------------------------------------------
async def test_log_is_capped_and_says_so() -> None:
    events: list[Event] = []
    spec = CheckSpec(
        project=PYAPP,
        run=f"{PY} app.py",
        env={"MODE": "spam", "LINES": "500"},
        start_timeout=15.0,
        settle=0.3,
    )
    settings = SandboxSettings(stop_grace=0.5, max_log_lines=100)
    result = await run_check(spec, settings=settings, emit=events.append)
    assert result.verdict == Verdict.PASS
    batches = [e for e in events if e.kind == "log_batch"]
    stored = [line for batch in batches for line in batch.lines]
    assert len(stored) == 101  # the cap, plus the system line saying so
    assert stored[-1].stream == "system" and "100" in stored[-1].text
    assert any(batch.truncated for batch in batches)
    assert "line 499" in [line.text for line in result.log_tail]  # the tail still moves on


async def test_binary_output_is_decoded_with_replacement() -> None:
    result = await check("binary")
    assert any(line.text == "bad bytes \ufffd\ufffd here" for line in result.log_tail)


# --- fingerprints ---------------------------------------------------------------------------
async def test_fingerprints_same_failure_equal_different_failure_differ() -> None:
    first, second, other, node = await asyncio.gather(
        check("config_error"),
        check("config_error"),
        check("import_error"),
        check("crash", project=NODEAPP, run="node server.js"),
    )
    assert first.run_id != second.run_id
    assert first.fingerprint == second.fingerprint
    assert len({first.fingerprint, other.fingerprint, node.fingerprint}) == 3
