"""The runs tables: migrations, idempotent writes in any order, and the read functions."""

from __future__ import annotations

from pathlib import Path

from console.model import (
    CheckResult,
    Combination,
    ExitClass,
    ExitInfo,
    Failure,
    Frame,
    LogBatch,
    LogLine,
    PortFound,
    RunStarted,
    StageChanged,
    StageResult,
    Verdict,
)
from storage import runs
from storage.db import Database


def result(run_id: str = "r1", **fields: object) -> CheckResult:
    data: dict[str, object] = dict(
        run_id=run_id,
        verdict=Verdict.CRASHED,
        reason="The app exited with status 1 (error) 0.2 s after start: KeyError: 'x'",
        exit=ExitInfo(code=1, cls=ExitClass.ERROR),
        stages=[
            StageResult(name="start", ok=True, started=1.0, ms=2.0, detail="pid 1"),
            StageResult(name="port", ok=False, started=1.1, ms=150.0, detail="exited"),
        ],
        failure=Failure(
            exception="KeyError",
            message="'x'",
            language="python",
            frames=[Frame(name="load", file="app.py", line=3, app=True)],
        ),
        fingerprint="abc123",
        started=100.0,
        finished=101.5,
        command="python3 app.py",
    )
    data.update(fields)
    return CheckResult.model_validate(data)


def test_migration_is_recorded_and_reopen_is_a_no_op(db_path: Path) -> None:
    first = Database(db_path)
    assert first.schema_version("runs") == len(runs.MIGRATIONS) >= 1
    first.close()
    again = Database(db_path)
    assert {"runs", "stages", "log_lines", "verdicts", "failures"} <= set(again.db.table_names())
    again.close()


def test_full_run_round_trip(db: Database) -> None:
    combo = Combination(spec="todo-api", prompt="v2", model="m1")
    runs.record_run_started(
        db,
        RunStarted(
            run_id="r1",
            project="/p",
            command="python3 app.py",
            job_id="j1",
            combination=combo,
            attempt=2,
            rerun_of="r0",
            ts=100.0,
        ),
    )
    runs.record_stage(db, StageChanged(run_id="r1", name="start", status="running", ts=100.1))
    runs.record_stage(db, StageChanged(run_id="r1", name="start", status="ok", ms=2.0))
    runs.record_port(db, PortFound(run_id="r1", port=4321))
    lines = [LogLine(seq=i, ts=100.0 + i, text=f"line {i}") for i in range(1, 6)]
    runs.record_log_batch(db, LogBatch(run_id="r1", lines=lines[:3]))
    runs.record_log_batch(db, LogBatch(run_id="r1", lines=lines[2:]))  # one line again
    runs.record_result(db, result())

    record = runs.get_run(db, "r1")
    assert record is not None
    assert (record.job_id, record.spec, record.prompt, record.model) == (
        "j1",
        "todo-api",
        "v2",
        "m1",
    )
    assert (record.attempt, record.rerun_of, record.status) == (2, "r0", "done")
    assert record.verdict == Verdict.CRASHED and record.exit_class == "error"
    assert record.log_lines == 5 and record.duration == 1.5
    assert record.result is not None and record.result.failure is not None
    assert record.result.failure.frames[0].name == "load"
    assert [s["name"] for s in runs.run_stages(db, "r1")] == ["start", "port"]
    assert [line.text for line in runs.run_log(db, "r1", offset=1, limit=2)] == ["line 2", "line 3"]
    failures = db.query("SELECT exception, fingerprint FROM failures")
    assert failures == [{"exception": "KeyError", "fingerprint": "abc123"}]
    assert runs.get_run(db, "r") is not None  # unique prefix
    assert [r.run_id for r in runs.runs_for_job(db, "j1")] == ["r1"]
    assert [r.run_id for r in runs.runs_with_fingerprint(db, "abc123")] == ["r1"]


def test_events_out_of_order_and_twice(db: Database) -> None:
    runs.record_log_batch(
        db, LogBatch(run_id="r2", lines=[LogLine(seq=1, ts=1.0, text="a")], truncated=True)
    )
    runs.record_result(db, result("r2"))
    runs.record_result(db, result("r2"))
    runs.record_run_started(db, RunStarted(run_id="r2", project="/p", ts=99.0))
    assert db.query("SELECT COUNT(*) AS n FROM verdicts WHERE run_id = 'r2'") == [{"n": 1}]
    record = runs.get_run(db, "r2")
    assert record is not None and record.verdict == Verdict.CRASHED and record.log_truncated


def test_recent_runs_newest_first_and_by_verdict(db: Database) -> None:
    for i, verdict in enumerate([Verdict.PASS, Verdict.CRASHED, Verdict.PASS]):
        runs.record_result(
            db, result(f"r{i}", verdict=verdict, started=10.0 + i, finished=11.0 + i)
        )
    assert [r.run_id for r in runs.recent_runs(db, 2)] == ["r2", "r1"]
    assert [r.run_id for r in runs.recent_runs(db, 10, verdict=Verdict.PASS)] == ["r2", "r0"]
    assert runs.get_run(db, "missing") is None
