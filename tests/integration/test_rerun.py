"""``verdict rerun``: a new attempt linked to the old run, and ``--fan-out``."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import run_verdict

pytestmark = pytest.mark.timeout(120)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "queue"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[tuple[str, str], dict]]:
    home = tmp_path_factory.mktemp("rerun")
    db = home / "v.db"
    # module-scoped: runs before the per-test XDG isolation, so isolate it here
    env = dict(os.environ, XDG_DATA_HOME=str(home / "data"), XDG_CONFIG_HOME=str(home / "cfg"))
    result = run_verdict(
        "run", str(FIXTURES / "quick.toml"), "--slots", "2", "--json", db=db, env=env
    )
    jobs = {(e["prompt"], e["model"]): e for e in json.loads(result.stdout)["jobs"]}
    return db, jobs


def test_rerun_is_a_new_attempt_linked_to_the_old_run(history: tuple[Path, dict]) -> None:
    db, jobs = history
    crashed = jobs[("v2", "m1")]
    result = run_verdict("rerun", crashed["run_id"], "--json", db=db)
    assert result.returncode == 1  # still crashes
    (entry,) = json.loads(result.stdout)["jobs"]
    assert (entry["prompt"], entry["model"], entry["verdict"]) == ("v2", "m1", "crashed")
    assert entry["attempt"] > crashed["attempt"] and entry["job_id"] != crashed["job_id"]
    assert entry["fingerprint"] == crashed["fingerprint"]  # the same failure, recognised
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT rerun_of FROM runs WHERE run_id = ?", (entry["run_id"],)
        ).fetchone() == (crashed["run_id"],)


def test_fan_out_reports_which_other_combinations_pass(history: tuple[Path, dict]) -> None:
    db, jobs = history
    crashed = jobs[("v2", "m1")]
    result = run_verdict("rerun", crashed["run_id"], "--fan-out", db=db)
    assert result.returncode == 0, result.stderr  # a working combination was found
    assert "2 of 3 combinations pass: quick/v1/m1, quick/v1/m2" in result.stderr
    with sqlite3.connect(db) as conn:
        linked = conn.execute(
            "SELECT prompt, model, verdict FROM runs WHERE rerun_of = ? AND NOT"
            " (prompt = 'v2' AND model = 'm1') ORDER BY prompt, model",
            (crashed["run_id"],),
        ).fetchall()
        origins = conn.execute(
            "SELECT DISTINCT origin FROM jobs WHERE rerun_of = ?", (crashed["run_id"],)
        ).fetchall()
    assert linked == [("v1", "m1", "pass"), ("v1", "m2", "pass"), ("v2", "m2", "generation_failed")]
    assert {o for (o,) in origins} >= {"fan_out"}


def test_rerun_of_an_unknown_run_is_bad_input(history: tuple[Path, dict]) -> None:
    db, _ = history
    result = run_verdict("rerun", "no-such-run", db=db)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "verdict rerun: error: no run 'no-such-run' (see 'verdict history')"
    )


def test_history_names_each_runs_combination_and_filters_by_verdict(
    history: tuple[Path, dict],
) -> None:
    db, jobs = history
    env = dict(os.environ, COLUMNS="200")
    listed = run_verdict("history", "--limit", "50", db=db, env=env)
    assert listed.returncode == 0
    for (prompt, model), job in jobs.items():
        row = next(line for line in listed.stdout.splitlines() if job["run_id"] in line)
        assert f"{job['spec']}/{prompt}/{model}" in row
    verdict_name = next(job["verdict"] for job in jobs.values() if job["verdict"] != "pass")
    expected = {job["run_id"] for job in jobs.values() if job["verdict"] == verdict_name}
    filtered = run_verdict("history", "--verdict", verdict_name, "--limit", "50", "--json", db=db)
    rows = json.loads(filtered.stdout)
    assert {row["verdict"] for row in rows} == {verdict_name}
    assert expected <= {row["run_id"] for row in rows}  # other tests here may add reruns
    bad = run_verdict("history", "--verdict", "nope", db=db)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
