"""Awkward apps the prober must judge correctly: ports that move, extra listeners,
endless answers, projects with special files and symlinks, logs printed while stopping."""

from __future__ import annotations

import os
import shlex
import socket
import sys
import time
from pathlib import Path

from console.checker import run_check
from console.model import CheckResult, CheckSpec, Event, LogBatch, Verdict
from console.settings import SandboxSettings

PYAPP = Path(__file__).resolve().parents[1] / "fixtures" / "pyapp"
PY = shlex.quote(sys.executable)
SETTINGS = SandboxSettings(stop_grace=0.5)


async def check(
    mode: str, *, project: Path = PYAPP, events: list[Event] | None = None, **fields: object
) -> CheckResult:
    options: dict[str, object] = {"start_timeout": 15.0, "settle": 0.3}
    options.update(fields)
    spec = CheckSpec(
        project=project,
        run=f"{PY} adversary.py",
        env={"MODE": mode},
        **options,  # type: ignore[arg-type]
    )
    sink = events if events is not None else []
    return await run_check(spec, settings=SETTINGS, emit=sink.append)


def stage(result: CheckResult, name: str) -> str:
    return next(s.detail for s in result.stages if s.name == name)


async def test_port_that_moves_is_followed() -> None:
    result = await check("moved")
    assert result.verdict == Verdict.PASS, result.reason
    assert f"listening on {result.port}" in [line.text for line in result.log_tail]


async def test_port_env_is_preferred_over_an_earlier_listener() -> None:
    result = await check("two_ports")
    assert result.verdict == Verdict.PASS, result.reason
    assert f"listening on {result.port}" in [line.text for line in result.log_tail]
    silent = next(
        line.text.split()[-1] for line in result.log_tail if line.text.startswith("probe socket")
    )
    assert f"also listening: {silent}" in stage(result, "port")


async def test_endless_status_line_is_an_http_error_not_a_crash() -> None:
    result = await check("endless_status_line")
    assert result.verdict == Verdict.HTTP_ERROR, result.reason
    assert "not an HTTP response" in result.reason


async def test_a_hanging_health_check_ends_by_the_start_timeout() -> None:
    started = time.monotonic()
    result = await check("health_hangs", health="/health", start_timeout=4.0)
    elapsed = time.monotonic() - started
    assert result.verdict == Verdict.UNHEALTHY, result.reason
    assert result.http_root == 200 and result.http_health is None
    # three attempts of ~4 s each would take 12 s; the deadline holds them to ~4 s
    assert elapsed < 9.0, elapsed


async def test_fail_log_printed_while_stopping_a_passed_app_is_not_a_match() -> None:
    result = await check("error_on_stop", fail_log=[r"ERROR"])
    assert result.verdict == Verdict.PASS, result.reason
    assert result.log_matches == []


def _awkward_project(tmp_path: Path) -> tuple[Path, Path]:
    project = tmp_path / "proj"
    outside = tmp_path / "outside"
    project.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("canary-outside-9d2")
    (project / "adversary.py").write_text((PYAPP / "adversary.py").read_text())
    (project / "data").mkdir()
    (project / "data" / "config.txt").write_text("original")
    os.mkfifo(project / "pipe")
    with socket.socket(socket.AF_UNIX) as unix:
        unix.bind(str(project / "app.sock"))
    (project / "secret_link").symlink_to(outside / "secret.txt")
    (project / "escape_rel").symlink_to(Path("..") / "outside")
    (project / "data_abs").symlink_to(project / "data")  # absolute, into the project
    (project / "data_rel").symlink_to("data")
    (project / "loop_a").symlink_to("loop_b")
    (project / "loop_b").symlink_to("loop_a")
    (project / ".venv" / "bin").mkdir(parents=True)
    (project / ".venv" / "bin" / "python").symlink_to(sys.executable)  # an interpreter: kept
    return project, outside


def _snapshot(root: Path) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_file():
            found[key] = path.read_text()
        else:
            found[key] = "dir" if path.is_dir() else "special"
    return found


async def test_project_with_special_files_and_symlinks_is_copied_safely(tmp_path: Path) -> None:
    project, _outside = _awkward_project(tmp_path)
    before = _snapshot(project)
    events: list[Event] = []
    spec = CheckSpec(
        project=project,
        run=(
            "cat secret_link escape_rel/secret.txt; echo changed > data_abs/config.txt;"
            " cat data_rel/config.txt; ls; exec .venv/bin/python adversary.py"
        ),
        env={"MODE": "ok"},
        start_timeout=15.0,
        settle=0.3,
    )
    result = await run_check(spec, settings=SETTINGS, emit=events.append)
    assert result.verdict == Verdict.PASS, result.reason
    texts = [line.text for e in events if isinstance(e, LogBatch) for line in e.lines]
    assert not any("canary-outside-9d2" in text for text in texts)
    assert "changed" in texts  # the copy's own data, reached through both links
    assert _snapshot(project) == before  # the original is untouched
    notes = [text for text in texts if text.startswith("[project copied")]
    assert len(notes) == 1, texts
    for skipped in ("pipe", "app.sock", "secret_link", "escape_rel"):
        assert skipped in notes[0]


async def test_app_escape_sequences_never_reach_the_reason_sentence(tmp_path: Path) -> None:
    # No stack trace: the reason quotes the app's last words, which carry terminal escapes.
    (tmp_path / "app.py").write_text(
        "import sys\n"
        "print('fatal \\x1b]0;pwned\\x07 \\x1b[2J bad \\x00config', flush=True)\n"
        "sys.exit(3)\n"
    )
    spec = CheckSpec(project=tmp_path, run=f"{PY} app.py", start_timeout=15.0, settle=0.3)
    result = await run_check(spec, settings=SETTINGS)
    assert result.verdict == Verdict.CRASHED
    assert "fatal" in result.reason and "bad config" in result.reason
    assert not any(ch in result.reason for ch in "\x1b\x07\x00")
    # The log itself keeps what the app printed, for --json and the stored history.
    assert any("\x1b]0;pwned\x07" in line.text for line in result.log_tail)
