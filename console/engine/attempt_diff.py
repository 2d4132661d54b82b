"""Two attempts side by side: verdict, stages, port, failure, and a unified diff of the
generated files taken from the recorded generations.  Blocking reads: call from a thread."""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from console.errors import UsageError
from storage import runs

if TYPE_CHECKING:
    from console.model import GenerationFinished
    from storage.db import Database
    from storage.runs import RunRecord

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


@dataclass
class AttemptSide:
    """One attempt as the diff shows it."""

    run_id: str
    attempt: int | None
    combination: str | None
    verdict: str | None
    reason: str | None
    port: int | None
    duration: float | None
    stages: list[tuple[str, str, float | None]]  # name, status, ms
    failure: str | None
    fingerprint: str | None
    files: dict[str, str] | None  # path -> content; None when contents were not recorded
    file_names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON of this side (file contents left out: the diff carries them)."""
        return {
            "run_id": self.run_id,
            "attempt": self.attempt,
            "combination": self.combination,
            "verdict": self.verdict,
            "reason": self.reason,
            "port": self.port,
            "duration": self.duration,
            "stages": [{"name": n, "status": s, "ms": ms} for n, s, ms in self.stages],
            "failure": self.failure,
            "fingerprint": self.fingerprint,
            "files": self.file_names,
            "contents_recorded": self.files is not None,
        }


@dataclass
class AttemptDiff:
    """Attempt ``a`` (older) against ``b`` (newer)."""

    a: AttemptSide
    b: AttemptSide
    diff: list[str]  # unified diff lines of the generated files
    changed_files: list[str]
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """The ``verdict diff --json`` object."""
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "changed_files": self.changed_files,
            "diff": "\n".join(self.diff),
            "note": self.note,
        }


def generated_files(generation: GenerationFinished | None) -> dict[str, str] | None:
    """Path -> content from the last recorded model answer that holds a ``files`` list.

    A replayed generation records file names only (None: contents unknown).
    """
    if generation is None:
        return None
    for raw in reversed(generation.responses):
        text = raw.strip()
        fenced = _FENCE.match(text)
        if fenced:
            text = fenced.group(1)
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            continue
        files = data.get("files") if isinstance(data, dict) else None
        if isinstance(files, list):
            return {
                str(f["path"]): str(f.get("content", ""))
                for f in files
                if isinstance(f, dict) and "path" in f
            }
    return None


def _side(db: Database, record: RunRecord) -> AttemptSide:
    generation = runs.get_generation(db, record.run_id)
    failure = record.result.failure if record.result else None
    return AttemptSide(
        run_id=record.run_id,
        attempt=record.attempt,
        combination=f"{record.spec}/{record.prompt}/{record.model}" if record.spec else None,
        verdict=record.verdict.value if record.verdict else record.status,
        reason=record.reason,
        port=record.port,
        duration=record.duration,
        stages=[(s["name"], s["status"], s["ms"]) for s in runs.run_stages(db, record.run_id)],
        failure=f"{failure.exception}: {failure.message}" if failure else None,
        fingerprint=record.fingerprint,
        files=generated_files(generation),
        file_names=list(generation.files) if generation else [],
    )


def diff_runs(db: Database, run_a: str, run_b: str) -> AttemptDiff:
    """The diff of two recorded runs (any two; usually attempts of one combination).

    Raises:
        UsageError: a run is not in the database.
    """
    records = []
    for run_id in (run_a, run_b):
        record = runs.get_run(db, run_id)
        if record is None:
            raise UsageError(f"no run {run_id!r} in the database")
        records.append(record)
    a, b = (_side(db, r) for r in records)
    note = ""
    if a.files is None or b.files is None:
        note = "file contents were not recorded (a replayed generation); names compared"
        old = dict.fromkeys(a.file_names, "") if a.files is None else a.files
        new = dict.fromkeys(b.file_names, "") if b.files is None else b.files
    else:
        old, new = a.files, b.files
    lines: list[str] = []
    changed: list[str] = []
    for path in sorted(set(old) | set(new)):
        before = old.get(path)
        after = new.get(path)
        if before == after:
            continue
        changed.append(path)
        lines += difflib.unified_diff(
            (before or "").splitlines(),
            (after or "").splitlines(),
            fromfile=f"a/{path}" if before is not None else "/dev/null",
            tofile=f"b/{path}" if after is not None else "/dev/null",
            lineterm="",
        )
    return AttemptDiff(a, b, lines, changed, note)


def attempts_to_compare(db: Database, combination: str) -> tuple[str, str]:
    """The two attempts of a combination worth comparing: the latest, and the most recent
    earlier one whose verdict differs (else the one just before).

    Raises:
        UsageError: the combination has fewer than two recorded attempts.
    """
    rows = [r for r in runs.attempts_of(db, combination) if r["run_id"] and r["verdict"]]
    if len(rows) < 2:
        raise UsageError(f"{combination} has fewer than two finished attempts")
    latest = rows[0]
    other = next((r for r in rows[1:] if r["verdict"] != latest["verdict"]), rows[1])
    return other["run_id"], latest["run_id"]
