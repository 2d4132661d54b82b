"""Write engine events into the database: the one way runs get recorded in every mode.

In-process, :meth:`Recorder.handle` is subscribed to the events of :func:`run_check`; in
distributed mode the console feeds it the events consumed from Kafka.  Writes are
idempotent, so an event delivered twice is recorded once.
"""

from __future__ import annotations

from console.model import (
    Event,
    GenerationFinished,
    LogBatch,
    PortFound,
    RunAborted,
    RunStarted,
    StageChanged,
    VerdictReached,
)
from storage import runs
from storage.db import Database


class Recorder:
    """Stores runs, stages, log lines, verdicts, failures and generations from events."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def handle(self, event: Event) -> None:
        """Record one event; events about jobs (not runs) are left to their owners."""
        if isinstance(event, RunStarted):
            runs.record_run_started(self.db, event)
        elif isinstance(event, StageChanged):
            runs.record_stage(self.db, event)
        elif isinstance(event, LogBatch):
            runs.record_log_batch(self.db, event)
        elif isinstance(event, PortFound):
            runs.record_port(self.db, event)
        elif isinstance(event, VerdictReached):
            runs.record_result(self.db, event.result)
        elif isinstance(event, RunAborted):
            runs.record_aborted(self.db, event)
        elif isinstance(event, GenerationFinished):
            runs.record_generation(self.db, event)

    __call__ = handle
