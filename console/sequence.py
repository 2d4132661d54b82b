"""The verification sequence and its building blocks.

:class:`VerificationSequence` drives one run: install (optional) → start → port opened
(found through the OS) → ``GET /`` → health (optional) → settle window → log regexes; an exit at any
point ends it at once.  When several ports listen, the offered one (``$PORT``) is
preferred and the others are named in the stage's detail; a port that closes before
``GET /`` reaches it is followed to wherever the app listens next.  The log regexes
watch the run command's output up to the verdict (not the install's, not what is printed
while stopping).  Also here: :func:`classify_exit` and the human wording of exits; the
HTTP client is :mod:`console.probe_http`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

from console.explain.tracelines import strip_control
from console.model import (
    CheckSpec,
    Event,
    ExitClass,
    ExitInfo,
    LogLine,
    PortFound,
    ProcessStarted,
    StageChanged,
    StageResult,
    Verdict,
)
from console.probe_http import HTTP_TIMEOUT, HttpAnswer, http_get, probe_health
from console.sandbox.base import Phase, PortHit, RunningProcess, Sandbox
from console.sandbox.logs import LogCollector
from console.settings import SandboxSettings

log = logging.getLogger(__name__)
PORT_POLL_INTERVAL = 0.025
# When the first port seen is not the offered one, how long the offered one may take to
# follow (an app may open a debugger's or a metrics port before its server).
PORT_PREFERENCE_WINDOW = 0.5
# The settle window counts from the port opening, but goes on after the last answer for at
# least this long, or half the window if that is longer (a slow first answer must not use up
# the window), so a crash the first requests cause is still seen.
SETTLE_TAIL = 0.25
MAX_PORT_MOVES = 5  # an app that closes its port and listens elsewhere is followed this often
EXIT_GRACE = 0.2  # a process about to die is reported as crashed, not by its symptom
T = TypeVar("T")
OOM_TAIL_LINES = 30

_OOM_PATTERNS = re.compile(
    r"\bMemoryError\b|java\.lang\.OutOfMemoryError|JavaScript heap out of memory"
    r"|Cannot allocate memory|std::bad_alloc|out of memory",
    re.IGNORECASE,
)
_CLASS_WORDS = {
    ExitClass.OK: "ok",
    ExitClass.ERROR: "error",
    ExitClass.USAGE: "usage error",
    ExitClass.NOT_EXECUTABLE: "not executable",
    ExitClass.COMMAND_NOT_FOUND: "command not found",
    ExitClass.OOM: "out of memory",
    ExitClass.TIMEOUT: "timeout",
}


def settle_tail(settle: float) -> float:
    """How long the app must stay up after its last answer, for a window of ``settle``."""
    return max(min(settle, SETTLE_TAIL), settle / 2)


def signal_name(number: int) -> str:
    """``SIGSEGV`` for 11; ``SIG<n>`` for numbers Python does not name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def _host_port(address: str, port: int) -> str:
    """``0.0.0.0:8000``, and IPv6 in brackets: ``[::]:8000``."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def classify_exit(
    returncode: int | None,
    *,
    oom_hint: bool = False,
    killed_by_us: bool = False,
    log_tail: Iterable[LogLine | str] = (),
) -> ExitInfo:
    """Classify a process's end.

    Args:
        returncode: the status as asyncio reports it (negative: killed by that signal);
            shells report a signal as ``128 + n``, which is read the same way.
        oom_hint: the sandbox killed the tree for exceeding its memory limit.
        killed_by_us: the sandbox killed it because a deadline passed.
        log_tail: the last lines of the log; a ``MemoryError`` or an equivalent near the
            end means the process died for memory even if it exited "normally".
    """
    code = returncode
    sig: str | None = None
    if returncode is not None and returncode < 0:
        code, sig = None, signal_name(-returncode)
    elif returncode is not None and 128 < returncode < 128 + 65:
        # A shell that did not exec its command reports a child's signal as 128 + n.
        if returncode - 128 in {s.value for s in signal.Signals}:
            sig = signal_name(returncode - 128)
    if oom_hint:
        return ExitInfo(code=code, signal=sig, cls=ExitClass.OOM)
    if killed_by_us:
        return ExitInfo(code=code, signal=sig, cls=ExitClass.TIMEOUT)
    if returncode is None:
        return ExitInfo()
    if returncode != 0 and _mentions_oom(log_tail):
        return ExitInfo(code=code, signal=sig, cls=ExitClass.OOM)
    if sig is not None:
        return ExitInfo(code=code, signal=sig, cls=ExitClass.SIGNAL)
    cls = {
        0: ExitClass.OK,
        2: ExitClass.USAGE,
        126: ExitClass.NOT_EXECUTABLE,
        127: ExitClass.COMMAND_NOT_FOUND,
    }.get(returncode, ExitClass.ERROR)
    return ExitInfo(code=code, signal=None, cls=cls)


def _mentions_oom(log_tail: Iterable[LogLine | str]) -> bool:
    lines = [line.text if isinstance(line, LogLine) else line for line in log_tail]
    return any(_OOM_PATTERNS.search(text) for text in lines[-OOM_TAIL_LINES:])


def describe_exit(info: ExitInfo) -> str:
    """``status 1 (error)`` / ``signal SIGSEGV`` — for reason sentences."""
    if info.signal and info.code is None:
        suffix = " (out of memory)" if info.cls == ExitClass.OOM else ""
        return f"signal {info.signal}{suffix}"
    word: str | None = _CLASS_WORDS.get(info.cls) if info.cls else None
    if info.cls == ExitClass.SIGNAL and info.signal:
        word = info.signal
    return f"status {info.code}" + (f" ({word})" if word else "")


# --- the sequence ----------------------------------------------------------------------
def clip(text: str, limit: int = 200) -> str:
    """App text for a reason sentence: escapes and control characters removed, stripped and
    shortened to ``limit`` characters (the sentence is shown on terminals and in panes)."""
    text = strip_control(text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


class Exited(Exception):
    """The process ended while a probe was waiting."""


class LogFailed(Exception):
    """A ``--fail-log`` pattern matched while the process kept running."""


@dataclass
class Decision:
    """The verdict the sequence reached, with the evidence gathered on the way."""

    verdict: Verdict
    reason: str
    timed_out: bool = False  # the run was still going and a deadline ended it
    port: PortHit | None = None
    http_root: int | None = None
    http_health: int | None = None


class VerificationSequence:
    """One run of the probe sequence: its stages, log, process and events."""

    def __init__(
        self,
        spec: CheckSpec,
        settings: SandboxSettings,
        run_id: str,
        emit: Callable[[Event], None] | None,
        sandbox: Sandbox,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.run_id = run_id
        self._emit_to = emit
        self.sandbox = sandbox
        self.stages: list[StageResult] = []
        self.logs = LogCollector(
            run_id,
            emit=self.emit,
            max_lines=settings.max_log_lines,
            expect=spec.expect_log,
            fail=spec.fail_log,
        )
        self.started = time.time()
        self.run_started: float | None = None  # monotonic time the run command started
        self.proc: RunningProcess | None = None
        self.install_exit = ExitInfo()

    # --- events and stages ---------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Hand an event on.

        Errors propagate: an :class:`~console.events.EventBus` already shields the run from
        ordinary subscribers, so what reaches here is a critical one (the recorder) failing,
        and a verdict that was not recorded must not be reported as if it were.
        """
        if self._emit_to is not None:
            self._emit_to(event)

    def announce(self, proc: RunningProcess, phase: Phase) -> None:
        """Say where a command runs (a pid, or a pod) so live views can list it."""
        self.emit(
            ProcessStarted(
                run_id=self.run_id,
                phase=phase,
                sandbox=getattr(self.sandbox, "kind", "local"),
                pid=proc.pid,
                pod=getattr(proc, "pod", None),
                node=getattr(proc, "node", None),
            )
        )

    def begin(self, name: str, detail: str = "") -> tuple[str, float, float]:
        """Announce a stage; returns the handle :meth:`end` takes."""
        self.emit(StageChanged(run_id=self.run_id, name=name, status="running", detail=detail))
        return name, time.time(), time.monotonic()

    def end(self, stage: tuple[str, float, float], ok: bool, detail: str = "") -> None:
        """Close a stage: record its result and announce it."""
        name, started, mono = stage
        ms = (time.monotonic() - mono) * 1000
        self.stages.append(StageResult(name=name, ok=ok, started=started, ms=ms, detail=detail))
        status: Literal["ok", "failed"] = "ok" if ok else "failed"
        self.emit(StageChanged(run_id=self.run_id, name=name, status=status, detail=detail, ms=ms))

    # --- waiting -------------------------------------------------------------------------
    async def until(self, work: Awaitable[T], within: float | None) -> T | None:
        """Await ``work`` unless the process exits (:class:`Exited`) or a fail-log pattern
        matches (:class:`LogFailed`) first; None when ``within`` seconds pass."""
        assert self.proc is not None
        task = asyncio.ensure_future(work)
        exited = asyncio.ensure_future(self.proc.wait())
        failed = asyncio.ensure_future(self.logs.fail_event.wait())
        try:
            done, _ = await asyncio.wait(
                {task, exited, failed},
                timeout=None if within is None else max(within, 0.0),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if exited in done:
                raise Exited
            if failed in done:
                if await self.exits_soon():
                    raise Exited
                raise LogFailed
            if task in done:
                return task.result()
            return None
        finally:
            for future in (task, exited, failed):
                if not future.done():
                    future.cancel()
            await asyncio.gather(task, exited, failed, return_exceptions=True)

    async def exits_soon(self) -> bool:
        """Whether the process ends within a short grace period."""
        assert self.proc is not None
        try:
            await asyncio.wait_for(self.proc.wait(), EXIT_GRACE)
        except TimeoutError:
            return False
        return True

    def since_start(self) -> float:
        return time.monotonic() - (self.run_started or time.monotonic())

    async def wait_port(self) -> PortHit:
        assert self.proc is not None
        while True:
            hit = await self.proc.poll_port()
            if hit is not None:
                return hit
            await asyncio.sleep(PORT_POLL_INTERVAL)

    async def find_port(self, deadline: float) -> PortHit | None:
        """The app's port: the first one seen, or the offered one if it follows shortly."""
        assert self.proc is not None
        hit = await self.until(self.wait_port(), deadline - time.monotonic())
        if hit is None or hit.port == self.sandbox.port:
            return hit
        window = min(PORT_PREFERENCE_WINDOW, deadline - time.monotonic())
        offered = await self.until(self._wait_offered_port(), window)
        return offered or await self.proc.poll_port() or hit

    async def _wait_offered_port(self) -> PortHit:
        while True:
            hit = await self.wait_port()
            if hit.port == self.sandbox.port:
                return hit
            await asyncio.sleep(PORT_POLL_INTERVAL)

    @property
    def http_get(self) -> Callable[..., Awaitable[HttpAnswer]]:
        """How HTTP probes are made: a sandbox that probes from inside (a pod's agent)
        offers ``http_get`` on its process; otherwise a direct request."""
        return getattr(self.proc, "http_get", None) or http_get

    async def get_root(self, hit: PortHit, deadline: float) -> tuple[PortHit, HttpAnswer, str]:
        """``GET /``; when the port turns out closed (the app moved), follow the app to the
        port it listens on next.  Returns the port used, the answer, and a note on moves."""
        assert self.proc is not None
        moved = ""
        for moves in range(MAX_PORT_MOVES + 1):
            remaining = deadline - time.monotonic()
            timeout = min(HTTP_TIMEOUT, max(remaining, 1.0))
            reply = await self.until(
                self.http_get(hit.connect_host, hit.port, "/", request_timeout=timeout), None
            )
            assert reply is not None
            answer = reply
            if answer.status is not None or answer.timed_out:
                break
            if await self.exits_soon():
                raise Exited  # the refused/reset connection was the app dying
            if moves == MAX_PORT_MOVES:
                break
            again = await self.proc.poll_port()
            if again is not None and again.port == hit.port:
                break  # still listening there: the refusal is the answer
            new = await self.until(self.wait_port(), deadline - time.monotonic())
            if new is None:
                break
            moved = f" (port {hit.port} closed; followed to {new.port})"
            hit = new
            self.emit(PortFound(run_id=self.run_id, port=hit.port, pid=hit.pid))
        return hit, answer, moved

    # --- phases --------------------------------------------------------------------------
    async def install(self, command: str) -> Decision | None:
        """Run the install command; a decision only when it failed."""
        self.logs.phase = "install"
        stage = self.begin("install", command)
        proc = await self.sandbox.start(command, phase="install", on_line=self.logs.on_line)
        self.announce(proc, "install")
        code: int | None
        try:
            code = await asyncio.wait_for(proc.wait(), self.spec.install_timeout)
        except TimeoutError:
            code = None
        await proc.stop(self.settings.stop_grace)  # also ends anything it left running
        self.logs.phase = "run"
        if code == 0:
            self.end(stage, True, "exited 0")
            return None
        if code is None:
            self.end(stage, False, f"timed out after {self.spec.install_timeout:g} s")
            self.install_exit = classify_exit(proc.returncode, killed_by_us=True)
            return Decision(
                Verdict.INSTALL_FAILED,
                f"The install command did not finish within {self.spec.install_timeout:g} s"
                " and was stopped.",
                timed_out=True,
            )
        info = classify_exit(code, oom_hint=proc.oom_killed, log_tail=self.logs.last_lines())
        self.install_exit = info
        self.end(stage, False, describe_exit(info))
        return Decision(
            Verdict.INSTALL_FAILED,
            f"The install command exited with {describe_exit(info)}.",
        )

    async def sequence(self) -> Decision:
        """Start the app and probe it until a verdict is reached."""
        spec = self.spec
        assert spec.run is not None
        stage = self.begin("start", spec.run)
        self.run_started = time.monotonic()
        self.proc = await self.sandbox.start(spec.run, phase="run", on_line=self.logs.on_line)
        self.announce(self.proc, "run")
        self.end(stage, True, f"pid {self.proc.pid}" if self.proc.pid else "started")
        deadline = self.run_started + spec.start_timeout
        decision = Decision(Verdict.PASS, "")
        current: tuple[str, float, float] | None = None
        try:
            current = self.begin("port")
            hit = await self.find_port(deadline)
            if hit is None:
                self.end(current, False, f"no listening port after {spec.start_timeout:g} s")
                return Decision(
                    Verdict.NO_PORT,
                    f"The app was still running but never opened a listening port within"
                    f" {spec.start_timeout:g} s.",
                    timed_out=True,
                )
            decision.port = hit
            listening_since = time.monotonic()
            self.emit(PortFound(run_id=self.run_id, port=hit.port, pid=hit.pid))
            note = (
                ""
                if hit.port == self.sandbox.port
                else f" (${spec.port_env} was {self.sandbox.port})"
            )
            also = f"; also listening: {', '.join(map(str, hit.others))}" if hit.others else ""
            self.end(current, True, f"{_host_port(hit.address, hit.port)}{note}{also}")

            current = self.begin("http_root", f"GET / on port {hit.port}")
            hit, answer, moved = await self.get_root(hit, deadline)
            decision.port = hit
            decision.http_root = answer.status
            if answer.timed_out:
                self.end(current, False, f"no answer{moved}")
                decision.verdict, decision.timed_out = Verdict.TIMEOUT, True
                decision.reason = (
                    f"GET / on port {hit.port} got no answer in time; the app was stopped."
                )
                return decision
            if answer.status is None or answer.status >= 500:
                self.end(current, False, answer.describe() + moved)
                decision.verdict = Verdict.HTTP_ERROR
                decision.reason = f"GET / on port {hit.port} {answer.describe()}."
                return decision
            self.end(current, True, f"{answer.status}{moved}")

            if spec.health:
                current = self.begin("health", f"GET {spec.health}")
                remaining = deadline - time.monotonic()
                result = await self.until(
                    probe_health(
                        hit.connect_host,
                        hit.port,
                        spec.health,
                        request_timeout=min(HTTP_TIMEOUT, max(remaining, 1.0)),
                        deadline=deadline,
                        get=self.http_get,
                    ),
                    None,
                )
                assert result is not None
                health, attempts = result
                decision.http_health = health.status
                ok = health.status is not None and 200 <= health.status < 300
                self.end(current, ok, f"{health.describe()} after {attempts} attempt(s)")
                if not ok:
                    decision.verdict = Verdict.UNHEALTHY
                    decision.reason = (
                        f"GET {spec.health} {health.describe()} after {attempts} attempt(s);"
                        " a 2xx answer was required."
                    )
                    return decision

            # The window counts from the port opening (the app is up from then), while
            # GET / and the health check run; it lasts at least a short tail after them.
            current = self.begin("settle", f"{spec.settle:g} s from the port opening")
            up_for = time.monotonic() - listening_since
            wait = max(spec.settle - up_for, settle_tail(spec.settle))
            await self.until(asyncio.sleep(wait), None)
            self.end(current, True, f"still running {spec.settle:g} s after opening its port")

            if self.logs.expect or self.logs.fail:
                current = self.begin("logs")
                wait = max(deadline - time.monotonic(), 0.0)
                await self.until(self.logs.expect_event.wait(), wait)
                missing = self.logs.missing_expectations()
                if missing:
                    self.end(current, False, f"no match for {missing[0]!r}")
                    decision.verdict = Verdict.LOG_ERROR
                    decision.reason = (
                        f"The log never matched --expect-log {missing[0]!r} while the app ran."
                    )
                    return decision
                self.end(current, True, f"{len(self.logs.expect_hits)} expected line(s) seen")
            current = None
            decision.reason = self._pass_reason(decision)
            return decision
        except Exited:
            if current is not None:
                killed = self.proc is not None and self.proc.oom_killed
                self.end(current, False, "killed for memory" if killed else "the process exited")
            return self._exit_decision(decision)
        except LogFailed:
            assert self.logs.fail_hit is not None
            pattern, line = self.logs.fail_hit
            if current is not None:
                self.end(current, False, f"--fail-log {pattern!r} matched")
            decision.verdict = Verdict.LOG_ERROR
            decision.reason = f"The log matched --fail-log {pattern!r}: {clip(line.text)}"
            return decision

    def _pass_reason(self, decision: Decision) -> str:
        assert decision.port is not None
        health = f" and {self.spec.health} with {decision.http_health}" if self.spec.health else ""
        port = decision.port.port
        other = (
            f" (not ${self.spec.port_env}, which was {self.sandbox.port})"
            if port != self.sandbox.port
            else ""
        )
        return (
            f"The app listened on port {port}{other}, answered GET / with"
            f" {decision.http_root}{health}, and was still running {self.spec.settle:g} s after"
            " opening it."
        )

    def _exit_decision(self, decision: Decision) -> Decision:
        assert self.proc is not None and self.proc.returncode is not None
        code = self.proc.returncode
        decision.verdict = Verdict.EXITED_EARLY if code == 0 else Verdict.CRASHED
        return decision
