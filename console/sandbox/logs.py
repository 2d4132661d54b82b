"""The log of one run: numbered lines, regex watching, a bounded tail, batched events.

Memory stays bounded however much the app prints: only a ring buffer of recent lines is
kept; every line is handed on in :class:`LogBatch` events (at most ~20 per second) for
the recorder to store, up to a per-run cap after which a system line says the log was cut.
Known secret values of the harness (secret-named environment variables, as the explainer
redacts them) are replaced in every line before it is kept, watched or stored.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable, Iterable

from console.model import Event, LogBatch, LogLine
from console.sandbox.base import Phase, Stream

FLUSH_INTERVAL = 0.05  # at most 20 batches per second per run
TAIL_LINES = 2000  # enough for a long JVM trace; older lines live only in the database


def known_values_pattern(known: Iterable[str] | None = None) -> re.Pattern[str] | None:
    """One regex for the harness's known secret values in every spelling the explainer's
    redactor knows (as is, JSON-escaped, percent-encoded); None when there are none."""
    from console.explain.redact import Redactor, known_secret_values

    values = known_secret_values() if known is None else known_secret_values({}, known)
    spellings = Redactor(values, use_detect_secrets=False).known
    return re.compile("|".join(re.escape(value) for value in spellings)) if spellings else None


class LogCollector:
    """Numbers, watches and batches the lines of one run."""

    def __init__(
        self,
        run_id: str,
        *,
        emit: Callable[[Event], None],
        max_lines: int = 100_000,
        expect: list[str] | None = None,
        fail: list[str] | None = None,
        tail_lines: int = TAIL_LINES,
        flush_interval: float = FLUSH_INTERVAL,
        secrets: Iterable[str] | None = None,
    ) -> None:
        """``secrets``: values to redact (default: the harness's secret-named variables)."""
        self.run_id = run_id
        self._secrets = known_values_pattern(secrets)
        self.phase: Phase = "run"
        # Regexes watch the run phase only, and only until the verdict: what the app prints
        # while being stopped is stored but judged by nobody.
        self.watching = True
        self.tail: deque[LogLine] = deque(maxlen=tail_lines)
        self.truncated = False
        self._cut: set[Phase] = set()  # phases whose lines are no longer stored
        self.stored = 0
        self.expect = {pattern: re.compile(pattern) for pattern in expect or []}
        self.fail = {pattern: re.compile(pattern) for pattern in fail or []}
        self.expect_hits: dict[str, LogLine] = {}
        self.fail_hit: tuple[str, LogLine] | None = None
        self.fail_event = asyncio.Event()
        self.expect_event = asyncio.Event()
        if not self.expect:
            self.expect_event.set()
        self._emit = emit
        self._max_lines = max_lines
        self._seq = 0
        self._pending: list[LogLine] = []
        self._pending_truncated = False
        self._wake = asyncio.Event()
        self._interval = flush_interval
        self._flusher: asyncio.Task[None] | None = None

    # --- input ---------------------------------------------------------------------------
    def on_line(self, stream: Stream, text: str, ts: float) -> None:
        """A line of the app's output (the sandbox's line callback)."""
        line = self._add(stream, text, ts)
        if self.phase == "run" and self.watching:
            self._watch(line)

    def stop_watching(self) -> None:
        """The observation window is over (a verdict was reached)."""
        self.watching = False

    def system(self, text: str) -> None:
        """A line of our own (e.g. "log cut"), stored with the app's lines."""
        self._add("system", text, time.time())

    def _add(self, stream: Stream | str, text: str, ts: float) -> LogLine:
        if self._secrets is not None:
            from console.explain.redact import PLACEHOLDER

            text = self._secrets.sub(PLACEHOLDER, text)
        self._seq += 1
        line = LogLine(seq=self._seq, ts=ts, stream=stream, phase=self.phase, text=text)  # type: ignore[arg-type]
        self.tail.append(line)
        # A chatty install may fill half of the cap at most: the run's own lines (and its
        # trace) must still reach the database.
        install = self.phase == "install"
        limit = self._max_lines // 2 if install else self._max_lines
        if self.stored < limit:
            self.stored += 1
            self._pending.append(line)
        elif self.phase not in self._cut:
            self._cut.add(self.phase)
            self.truncated = True
            self._pending_truncated = True
            self._seq += 1
            what = "the install's output" if install else "this run"
            note = LogLine(
                seq=self._seq,
                ts=ts,
                stream="system",
                phase=self.phase,
                text=f"[log cut: only the first {limit} lines of {what} are stored]",
            )
            self._pending.append(note)
        self._wake.set()
        return line

    def _watch(self, line: LogLine) -> None:
        for pattern, regex in self.expect.items():
            if pattern not in self.expect_hits and regex.search(line.text):
                self.expect_hits[pattern] = line
                if len(self.expect_hits) == len(self.expect):
                    self.expect_event.set()
        if self.fail_hit is None:
            for pattern, regex in self.fail.items():
                if regex.search(line.text):
                    self.fail_hit = (pattern, line)
                    self.fail_event.set()
                    break

    # --- output --------------------------------------------------------------------------
    def start(self) -> None:
        """Start emitting batches."""
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_loop(), name=f"logs-{self.run_id}")

    async def aclose(self) -> None:
        """Stop the batching task and emit whatever is pending."""
        if self._flusher is not None:
            self._flusher.cancel()
            try:
                await self._flusher
            except asyncio.CancelledError:
                pass
            self._flusher = None
        self.flush()

    def flush(self) -> None:
        """Emit the pending lines as one batch (if any)."""
        if not self._pending:
            return
        batch = LogBatch(run_id=self.run_id, lines=self._pending, truncated=self._pending_truncated)
        self._pending = []
        self._pending_truncated = False
        self._emit(batch)

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self.flush()
            await asyncio.sleep(self._interval)

    # --- views ---------------------------------------------------------------------------
    def tail_text(self, phase: Phase | None = None) -> str:
        """The kept tail as text (optionally one phase only), for trace extraction."""
        return "\n".join(
            line.text
            for line in self.tail
            if line.stream != "system" and (phase is None or line.phase == phase)
        )

    def last_lines(self, count: int = 50) -> list[LogLine]:
        """The last ``count`` lines kept."""
        return list(self.tail)[-count:]

    def missing_expectations(self) -> list[str]:
        """``--expect-log`` patterns that have not matched yet."""
        return [pattern for pattern in self.expect if pattern not in self.expect_hits]
