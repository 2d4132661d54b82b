"""``verdict show`` on matrix and check runs, and the rerun links in ``verdict history``."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support.cli import run_verdict

pytestmark = pytest.mark.timeout(180)

FIXTURES = Path(__file__).parent.parent / "fixtures"


class Home:
    """A database with a matrix run, two ``verdict check`` runs and a rerun that fixed one."""

    def __init__(self, root: Path) -> None:
        self.db = root / "v.db"
        self.matrix_dir = root / "queue"
        shutil.copytree(FIXTURES / "queue", self.matrix_dir)
        # module-scoped: runs before the per-test XDG isolation, so isolate it here
        self.env = dict(
            os.environ,
            XDG_DATA_HOME=str(root / "data"),
            XDG_CONFIG_HOME=str(root / "cfg"),
            VERDICT_SANDBOX_SETTLE="0.3",
            VERDICT_SANDBOX_STOP_GRACE="0.5",
            COLUMNS="80",
        )

    def verdict(self, *args: str) -> tuple[int, str, str]:
        result = run_verdict(*args, db=self.db, env=self.env, timeout=120)
        return result.returncode, result.stdout, result.stderr

    def show_json(self, run_id: str, *args: str) -> dict:
        code, out, err = self.verdict("show", run_id, "--json", *args)
        assert code == 0, err
        return json.loads(out)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(tmp_path_factory.mktemp("show"))
    code, out, err = home.verdict("run", str(home.matrix_dir / "quick.toml"), "--json")
    assert code == 1, err  # v2/m1 crashes, v2/m2 has no recorded generation
    home.jobs = {(e["prompt"], e["model"]): e for e in json.loads(out)["jobs"]}  # type: ignore[attr-defined]
    home.checks = []  # type: ignore[attr-defined]
    for _ in range(2):  # the same crash twice: one fingerprint shared by two runs
        code, out, err = home.verdict(
            "check", str(FIXTURES / "pyapp"), "--env", "MODE=config_error", "--json"
        )
        assert code == 1, err
        home.checks.append(json.loads(out))  # type: ignore[attr-defined]
    # The recorded v2/m1 generation is "fixed", then that combination is rerun: it passes.
    replay = home.matrix_dir / "replay"
    shutil.copyfile(replay / "v1" / "m1" / "app.py", replay / "v2" / "m1" / "app.py")
    crashed = home.jobs[("v2", "m1")]  # type: ignore[attr-defined]
    code, out, err = home.verdict("rerun", crashed["run_id"], "--json")
    assert code == 0, err
    [home.rerun] = json.loads(out)["jobs"]  # type: ignore[attr-defined]
    return home


def test_show_a_passing_matrix_run(home: Home) -> None:
    passed = home.jobs[("v1", "m1")]  # type: ignore[attr-defined]
    data = home.show_json(passed["run_id"][:10])  # a unique prefix works
    assert data["run_id"] == passed["run_id"] and data["verdict"] == "pass"
    assert data["combination"] == {"spec": "quick", "prompt": "v1", "model": "m1"}
    assert data["http"]["root"] == 200 and data["port"] and data["command"] == "python3 app.py"
    assert [s["name"] for s in data["stages"]] == ["start", "port", "http_root", "settle"]
    assert data["generation"]["generator"] == "replay" and data["generation"]["responses"] == []
    assert data["generation"]["files"] == ["app.py", "verdict.toml"]
    assert data["failure"] is None and data["explain"] is None and data["rerun_of"] is None
    assert data["log"]["lines"] and data["log"]["total"] == len(data["log"]["lines"])

    code, out, _ = home.verdict("show", passed["run_id"])
    assert code == 0 and out.startswith(" PASS ")
    assert "quick/v1/m1" in out and "GET / 200" in out and "generation  replay  ok" in out
    assert "verdict explain" not in out
    assert all(len(line) <= 80 for line in out.splitlines())


def test_show_a_failing_matrix_run_with_its_fix(home: Home) -> None:
    crashed = home.jobs[("v2", "m1")]  # type: ignore[attr-defined]
    rerun = home.rerun  # type: ignore[attr-defined]
    data = home.show_json(crashed["run_id"])
    assert data["verdict"] == "crashed" and data["exit"]["class"] == "error"
    assert data["failure"]["exception"] == "ModuleNotFoundError"
    assert any(f["app"] and f["file"].endswith("app.py") for f in data["failure"]["frames"])
    assert data["fingerprint"] == crashed["fingerprint"] and data["same_fingerprint"] == 0
    assert data["reruns"] == [
        {
            "run_id": rerun["run_id"],
            "combination": "quick/v2/m1",
            "verdict": "pass",
            "passed": True,
        }
    ]
    assert data["explain"] == f"verdict explain {crashed['run_id']}"
    assert data["log"]["lines"][-1]["text"].startswith("ModuleNotFoundError")
    assert len(home.show_json(crashed["run_id"], "--log", "2")["log"]["lines"]) == 2

    code, out, _ = home.verdict("show", crashed["run_id"], "--log", "3")
    assert code == 0 and out.startswith(" CRASHED ")
    assert "ModuleNotFoundError: No module named 'missing_module'" in out
    assert f"fingerprint {crashed['fingerprint']}" in out
    assert f"{rerun['run_id']}  pass" in out
    assert f"last 3 of {data['log']['total']} log lines:" in out
    assert out.rstrip().endswith(f"verdict explain {crashed['run_id']}")
    assert all(len(line) <= 80 for line in out.splitlines())

    fix = home.show_json(rerun["run_id"])
    assert fix["verdict"] == "pass" and fix["rerun_of"] == {
        "run_id": crashed["run_id"],
        "verdict": "crashed",
        "fingerprint": crashed["fingerprint"],
    }
    code, out, _ = home.verdict("show", rerun["run_id"])
    assert f"reruns {crashed['run_id']}" in out and f"fixes {crashed['fingerprint'][:8]}" in out


def test_show_a_check_run(home: Home) -> None:
    first, second = home.checks  # type: ignore[attr-defined]
    data = home.show_json(second["run_id"])
    assert data["combination"] is None and data["generation"] is None
    assert data["project"] == str(FIXTURES / "pyapp") and "app.py" in data["command"]
    assert data["failure"]["exception"] == "KeyError"
    assert data["fingerprint"] == first["fingerprint"] and data["same_fingerprint"] == 1
    code, out, _ = home.verdict("show", second["run_id"])
    assert code == 0 and "KeyError" in out and "shared by 1 other run" in out
    assert "generation" not in out and f"verdict explain {second['run_id']}" in out


def test_show_bad_input_is_one_line_and_exit_2(home: Home) -> None:
    code, out, err = home.verdict("show", "no-such-run")
    assert code == 2 and out == ""
    assert err == "verdict show: error: no run 'no-such-run' (see 'verdict history')\n"
    code, _, err = home.verdict("show", home.checks[0]["run_id"], "--log", "-3")  # type: ignore[attr-defined]
    assert code == 2 and err.count("\n") == 1


def test_history_marks_the_rerun_and_the_fingerprint_it_fixed(home: Home) -> None:
    crashed = home.jobs[("v2", "m1")]  # type: ignore[attr-defined]
    rerun = home.rerun  # type: ignore[attr-defined]
    code, out, _ = home.verdict("history", "--limit", "50")
    assert code == 0
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    row = next(i for i, line in enumerate(lines) if line.startswith(rerun["run_id"]))
    link = lines[row + 1]  # a rerun's second line: what it reruns, what it fixed
    assert link.startswith(f"↻ {crashed['run_id'][:8]}")
    assert link.rstrip().endswith(f"fixes {crashed['fingerprint'][:8]}")
    assert sum("↻" in line for line in lines) == 1  # only the rerun is marked

    code, out, _ = home.verdict("history", "--limit", "50", "--json")
    rows = {r["run_id"]: r for r in json.loads(out)}
    assert rows[rerun["run_id"]]["rerun_of"] == crashed["run_id"]
    assert rows[rerun["run_id"]]["fixes"] == crashed["fingerprint"]
    assert rows[crashed["run_id"]]["fixes"] is None and rows[crashed["run_id"]]["rerun_of"] is None
