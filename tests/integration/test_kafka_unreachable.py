"""An unreachable broker is bad input: one line on stderr, exit 2, nothing queued."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["run", "worker"])
def test_unreachable_broker_is_one_line_and_exit_2(command: str, tmp_path: Path) -> None:
    url = f"kafka://127.0.0.1:{_closed_port()}"
    args = ["run", str(ROOT / "examples" / "quick.toml")] if command == "run" else ["worker"]
    db = tmp_path / "v.db"
    proc = subprocess.run(
        [sys.executable, "-m", "console.cli", "--db", str(db), *args, "--queue", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "cannot reach the Kafka broker" in proc.stderr
    if command == "run" and db.exists():
        from storage import jobs
        from storage.db import Database

        assert jobs.count_by_state(Database(db)) == {}
