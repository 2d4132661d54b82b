"""Typed read models over the database, shared by the CLI and the console.

Each function reads SQLite (through ``storage``) and returns plain typed objects; none of
them writes.  They block, so a console calls them from a thread worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.engine.live import CellState, CellStatus
from console.model import Combination, GenerationFinished, LogLine, Verdict
from storage import jobs as job_store
from storage import runs
from storage.db import Database
from storage.runs import RunRecord


def _verdict(value: str | None) -> Verdict | None:
    try:
        return Verdict(value) if value else None
    except ValueError:
        return None


def _cell(row: dict[str, Any]) -> CellState:
    status: CellStatus
    if row["state"] == job_store.DONE:
        status = "aborted" if row["job_verdict"] == job_store.ABORTED else "done"
    elif row["state"] == job_store.LEASED and row["run_status"] == "running":
        status = "running"
    else:
        status = "queued"
    return CellState(
        combination=Combination(spec=row["spec"], prompt=row["prompt"], model=row["model"]),
        attempt=int(row["attempt"]),
        job_id=row["job_id"],
        run_id=row["run_id"],
        status=status,
        stage=row["stage"] if status == "running" else None,
        verdict=_verdict(row["verdict"] or row["job_verdict"]) if status == "done" else None,
        fingerprint=row["fingerprint"],
        reason=row["reason"] or "",
        port=row["port"],
        updated=float(row["updated"] or 0.0),
    )


def matrix_state(db: Database, combinations: list[Combination] | None = None) -> list[CellState]:
    """The latest attempt of every combination in the database (or of those given)."""
    cells = [_cell(row) for row in runs.latest_attempts(db)]
    if combinations is None:
        return cells
    wanted = {combination.key for combination in combinations}
    return [cell for cell in cells if cell.key in wanted]


@dataclass
class RerunLink:
    """A run that reruns another, or the run it reruns."""

    run_id: str
    combination: str | None
    verdict: str | None
    fingerprint: str | None = None

    @property
    def passed(self) -> bool:
        """Whether that run passed."""
        return self.verdict == Verdict.PASS.value


@dataclass
class AttemptRow:
    """One attempt of a combination."""

    attempt: int
    run_id: str | None
    origin: str
    verdict: str | None
    status: str | None
    fingerprint: str | None
    started: float | None


@dataclass
class RunDetail:
    """Everything recorded about one run (what ``verdict show`` prints)."""

    record: RunRecord
    stages: list[dict[str, Any]]
    same_fingerprint: int
    rerun_of: RerunLink | None
    reruns: list[RerunLink]
    generation: GenerationFinished | None
    log_total: int
    log: list[LogLine]
    attempts: list[AttemptRow] = field(default_factory=list)

    @property
    def combination(self) -> str | None:
        """``spec/prompt/model`` of a matrix run."""
        r = self.record
        return f"{r.spec}/{r.prompt}/{r.model}" if r.spec else None

    def to_json(self) -> dict[str, Any]:
        """The ``verdict show --json`` object."""
        record = self.record
        result = record.result
        return {
            "run_id": record.run_id,
            "status": record.status,
            "verdict": record.verdict.value if record.verdict else None,
            "reason": record.reason,
            "started": record.started,
            "finished": record.finished,
            "duration": record.duration,
            "combination": {"spec": record.spec, "prompt": record.prompt, "model": record.model}
            if record.spec
            else None,
            "job_id": record.job_id,
            "attempt": record.attempt,
            "project": record.project,
            "command": record.command,
            "exit": {
                "code": record.exit_code,
                "signal": record.exit_signal,
                "class": record.exit_class,
            },
            "port": record.port,
            "http": {"root": record.http_root, "health": record.http_health},
            "stages": [
                {
                    "name": s["name"],
                    "status": s["status"],
                    "ok": None if s["ok"] is None else bool(s["ok"]),
                    "ms": None if s["ms"] is None else round(s["ms"], 1),
                    "detail": s["detail"],
                }
                for s in self.stages
            ],
            "failure": None
            if result is None or result.failure is None
            else {
                "exception": result.failure.exception,
                "message": result.failure.message,
                "language": result.failure.language,
                "frames": [
                    {"name": f.name, "file": f.file, "line": f.line, "app": f.app}
                    for f in result.failure.frames
                ],
            },
            "fingerprint": record.fingerprint,
            "same_fingerprint": self.same_fingerprint,
            "rerun_of": None
            if self.rerun_of is None
            else {
                "run_id": self.rerun_of.run_id,
                "verdict": self.rerun_of.verdict,
                "fingerprint": self.rerun_of.fingerprint,
            },
            "reruns": [
                {
                    "run_id": r.run_id,
                    "combination": r.combination,
                    "verdict": r.verdict,
                    "passed": r.passed,
                }
                for r in self.reruns
            ],
            "generation": None
            if self.generation is None
            else self.generation.model_dump(
                mode="json",
                include={"generator", "ok", "reason", "attempts", "ms", "files", "responses",
                         "notes"},
            ),
            "log": {
                "total": self.log_total,
                "truncated": record.log_truncated,
                "lines": [
                    {"seq": ln.seq, "stream": ln.stream, "phase": ln.phase, "text": ln.text}
                    for ln in self.log
                ],
            },
            "explain": None
            if record.verdict is None or record.verdict == Verdict.PASS
            else f"verdict explain {record.run_id}",
        }


def run_detail(db: Database, record: RunRecord, log_lines: int | None = 20) -> RunDetail:
    """The detail of ``record``'s run with its last ``log_lines`` lines (None: all)."""
    total = record.log_lines
    if log_lines is None:
        lines = runs.run_log(db, record.run_id, 0, max(total, 1))
    else:
        lines = runs.run_log(db, record.run_id, max(total - log_lines, 0), log_lines)
    original = runs.get_run(db, record.rerun_of) if record.rerun_of else None
    fingerprint = record.fingerprint
    attempts: list[AttemptRow] = []
    if record.spec:
        key = f"{record.spec}/{record.prompt}/{record.model}"
        attempts = [
            AttemptRow(
                attempt=int(row["attempt"]),
                run_id=row["run_id"],
                origin=row["origin"],
                verdict=row["verdict"] or None,
                status=row["run_status"],
                fingerprint=row["fingerprint"],
                started=row["started"],
            )
            for row in runs.attempts_of(db, key)
        ]
    return RunDetail(
        record=record,
        stages=runs.run_stages(db, record.run_id),
        same_fingerprint=runs.count_with_fingerprint(db, fingerprint) - 1 if fingerprint else 0,
        rerun_of=None
        if not record.rerun_of
        else RerunLink(
            record.rerun_of,
            None,
            original.verdict.value if original and original.verdict else None,
            original.fingerprint if original else None,
        ),
        reruns=[
            RerunLink(
                r.run_id,
                f"{r.spec}/{r.prompt}/{r.model}" if r.spec else None,
                r.verdict.value if r.verdict else r.status,
                r.fingerprint,
            )
            for r in runs.reruns_of(db, record.run_id)
        ],
        generation=runs.get_generation(db, record.run_id),
        log_total=total,
        log=lines,
        attempts=attempts,
    )
