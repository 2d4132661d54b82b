"""The local sandbox holds hostile code: namespaces, no escapes, no secrets, no network.

Each test runs the hostile fixture project (``tests/fixtures/hostile/app.py``) for real and
looks at the machine from outside afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from console.checker import run_check
from console.model import CheckResult, CheckSpec, Event, LogBatch, Verdict
from console.sandbox import namespaces
from console.settings import SandboxSettings
from tests.support.cli import run_verdict

HOSTILE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"
PY = sys.executable
CANARY = "canary-6b1f0e9d"

needs_namespaces = pytest.mark.skipif(
    bool(namespaces.unavailable()), reason=f"no namespaces here: {namespaces.unavailable()}"
)


def _processes_with(token: str) -> list[int]:
    """Processes on this machine (seen from here) whose command line holds ``token``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if token.encode() in handle.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


async def _check(
    mode: str,
    settings: SandboxSettings | None = None,
    events: list[Event] | None = None,
    **env: str,
) -> CheckResult:
    spec = CheckSpec(
        project=HOSTILE,
        run=f"{PY} app.py",
        env={"MODE": mode, **env},
        start_timeout=15.0,
        settle=0.2,
    )
    sink = events if events is not None else []
    return await run_check(spec, settings=settings or SandboxSettings(), emit=sink.append)


@needs_namespaces
@pytest.mark.parametrize("technique", ["double_fork", "setsid", "cleared_env", "nohup", "daemon"])
async def test_no_detaching_technique_leaves_a_process(technique: str) -> None:
    token = f"linger-{technique}-{os.getpid()}-{time.monotonic_ns()}"
    result = await _check(technique, TOKEN=token)
    assert result.verdict == Verdict.PASS, result.reason
    assert result.isolation == "namespaces"
    assert any(line.text == f"started {technique}" for line in result.log_tail)
    # Checked at once, not after a wait: the namespace is empty when the run ends.
    assert _processes_with(token) == []


async def test_without_namespaces_a_double_fork_with_a_cleared_environment_escapes() -> None:
    """The reason for namespaces: the marker-based sandbox cannot find such a process."""
    token = f"linger-fallback-{os.getpid()}-{time.monotonic_ns()}"
    try:
        result = await _check("double_fork", SandboxSettings(isolation="off"), TOKEN=token)
        assert result.isolation.startswith("none: turned off")
        # the escaped process may still be finishing its second fork on a busy machine
        deadline = time.monotonic() + 5
        while not _processes_with(token) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        assert _processes_with(token) != []
    finally:
        for pid in _processes_with(token):
            os.kill(pid, 9)


@needs_namespaces
async def test_the_app_sees_only_its_own_namespace() -> None:
    events: list[Event] = []
    result = await _check("snoop", events=events)
    assert result.verdict == Verdict.PASS, result.reason
    texts = [line.text for e in events if isinstance(e, LogBatch) for line in e.lines]
    seen = sorted(
        int(text.split()[1])
        for text in texts
        if text.startswith("cmdline ") and text.split()[1].isdigit()
    )
    # The namespace's init, the shell or the app, and nothing of the host's.
    assert seen and max(seen) < 10, seen
    first = next(text for text in texts if text.startswith("uid "))
    if os.geteuid() == 0:
        assert first.split()[1] != "0"  # root's projects run as an unprivileged user
    assert not any(text.startswith("file verdict") for text in texts), texts


