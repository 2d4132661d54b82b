"""A database with fixed runs (fixed ids, times and logs) for console snapshots."""

from __future__ import annotations

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

T0 = 1_795_000_000.0  # a fixed moment, so times on screen never change

TRACE = [
    "Traceback (most recent call last):",
    '  File "app.py", line 5, in <module>',
    "    from order_store import ORDERS, find_order",
    "ModuleNotFoundError: No module named 'order_store'",
]

CELLS: list[tuple[str, str, str, Verdict | None]] = [
    ("orders-api", "v1", "gpt-4o-mini", Verdict.CRASHED),
    ("orders-api", "v1", "qwen2.5-coder-7b", Verdict.HTTP_ERROR),
    ("orders-api", "v2", "gpt-4o-mini", Verdict.PASS),
    ("orders-api", "v2", "qwen2.5-coder-7b", Verdict.UNHEALTHY),
    ("storefront", "v1", "gpt-4o-mini", Verdict.PASS),
    ("storefront", "v1", "qwen2.5-coder-7b", Verdict.TIMEOUT),
    ("storefront", "v2", "gpt-4o-mini", Verdict.PASS),
    ("storefront", "v2", "qwen2.5-coder-7b", None),  # still queued
]


def seed_console_db(path: Path) -> Database:
    """Record the fixed runs of :data:`CELLS` into a new database at ``path``."""
    db = Database(path)
    recorder = Recorder(db)
    for index, (spec, prompt, model, verdict) in enumerate(CELLS):
        combination = Combination(spec=spec, prompt=prompt, model=model)
        job = Job(job_id=f"job{index}", combination=combination, created=T0)
        job_store.enqueue(db, [job])
        if verdict is None:
            continue
        job_store.lease_next(db, "seed:1")
        run_id = f"run{index:02d}fixed0000"
        start = T0 + index * 10

        def emit(event: object, run_id: str = run_id) -> None:
            record_event(db, recorder, event)  # type: ignore[arg-type]

        emit(
            RunStarted(
                run_id=run_id,
                project=f"/runs/{run_id}/project",
                command="python3 app.py",
                job_id=job.job_id,
                combination=combination,
                ts=start,
            )
        )
        emit(GenerationFinished(run_id=run_id, job_id=job.job_id, ok=True, generator="replay",
                                files=["app.py"], ts=start))
        lines = [f"Serving on http://127.0.0.1:{3000 + index} (port {3000 + index})"]
        if verdict == Verdict.CRASHED:
            lines = TRACE
        elif verdict == Verdict.HTTP_ERROR:
            lines += ['127.0.0.1 - "GET / HTTP/1.1" 500 -', "ERROR in app: division by zero"]
        emit(
            LogBatch(
                run_id=run_id,
                lines=[
                    LogLine(seq=n, ts=start + n / 10, stream="stdout", phase="run", text=text)
                    for n, text in enumerate(lines)
                ],
            )
        )
        stages = [StageResult(name="start", ok=True, started=start, ms=3.0)]
        ok = verdict == Verdict.PASS
        stages.append(StageResult(name="port", ok=verdict != Verdict.CRASHED, started=start,
                                  ms=120.0, detail="" if ok else "see the verdict"))
        for stage in stages:
            emit(StageChanged(run_id=run_id, name=stage.name, status="ok" if stage.ok else
                              "failed", ms=stage.ms, ts=start))
        failure = None
        if verdict == Verdict.CRASHED:
            failure = Failure(
                exception="ModuleNotFoundError",
                message="No module named 'order_store'",
                language="python",
                frames=[Frame(name="<module>", file="app.py", line=5, app=True)],
            )
        result = CheckResult(
            run_id=run_id,
            verdict=verdict,
            reason="The app answered every probe." if ok else f"The run ended as {verdict.value}.",
            exit=ExitInfo(code=1, cls=ExitClass.ERROR)
            if verdict == Verdict.CRASHED
            else ExitInfo(),
            port=None if verdict == Verdict.CRASHED else 3000 + index,
            stages=stages,
            failure=failure,
            fingerprint=None if ok else f"{index:016x}",
            started=start,
            finished=start + 1.5,
            command="python3 app.py",
            job_id=job.job_id,
        )
        emit(VerdictReached(run_id=run_id, result=result))
    return db
