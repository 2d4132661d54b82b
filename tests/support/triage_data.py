"""A history with attempts, reruns, fan-outs, fixes and a fingerprint that came back:
fixed ids and times, for triage tests and snapshots."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from console.model import (
    CheckResult,
    Combination,
    ExitClass,
    ExitInfo,
    Failure,
    Frame,
    GenerationFinished,
    Job,
    LogBatch,
    LogLine,
    RunStarted,
    StageChanged,
    StageResult,
    Verdict,
    VerdictReached,
)
from console.recorder import Recorder
from console.worker import record_event
from storage import jobs as job_store
from storage.db import Database

T0 = 1_795_000_000.0
HOUR = 3600.0

TRACE = [
    "Traceback (most recent call last):",
    '  File "app.py", line 5, in <module>',
    "    from order_store import ORDERS",
    "ModuleNotFoundError: No module named 'order_store'",
]
GOOD_APP = "import os\nfrom http.server import HTTPServer\nPORT = int(os.environ['PORT'])\n"
BAD_APP = "import os\nfrom order_store import ORDERS\nPORT = int(os.environ['PORT'])\n"


@dataclass(frozen=True)
class SeedRun:
    """One run of the seeded history."""

    run_id: str
    spec: str
    prompt: str
    model: str
    attempt: int
    hours: float  # start, hours after T0
    verdict: Verdict
    fingerprint: str | None = None
    rerun_of: str | None = None
    app: str | None = None  # app.py as the model wrote it (None: replayed)

    @property
    def combination(self) -> Combination:
        return Combination(spec=self.spec, prompt=self.prompt, model=self.model)


FP_IMPORT = "a1" * 8  # ModuleNotFoundError: fixed by a rerun, later comes back
FP_PORT = "b2" * 8  # EADDRINUSE: fixed by a fan-out to another model
FP_HEALTH = "c3" * 8  # never fixed

RUNS: list[SeedRun] = [
    SeedRun("r01", "orders", "v1", "m1", 1, 0, Verdict.CRASHED, FP_IMPORT, app=BAD_APP),
    SeedRun("r02", "orders", "v1", "m1", 2, 1, Verdict.PASS, rerun_of="r01", app=GOOD_APP),
    SeedRun("r03", "orders", "v1", "m2", 1, 0.5, Verdict.CRASHED, FP_PORT),
    SeedRun("r04", "orders", "v2", "m2", 1, 2, Verdict.PASS, rerun_of="r03"),  # fan-out
    SeedRun("r05", "orders", "v2", "m1", 1, 3, Verdict.UNHEALTHY, FP_HEALTH),
    SeedRun("r06", "orders", "v2", "m1", 2, 4, Verdict.UNHEALTHY, FP_HEALTH, rerun_of="r05"),
    SeedRun("r07", "orders", "v1", "m1", 3, 6, Verdict.CRASHED, FP_IMPORT, app=BAD_APP),
    SeedRun("r08", "shop", "v1", "m1", 1, 1.5, Verdict.PASS),
    SeedRun("r09", "shop", "v1", "m2", 1, 2.5, Verdict.TIMEOUT, "d4" * 8),
    SeedRun("r10", "shop", "v1", "m2", 2, 5, Verdict.PASS, rerun_of="r09"),
]


def _answer(app: str) -> str:
    return json.dumps({"files": [{"path": "app.py", "content": app},
                                 {"path": "README.md", "content": "orders\n"}]})


def seed_triage_db(path: Path) -> Database:
    """Record :data:`RUNS` (jobs, generations, logs, verdicts) into a new database."""
    db = Database(path)
    recorder = Recorder(db)
    for index, run in enumerate(RUNS):
        start = T0 + run.hours * HOUR
        job = Job(job_id=f"job-{run.run_id}", combination=run.combination, attempt=run.attempt,
                  rerun_of=run.rerun_of, created=start)
        job_store.enqueue(db, [job])
        job_store.lease_next(db, "seed:1")

        def emit(event: object) -> None:
            record_event(db, recorder, event)  # type: ignore[arg-type]

        emit(RunStarted(run_id=run.run_id, project=f"/runs/{run.run_id}/project",
                        command="python3 app.py", job_id=job.job_id, combination=run.combination,
                        attempt=run.attempt, rerun_of=run.rerun_of, ts=start))
        emit(GenerationFinished(
            run_id=run.run_id, job_id=job.job_id, ok=True,
            generator="llm" if run.app else "replay", files=["README.md", "app.py"],
            responses=[_answer(run.app)] if run.app else [], ts=start,
        ))
        crashed = run.verdict == Verdict.CRASHED
        lines = TRACE if crashed else [f"Serving on port {4000 + index}"]
        emit(LogBatch(run_id=run.run_id, lines=[
            LogLine(seq=n, ts=start + n / 10, stream="stdout", phase="run", text=text)
            for n, text in enumerate(lines)
        ]))
        ok = run.verdict == Verdict.PASS
        stages = [StageResult(name="start", ok=True, started=start, ms=3.0),
                  StageResult(name="port", ok=not crashed, started=start, ms=40.0 + index)]
        for stage in stages:
            emit(StageChanged(run_id=run.run_id, name=stage.name,
                              status="ok" if stage.ok else "failed", ms=stage.ms, ts=start))
        failure = Failure(
            exception="ModuleNotFoundError" if run.fingerprint == FP_IMPORT else "OSError",
            message="No module named 'order_store'" if run.fingerprint == FP_IMPORT
            else "[Errno 98] Address already in use",
            language="python",
            frames=[Frame(name="<module>", file="app.py", line=5, app=True)],
        ) if crashed else None
        emit(VerdictReached(run_id=run.run_id, result=CheckResult(
            run_id=run.run_id,
            verdict=run.verdict,
            reason="The app answered every probe." if ok else f"The run ended as "
            f"{run.verdict.value}.",
            exit=ExitInfo(code=1, cls=ExitClass.ERROR) if crashed else ExitInfo(),
            port=None if crashed else 4000 + index,
            stages=stages,
            failure=failure,
            fingerprint=run.fingerprint,
            started=start,
            finished=start + 2.0,
            command="python3 app.py",
            job_id=job.job_id,
        )))
    return db
