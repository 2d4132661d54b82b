"""The Recorder turns events (in-process or from a topic, as JSON) into stored runs."""

from __future__ import annotations

from console.model import (
    CheckResult,
    Event,
    EventEnvelope,
    JobStarted,
    LogBatch,
    LogLine,
    RunAborted,
    RunStarted,
    StageChanged,
    Verdict,
    VerdictReached,
)
from console.recorder import Recorder
from storage import runs
from storage.db import Database


def test_recorder_stores_every_run_event_once(db: Database) -> None:
    recorder = Recorder(db)
    final = CheckResult(run_id="r9", verdict=Verdict.PASS, reason="ok", port=8080, http_root=200)
    events: list[Event] = [
        RunStarted(run_id="r9", project="/p", command="node server.js"),
        StageChanged(run_id="r9", name="port", status="running"),
        LogBatch(run_id="r9", lines=[LogLine(seq=1, ts=1.0, text="listening")]),
        StageChanged(run_id="r9", name="port", status="ok", ms=40.0, detail="0.0.0.0:8080"),
        JobStarted(job_id="j", run_id="r9"),  # not a run event: ignored, no error
        VerdictReached(run_id="r9", result=final),
    ]
    for event in events:
        # Through JSON and back, as in distributed mode.
        recorder.handle(
            EventEnvelope.model_validate_json(EventEnvelope(event=event).model_dump_json()).event
        )
    recorder.handle(VerdictReached(run_id="r9", result=final))
    record = runs.get_run(db, "r9")
    assert record is not None
    assert (record.verdict, record.port, record.command, record.log_lines) == (
        Verdict.PASS,
        8080,
        "node server.js",
        1,
    )
    assert db.query("SELECT COUNT(*) AS n FROM verdicts") == [{"n": 1}]
    assert runs.run_stages(db, "r9")[0]["detail"] == "0.0.0.0:8080"


def test_an_aborted_run_is_marked_and_never_overrides_a_verdict(db: Database) -> None:
    recorder = Recorder(db)
    recorder.handle(RunStarted(run_id="r1", project="/p"))
    recorder.handle(RunAborted(run_id="r1", reason="stopped before a verdict"))
    stored = runs.get_run(db, "r1")
    assert stored is not None and stored.status == "aborted" and stored.verdict is None
    assert stored.reason == "stopped before a verdict"

    recorder.handle(RunStarted(run_id="r2", project="/p"))
    recorder.handle(
        VerdictReached(
            run_id="r2", result=CheckResult(run_id="r2", verdict=Verdict.PASS, reason="ok")
        )
    )
    recorder.handle(RunAborted(run_id="r2", reason="late"))  # e.g. redelivered out of order
    stored = runs.get_run(db, "r2")
    assert stored is not None and stored.status == "done" and stored.verdict == Verdict.PASS
