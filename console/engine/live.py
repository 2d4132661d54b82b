"""What is happening now, kept current from events alone.

:class:`LiveState` is the matrix (the latest attempt of every combination, with its stage
while it runs) and the running sandboxes.  It is fed the same events whether the work runs
in this process or on remote workers (Kafka ``verdict.events``), and seeded from the
database (:func:`console.engine.views.matrix_state`) so a restarted console starts where
the last one stopped.  ``apply`` returns what changed, so a view updates by key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from console.model import (
    Combination,
    Event,
    JobFinished,
    JobQueued,
    JobStarted,
    PortFound,
    ProcessStarted,
    RunAborted,
    RunStarted,
    StageChanged,
    Verdict,
    VerdictReached,
)

CellStatus = Literal["queued", "running", "done", "aborted"]
_RANK = {"queued": 0, "running": 1, "aborted": 2, "done": 3}


@dataclass
class CellState:
    """The latest attempt of one combination."""

    combination: Combination
    attempt: int = 1
    job_id: str | None = None
    run_id: str | None = None
    status: CellStatus = "queued"
    stage: str | None = None
    verdict: Verdict | None = None
    fingerprint: str | None = None
    reason: str = ""
    port: int | None = None
    updated: float = field(default_factory=time.time)

    @property
    def key(self) -> str:
        """The combination's key (``spec/prompt/model``)."""
        return self.combination.key

    def newer_than(self, other: CellState) -> bool:
        """Whether this state is further along than ``other`` (attempt, then status)."""
        if self.attempt != other.attempt:
            return self.attempt > other.attempt
        return _RANK[self.status] > _RANK[other.status]


@dataclass
class SandboxState:
    """One running sandbox: where it runs and how far it got."""

    run_id: str
    combination: Combination | None = None
    attempt: int = 1
    sandbox: str = "local"
    pid: int | None = None
    pod: str | None = None
    node: str | None = None
    stage: str | None = None
    port: int | None = None
    worker: str = ""  # host:pid of the worker process running it
    started: float = field(default_factory=time.time)

    def age(self, now: float | None = None) -> float:
        """Seconds since the run started."""
        return max(0.0, (now or time.time()) - self.started)


@dataclass
class Changes:
    """What one event changed: combination keys and whether the sandbox list moved."""

    cells: set[str] = field(default_factory=set)
    sandboxes: bool = False

    def __bool__(self) -> bool:
        return bool(self.cells) or self.sandboxes

    def merge(self, other: Changes) -> None:
        """Add ``other``'s changes to these."""
        self.cells |= other.cells
        self.sandboxes = self.sandboxes or other.sandboxes


