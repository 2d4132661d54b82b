"""`verdict check` records a real crashing project; `verdict explain RUN_ID` explains it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.cli import main

CRASHAPP = Path(__file__).parent.parent / "fixtures" / "explain" / "crashapp"


def test_check_then_explain_the_recorded_run(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(db_path)
    check = ["--db", db, "check", str(CRASHAPP), "--run", "python3 app.py", "--json"]
    check += ["--start-timeout", "20"]
    assert main(check) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["verdict"] == "crashed"
    run_id = verdict["run_id"]

    assert main(["--db", db, "explain", run_id, "--offline", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exception"] == "KeyError" and "SHOP_DATABASE_URL" in out["message"]
    assert [f["name"] for f in out["app_frames"]][:2] == ["load_settings", "<module>"]
    # The source of the run's project gives the frame its signature.
    assert out["app_frames"][0]["signature"] == "load_settings() -> dict[str, str]"
    assert out["source"] == "offline"
    assert "SHOP_DATABASE_URL" in out["explanation"]["guide"]

    assert main(["--db", db, "explain", run_id, "--offline", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "cached"
    assert main(["--db", db, "explanations", "--search", "SHOP_DATABASE_URL", "--json"]) == 0
    assert [row["run_id"] for row in json.loads(capsys.readouterr().out)] == [run_id]
