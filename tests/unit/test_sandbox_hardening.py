"""The local sandbox against awkward output and a hostile parent environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.model import Event, LogBatch
from console.sandbox.local import MAX_LINE_CHARS, LocalSandbox, _Protocol
from console.sandbox.logs import LogCollector


class Lines:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def __call__(self, stream: str, text: str, ts: float) -> None:
        self.items.append((stream, text))


def test_an_endless_line_is_kept_once_not_stored_in_pieces() -> None:
    lines = Lines()
    protocol = _Protocol(lines)
    protocol.pipe_data_received(1, b"first\n")
    for _ in range(300):  # ~20 MB without a newline, in pipe-sized chunks
        protocol.pipe_data_received(1, b"y" * 65_536)
    protocol.pipe_data_received(1, b"yyy\nafter\n")
    protocol.pipe_data_received(2, b"z" * 200_000)
    protocol.pipe_connection_lost(2, None)
    texts = [text for _, text in lines.items]
    assert texts[0] == "first"
    assert texts[1].startswith("y" * 1000) and len(texts[1]) <= MAX_LINE_CHARS + 20
    assert "bytes of this line dropped" in texts[2]
    assert texts[3] == "after"
    stderr = [text for stream, text in lines.items if stream == "stderr"]
    assert len(stderr) == 2 and "dropped" in stderr[1]
    assert len(texts) == 6


def test_parent_secrets_never_reach_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canaries = {
        "VERDICT_LLM_API_KEY": "canary-1",
        "OPENAI_API_KEY": "canary-2",
        "AWS_ACCESS_KEY_ID": "canary-3",
        "AWS_SECRET_ACCESS_KEY": "canary-4",
        "AWS_SESSION_TOKEN": "canary-5",
    }
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    box = LocalSandbox("t-env", base_dir=tmp_path)
    env = box.environment()
    assert not set(canaries) & set(env)
    assert not any(value.startswith("canary-") for value in env.values())
    assert env["HOME"] == str(box.workdir)
    assert env["TMPDIR"].startswith(str(box.workdir) + "/")


def test_a_noisy_install_leaves_room_for_the_run_log() -> None:
    events: list[Event] = []
    logs = LogCollector("r1", emit=events.append, max_lines=100)
    logs.phase = "install"
    for number in range(500):
        logs.on_line("stdout", f"downloading package {number}", 0.0)
    logs.phase = "run"
    logs.on_line("stderr", "Traceback (most recent call last):", 0.0)
    logs.flush()
    stored = [line for event in events if isinstance(event, LogBatch) for line in event.lines]
    assert "Traceback (most recent call last):" in [line.text for line in stored]
    assert len(stored) <= 100 + 2  # the cap, plus the notes saying where it cut
    notes = [line for line in stored if line.stream == "system"]
    assert len(notes) == 1 and "install" in notes[0].text and notes[0].phase == "install"
    assert logs.truncated


async def test_a_project_containing_the_runs_directory_is_not_copied_into_itself(
    tmp_path: Path,
) -> None:
    project = tmp_path / "home"
    project.mkdir()
    (project / "app.py").write_text("print('hi')")
    box = LocalSandbox("t-self", base_dir=project / ".local" / "runs")
    try:
        await box.prepare(project)  # e.g. `verdict check ~` with the data dir under ~
        assert (box.project_dir / "app.py").read_text() == "print('hi')"
        assert not (box.project_dir / ".local" / "runs").exists()
    finally:
        await box.close()
