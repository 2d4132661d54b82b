"""Events → SQLite on a writer thread, so recording never blocks an event loop.

The engine's loop hands every event to :meth:`RecordingWriter.submit` (a queue put, no I/O).
One thread drains the queue and writes each batch in one transaction (a log flood becomes
a few large transactions instead of thousands of small ones).  Recording is a guarantee:
:meth:`RecordingWriter.confirm` waits until everything submitted so far is written and
raises :class:`RecordingError` when an event of that run could not be written — a verdict
that is not in the database is never reported as recorded.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from console.model import Event
from storage.db import Database

log = logging.getLogger(__name__)

MAX_BATCH = 500  # events per transaction


class RecordingError(RuntimeError):
    """An event could not be written to the database."""


@dataclass
class _Mark:
    """A point in the submitted stream; set once everything before it is written."""

    done: threading.Event = field(default_factory=threading.Event)


def _run_of(event: Event) -> str | None:
    return getattr(event, "run_id", None)


class RecordingWriter:
    """Writes events with ``record`` (one call per event) on a dedicated thread.

    Args:
        db: the database (its writes are serialised by :class:`~storage.db.Database`).
        record: records one event; raising means the event is not recorded.
    """

    def __init__(self, db: Database, record: Callable[[Event], object]) -> None:
        self.db = db
        self.record = record
        self._queue: queue.SimpleQueue[Event | _Mark | None] = queue.SimpleQueue()
        self._failures: dict[str | None, str] = {}  # run id -> first failure
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.written = 0

    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="verdict-recorder", daemon=True
            )
            self._thread.start()

    def submit(self, event: Event) -> None:
        """Queue ``event`` for writing; never blocks."""
        if self._thread is None:
            raise RecordingError("the recorder is not running")
        self._queue.put(event)

    __call__ = submit

    async def confirm(self, run_id: str | None = None) -> None:
        """Wait until every event submitted so far is written.

        Raises:
            RecordingError: an event of ``run_id`` (of any run when None) was not written.
        """
        mark = _Mark()
        self._queue.put(mark)
        await asyncio.to_thread(mark.done.wait)
        with self._lock:
            if run_id is None and self._failures:
                key = next(iter(self._failures))
                raise RecordingError(self._failures.pop(key))
            if run_id is not None and run_id in self._failures:
                raise RecordingError(self._failures.pop(run_id))

    def wait_written(self, timeout: float | None = None) -> bool:
        """Block until everything submitted so far is written (for threads, not loops)."""
        mark = _Mark()
        self._queue.put(mark)
        return mark.done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    # --- the thread ----------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[Event] = []
            marks: list[_Mark] = []
            stop = False
            while True:
                if item is None:
                    stop = True
                elif isinstance(item, _Mark):
                    marks.append(item)
                else:
                    batch.append(item)
                if stop or len(batch) >= MAX_BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            for mark in marks:
                mark.done.set()
            if stop:
                return

    def _write(self, batch: list[Event]) -> None:
        try:
            with self.db.write():
                for event in batch:
                    self.record(event)
            self.written += len(batch)
            return
        except Exception:  # noqa: BLE001 - retried one by one below to find the culprit
            pass
        for event in batch:
            try:
                with self.db.write():
                    self.record(event)
                self.written += 1
            except Exception as exc:  # noqa: BLE001 - reported through confirm()
                what = f"could not record {event.kind} of run {_run_of(event)}: {exc}"
                log.error("%s", what)
                with self._lock:
                    self._failures.setdefault(_run_of(event), what)