@needs_namespaces
def test_a_canary_in_the_harness_environment_reaches_nothing_stored_or_shown(
    tmp_path: Path,
) -> None:
    db = tmp_path / "verdict.db"
    env = dict(os.environ)
    env.update(
        {
            "OPENAI_API_KEY": f"sk-{CANARY}",
            "VERDICT_LLM_API_KEY": f"key-{CANARY}",
            "AWS_SECRET_ACCESS_KEY": f"aws-{CANARY}",
            "SOME_CANARY_VALUE": CANARY,  # not secret-named: only isolation keeps it away
        }
    )
    outputs = []
    for extra in ([], ["--json"]):
        done = run_verdict(
            "check",
            str(HOSTILE),
            "--run",
            f"{PY} app.py",
            "--env",
            "MODE=snoop",
            *extra,
            "--settle",
            "0.2",
            db=db,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        outputs += [done.stdout, done.stderr]
        if extra:
            data = json.loads(done.stdout)
            assert data["isolation"] == "namespaces"
    assert not any(CANARY in text for text in outputs)
    with sqlite3.connect(db) as conn:
        logged = [row[0] for row in conn.execute("SELECT text FROM log_lines")]
        dump = "\n".join(conn.iterdump())
    assert any(text.startswith("environ ") for text in logged)  # it did look
    assert CANARY not in dump


def test_known_secret_values_are_redacted_from_stored_logs(
    tmp_path: Path,
) -> None:
    """Even a secret handed to the app on purpose is not stored as it printed it."""
    db = tmp_path / "verdict.db"
    env = dict(os.environ, OPENAI_API_KEY=f"sk-{CANARY}")
    done = run_verdict(
        "check",
        str(HOSTILE),
        "--run",
        f"{PY} app.py",
        "--env",
        "MODE=snoop",
        "--env",
        f"GIVEN_ON_PURPOSE=sk-{CANARY}",
        "--settle",
        "0.2",
        "--json",
        db=db,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert CANARY not in done.stdout
    with sqlite3.connect(db) as conn:
        logged = "\n".join(row[0] for row in conn.execute("SELECT text FROM log_lines"))
    assert "GIVEN_ON_PURPOSE=[REDACTED]" in logged
    assert CANARY not in logged


def test_without_namespaces_check_warns_in_one_line_and_in_the_json(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[sandbox]\nisolation = "off"\n')
    env = dict(os.environ, VERDICT_CONFIG=str(config))
    done = run_verdict(
        "check",
        str(HOSTILE),
        "--run",
        f"{PY} app.py",
        "--env",
        "MODE=setsid",
        "--env",
        "TOKEN=fallback-warning",
        "--settle",
        "0.2",
        "--json",
        db=tmp_path / "verdict.db",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if "no namespace isolation" in line]
    assert len(warnings) == 1 and "turned off" in warnings[0]
    assert json.loads(done.stdout)["isolation"].startswith("none: ")


def test_the_harness_is_not_dumpable_once_it_records() -> None:
    code = (
        "import ctypes; from console.sandbox.namespaces import protect_harness;"
        " libc = ctypes.CDLL(None); assert libc.prctl(3, 0, 0, 0, 0) == 1;"
        " assert protect_harness(); print(libc.prctl(3, 0, 0, 0, 0))"
    )
    done = __import__("subprocess").run(
        [PY, "-c", code], capture_output=True, text=True, check=False, timeout=30
    )
    assert done.stdout.strip() == "0", done.stderr


class _Listener:
    """A TCP listener on the host's loopback that counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]


@pytest.mark.skipif(
    bool(namespaces.unavailable(network_none=True)),
    reason=f"no network namespaces: {namespaces.unavailable(network_none=True)}",
)
async def test_network_none_cuts_egress_and_the_probes_still_reach_the_app() -> None:
    listener = _Listener()
    try:
        cut = await _check(
            "egress", SandboxSettings(network="none"), EGRESS_PORT=str(listener.port)
        )
        open_ = await _check("egress", SandboxSettings(), EGRESS_PORT=str(listener.port))
    finally:
        listener.sock.close()
    assert cut.verdict == Verdict.PASS, cut.reason  # GET / reached it through the relay
    assert cut.http_root == 200 and cut.isolation == "namespaces, network none"
    assert any(line.text.startswith("egress blocked") for line in cut.log_tail)
    assert open_.verdict == Verdict.PASS, open_.reason
    assert any(line.text == "egress reached" for line in open_.log_tail)


@pytest.mark.skipif(
    bool(namespaces.unavailable(network_none=True)),
    reason=f"no network namespaces: {namespaces.unavailable(network_none=True)}",
)
def test_a_matrix_setting_runs_its_projects_without_network(tmp_path: Path) -> None:
    queue = HOSTILE.parent / "queue"
    text = (queue / "quick.toml").read_text()
    text = text.replace('"prompts/', f'"{queue}/prompts/')
    text = text.replace('dir = "replay"', f'dir = "{queue}/replay"')
    text = text.replace("[settings]\n", '[settings]\nnetwork = "none"\n')
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(text)
    db = tmp_path / "verdict.db"
    done = run_verdict("run", str(matrix), db=db, timeout=120)
    assert done.returncode == 1, done.stderr  # the fixture matrix fails some cells on purpose
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT verdict, isolation FROM runs WHERE http_root = 200").fetchall()
    assert rows and all(isolation == "namespaces, network none" for _, isolation in rows)


@needs_namespaces
@pytest.mark.skipif(os.geteuid() != 0, reason="a per-run user needs root")
def test_a_passage_through_a_closed_directory_shows_only_the_way(tmp_path: Path) -> None:
    """An interpreter installed in a closed directory (``/root/.pyenv`` under a 0700
    ``/root``) must still run as the run's user, but the directory's other entries (a
    home's dotfiles and caches, world-readable on disk) stay out of sight."""
    import subprocess

    from console.sandbox.local import LAUNCHER

    uid = namespaces.run_uid("passage-test")
    assert uid is not None
    home = tmp_path / "home"
    (home / ".tools").mkdir(parents=True)
    (home / ".tools" / "tool.txt").write_text("the tool\n")
    (home / ".bashrc").write_text(f"export TOKEN={CANARY}\n")
    (home / ".bashrc").chmod(0o644)
    home.chmod(0o700)
    workdir = tmp_path / "run"
    workdir.mkdir()
    namespaces.hand_over(workdir, uid)
    script = f"cat {home}/.tools/tool.txt; cat {home}/.bashrc; test -e {home}/.bashrc && echo seen"
    done = subprocess.run(
        [PY, "-I", "-S", str(LAUNCHER), "--isolate", "--uid", str(uid),
         "--workdir", str(workdir), "--ways", str(home / ".tools"), "--", "sh", "-c", script],
        capture_output=True, text=True, timeout=30, check=False, cwd=workdir,
    )  # fmt: skip
    assert "the tool" in done.stdout, done.stderr
    assert CANARY not in done.stdout + done.stderr and "seen" not in done.stdout