class LiveState:
    """The matrix and the running sandboxes, from events (see the module docstring)."""

    def __init__(self) -> None:
        self.cells: dict[str, CellState] = {}
        self.sandboxes: dict[str, SandboxState] = {}
        self._cell_of_run: dict[str, str] = {}
        self._cell_of_job: dict[str, str] = {}
        self._worker_of_run: dict[str, str] = {}

    # --- seeding ---------------------------------------------------------------------------
    def seed(self, cells: list[CellState]) -> Changes:
        """Take cells read from the database where they are newer than what is known."""
        changes = Changes()
        for cell in cells:
            known = self.cells.get(cell.key)
            if known is None or cell.newer_than(known) or self._moved_elsewhere(known, cell):
                self._put(cell)
                changes.cells.add(cell.key)
        return changes

    def _moved_elsewhere(self, known: CellState, read: CellState) -> bool:
        """A run of another process (no events here) whose stage moved on."""
        return (
            known.status == read.status == "running"
            and known.run_id == read.run_id
            and known.run_id not in self.sandboxes
            and (known.stage, known.port) != (read.stage, read.port)
        )

    def _put(self, cell: CellState) -> None:
        self.cells[cell.key] = cell
        if cell.run_id:
            self._cell_of_run[cell.run_id] = cell.key
        if cell.job_id:
            self._cell_of_job[cell.job_id] = cell.key

    def _cell_for_run(self, run_id: str) -> CellState | None:
        key = self._cell_of_run.get(run_id)
        cell = self.cells.get(key) if key else None
        return cell if cell is not None and cell.run_id == run_id else None

    def counts(self) -> dict[CellStatus, int]:
        """How many combinations are queued, running, done and aborted."""
        result: dict[CellStatus, int] = {"queued": 0, "running": 0, "done": 0, "aborted": 0}
        for cell in self.cells.values():
            result[cell.status] += 1
        return result

    # --- events ----------------------------------------------------------------------------
    def apply(self, event: Event) -> Changes:
        """Update from one event; returns what changed."""
        changes = Changes()
        if isinstance(event, JobQueued):
            job = event.job
            known = self.cells.get(job.combination.key)
            if known is None or job.attempt >= known.attempt and known.job_id != job.job_id:
                self._put(CellState(job.combination, job.attempt, job.job_id))
                changes.cells.add(job.combination.key)
        elif isinstance(event, RunStarted) and event.combination is not None:
            self._run_started(event, changes)
        elif isinstance(event, JobStarted):
            self._worker_of_run[event.run_id] = event.worker
            if event.run_id in self.sandboxes:
                self.sandboxes[event.run_id].worker = event.worker
            key = self._cell_of_job.get(event.job_id)
            cell = self.cells.get(key) if key else None
            if cell is not None and cell.job_id == event.job_id and cell.status == "queued":
                cell.status, cell.run_id, cell.updated = "running", event.run_id, event.ts
                self._cell_of_run[event.run_id] = cell.key
                changes.cells.add(cell.key)
        elif isinstance(event, StageChanged):
            self._stage(event, changes)
        elif isinstance(event, PortFound | ProcessStarted):
            self._where(event, changes)
        elif isinstance(event, VerdictReached):
            self._ended(event.run_id, changes)
            result = event.result
            cell = self._cell_for_run(event.run_id)
            if cell is not None:
                cell.status, cell.verdict, cell.stage = "done", result.verdict, None
                cell.reason, cell.fingerprint = result.reason, result.fingerprint
                cell.port = result.port or cell.port
                cell.updated = result.finished
                changes.cells.add(cell.key)
        elif isinstance(event, JobFinished):
            self._ended(event.run_id, changes)
            cell = self._cell_for_run(event.run_id)
            if cell is not None and cell.status != "done":
                cell.status, cell.verdict, cell.stage = "done", event.verdict, None
                cell.fingerprint = event.fingerprint
                changes.cells.add(cell.key)
        elif isinstance(event, RunAborted):
            self._ended(event.run_id, changes)
            cell = self._cell_for_run(event.run_id)
            if cell is not None and cell.status == "running":
                cell.status, cell.stage, cell.reason = "aborted", None, event.reason
                changes.cells.add(cell.key)
        return changes

    def _run_started(self, event: RunStarted, changes: Changes) -> None:
        assert event.combination is not None
        key = event.combination.key
        known = self.cells.get(key)
        if known is not None and known.attempt > event.attempt:
            return  # an older attempt started late (a redelivery): the newer one stays
        cell = CellState(
            event.combination,
            event.attempt,
            event.job_id,
            event.run_id,
            "running",
            updated=event.ts,
        )
        self._put(cell)
        changes.cells.add(key)
        self.sandboxes[event.run_id] = SandboxState(
            event.run_id,
            event.combination,
            event.attempt,
            worker=self._worker_of_run.get(event.run_id, ""),
            started=event.ts,
        )
        changes.sandboxes = True

    def _stage(self, event: StageChanged, changes: Changes) -> None:
        running = event.status == "running"
        cell = self._cell_for_run(event.run_id)
        if cell is not None and cell.status == "running":
            if running or cell.stage == event.name:
                cell.stage = event.name if running else None
                cell.updated = event.ts
                changes.cells.add(cell.key)
        box = self.sandboxes.get(event.run_id)
        if box is not None and (running or box.stage == event.name):
            box.stage = event.name if running else None
            changes.sandboxes = True

    def _where(self, event: PortFound | ProcessStarted, changes: Changes) -> None:
        box = self.sandboxes.get(event.run_id)
        if isinstance(event, PortFound):
            cell = self._cell_for_run(event.run_id)
            if cell is not None:
                cell.port = event.port
                changes.cells.add(cell.key)
            if box is not None:
                box.port = event.port
        elif box is None and event.phase == "install":
            # a ``verdict check`` run has no combination but is still a running sandbox
            box = self.sandboxes[event.run_id] = SandboxState(event.run_id, started=event.ts)
        if box is not None and isinstance(event, ProcessStarted):
            box.sandbox, box.pid = event.sandbox, event.pid
            box.pod, box.node = event.pod, event.node
        if box is not None:
            changes.sandboxes = True

    def _ended(self, run_id: str, changes: Changes) -> None:
        self._worker_of_run.pop(run_id, None)
        if self.sandboxes.pop(run_id, None) is not None:
            changes.sandboxes = True
