"""Run one project in a sandbox and decide its verdict.

The sequence: install (optional) → start → port opened (found through the OS) → ``GET /``
→ health (optional) → settle window (the process must still be alive) → log regexes.  An
exit at any point ends the sequence at once.  Everything is asyncio: :func:`run_check` may
run many times concurrently in one loop, or once from the CLI through ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from console import sequence
from console.detect import LOOKED_FOR, Detection, detect_run
from console.errors import UsageError
from console.fingerprint import fingerprint
from console.model import (
    CheckResult,
    CheckSpec,
    Event,
    ExitInfo,
    Failure,
    Job,
    RunAborted,
    RunStarted,
    Verdict,
    VerdictReached,
)
from console.reasons import real_error_line, relative_to_project
from console.sandbox.base import Phase, Sandbox
from console.sandbox.sweep import owner_tag
from console.sequence import Decision, VerificationSequence, clip
from console.settings import SandboxSettings

log = logging.getLogger(__name__)

# An error line of a log (a level word at a line's start or after a timestamp/bracket).
_ERROR_LINE = re.compile(r"(^|[\s\[|])(ERROR|CRITICAL|FATAL|Traceback \(most recent)")
_id_lock = threading.Lock()
_last_ms = 0
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def new_run_id() -> str:
    """A short unique id that sorts by creation time, e.g. ``0mwq5pgftmyhpee`` (15 chars)."""
    global _last_ms
    with _id_lock:
        ms = max(int(time.time() * 1000), _last_ms + 1)  # strictly increasing in-process
        _last_ms = ms
    return f"{_base36(ms, 9)}{''.join(secrets.choice(_ALPHABET) for _ in range(6))}"


def validate_spec(spec: CheckSpec) -> CheckSpec:
    """Check the input before anything runs; fill in a detected run command.

    Raises:
        UsageError: missing project, nothing to run, an invalid regex, a bad number.
    """
    project = Path(spec.project)
    if not project.exists():
        raise UsageError(f"no such project directory: {project}")
    if not project.is_dir():
        raise UsageError(f"not a directory: {project}")
    for option, patterns in (("--expect-log", spec.expect_log), ("--fail-log", spec.fail_log)):
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise UsageError(f"invalid regex for {option} {pattern!r}: {exc}") from exc
    for name in ("start_timeout", "install_timeout"):
        if getattr(spec, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if spec.settle < 0:
        raise UsageError("the settle window cannot be negative")
    if spec.memory_mb <= 0:
        raise UsageError("--memory-mb must be a positive number")
    explicit_run = bool(spec.run and spec.run.strip())
    found = detect_run(project) if not (explicit_run and spec.install) else None
    if explicit_run:
        # The install is still inferred from the dependency files when none is given.
        if found is not None and found.plans and not spec.install:
            return _checked_port_env(spec.model_copy(update={"install": _joined(found)}))
        return _checked_port_env(spec)
    if found is None:
        raise UsageError(f"nothing to run in {project}: pass --run; looked for {LOOKED_FOR}")
    update: dict[str, object] = {"run": found.run}
    if found.install and not spec.install:
        update["install"] = found.install
    if found.health and not spec.health:
        update["health"] = found.health
    if found.port_env and spec.port_env == "PORT":
        update["port_env"] = found.port_env
    return _checked_port_env(spec.model_copy(update=update))


def _joined(found: Detection) -> str:
    return " && ".join(plan.command for plan in found.plans)


def inferred_detection(spec: CheckSpec, checked: CheckSpec) -> Detection | None:
    """The detection whose inferred install ``checked`` uses (None when the install was
    given): its plans may be restored from the shared cache and its PATH entries used."""
    if spec.install:
        return None
    found = detect_run(Path(spec.project))
    if found is None or not found.plans or checked.install != _joined(found):
        return None
    return found


async def _restore_dependencies(
    check: VerificationSequence, sandbox: Sandbox, found: Detection
) -> str | None:
    """Give the run what the shared cache has (read-only in place when the sandbox can show
    it, else a copy); the install left to run in the sandbox (None when nothing is left)."""
    from console import depcache

    notes: list[str] = []
    remaining: list[str] = []
    stage = check.begin("restore", "shared dependency cache")
    how = set()
    mount = getattr(sandbox, "bind_read_only", None)
    for plan in found.plans:
        restored = await asyncio.to_thread(
            depcache.restore, plan, sandbox.project_dir, notes.append, mount
        )
        if restored is None:
            remaining.append(plan.command)
        else:
            how.add("mounted read-only" if restored.mounted else "restored")
            if restored.remaining:
                remaining.append(restored.remaining)
    for note in notes:  # the log is the loop's: written here, not from the thread
        check.logs.system(note)
    check.end(stage, True, ", ".join(sorted(how)) or "not used")
    return " && ".join(remaining) or None


def _checked_port_env(spec: CheckSpec) -> CheckSpec:
    """Refuse a port variable that is no variable name, or one the sandbox sets itself (a
    port written into PATH or the run's marker would break the run in baffling ways)."""
    from console.sandbox.base import usable_port_env

    if not usable_port_env(spec.port_env):
        raise UsageError(
            f"cannot pass the port in {spec.port_env!r}: not a variable name, or one the"
            " sandbox sets itself"
        )
    return spec


def _last_words(check: VerificationSequence, phase: str) -> str:
    """The last non-empty line of a phase (stderr first): shown when there is no trace.
    For the install, the line naming the package manager's real error."""
    lines = [line for line in check.logs.tail if line.phase == phase and line.text.strip()]
    if phase == "install":
        found = real_error_line([line.text for line in lines if line.stream != "system"])
        if found:
            return clip(found)
    for stream in ("stderr", "stdout"):
        chosen = [line for line in lines if line.stream == stream]
        if chosen:
            return clip(chosen[-1].text)
    return ""


def _relative_frames(failure: Failure, project_dir: Path) -> Failure:
    """Frame paths relative to the project (the sandbox copy is deleted after the run)."""
    prefix = str(project_dir).rstrip("/") + "/"
    failure.message = relative_to_project(failure.message, str(project_dir))
    for frame in failure.frames:
        if frame.file and frame.file.startswith(prefix):
            frame.file = frame.file[len(prefix) :]
    return failure


def _extract(text: str, project_dir: Path) -> Failure | None:
    from console.explain.traces import extract_failure

    try:
        failure = extract_failure(text, app=str(project_dir))
    except Exception:  # noqa: BLE001 - a parser bug must not lose the verdict
        log.exception("trace extraction failed")
        return None
    return None if failure is None else _relative_frames(failure, project_dir)


def _summary(failure: Failure | None, fallback: str) -> str:
    if failure is not None:
        message = f": {clip(failure.message)}" if failure.message else ""
        return f": {failure.exception}{message}"
    return f": {fallback}" if fallback else "."


def _located(failure: Failure) -> str:
    """``: sqlite3.OperationalError: no such table: post at flaskr/blog.py:20``."""
    frames = failure.app_frames()
    where = ""
    if frames and frames[0].file:
        line = f":{frames[0].line}" if frames[0].line else ""
        where = f" at {frames[0].file}{line}"
    return _summary(failure, "") + where


def _log_warning(check: VerificationSequence, project_dir: Path) -> str | None:
    """A pass stays a pass (unless ``--fail-log`` says otherwise), but a stack trace or an
    error line in its log is worth a warning."""
    failure = _extract(check.logs.tail_text("run"), project_dir)
    if failure is not None:
        return f"the log holds a stack trace{_located(failure)}"
    for line in check.logs.tail:
        if line.phase == "run" and _ERROR_LINE.search(line.text):
            return f"the log holds an error line: {clip(line.text)}"
    return None


def _abort_reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "stopped before a verdict (interrupted or cancelled)"
    return f"the sandbox failed: {type(exc).__name__}: {exc}"


async def run_check(
    spec: CheckSpec,
    *,
    settings: SandboxSettings | None = None,
    run_id: str | None = None,
    emit: Callable[[Event], None] | None = None,
    job: Job | None = None,
    sandbox: Sandbox | None = None,
) -> CheckResult:
    """Run ``spec``'s project in a sandbox and decide its verdict.

    Emits RunStarted, StageChanged, LogBatch (batched), PortFound and finally
    VerdictReached through ``emit``.  When it returns, no process of the run is left.

    Raises:
        UsageError: the spec is invalid (checked before anything runs).
    """
    settings = settings or SandboxSettings()
    given = spec
    spec = validate_spec(spec)
    found = inferred_detection(given, spec)
    run_id = run_id or new_run_id()
    if sandbox is None:
        from console.sandbox import make_sandbox

        sandbox = make_sandbox(settings, run_id, spec)
    if found is not None and hasattr(sandbox, "path_prepend"):
        sandbox.path_prepend = list(found.path_prepend)  # the run's virtualenv first on PATH
    check = VerificationSequence(spec, settings, run_id, emit, sandbox)
    check.emit(
        RunStarted(
            run_id=run_id,
            project=str(spec.project),
            command=spec.run,
            job_id=job.job_id if job else None,
            combination=job.combination if job else None,
            attempt=job.attempt if job else 1,
            rerun_of=job.rerun_of if job else None,
            ts=check.started,
            isolation=getattr(sandbox, "isolation", ""),
            owner=owner_tag(),
        )
    )
    check.logs.start()
    decision: Decision | None = None
    at = 0.0
    try:
        await sandbox.prepare(Path(spec.project))
        for note in getattr(sandbox, "notes", ()):  # only some sandboxes have something to say
            check.logs.system(note)
        install = spec.install
        if found is not None:
            install = await _restore_dependencies(check, sandbox, found)
        if install:
            decision = await check.install(install)
        if decision is None:
            decision = await check.sequence()
            check.logs.stop_watching()
            at = check.since_start()
            assert check.proc is not None
            await check.proc.stop(settings.stop_grace)
    except BaseException as exc:
        # No verdict will come: say so, so the run is not shown as running forever.
        check.emit(RunAborted(run_id=run_id, reason=_abort_reason(exc)))
        with contextlib.suppress(Exception):
            await sandbox.close()
        raise
    finally:
        await check.logs.aclose()
    try:
        return _conclude(check, spec, sandbox, decision, at, run_id, job)
    finally:
        # The run's processes are already stopped; its directory goes once the verdict is out.
        with contextlib.suppress(Exception):
            await sandbox.close()


def _conclude(
    check: VerificationSequence,
    spec: CheckSpec,
    sandbox: Sandbox,
    decision: Decision,
    at: float,
    run_id: str,
    job: Job | None,
) -> CheckResult:
    """The result of a finished sequence, announced with VerdictReached."""

    phase: Phase = "install" if decision.verdict == Verdict.INSTALL_FAILED else "run"
    failure = None
    if decision.verdict != Verdict.PASS:
        failure = _extract(check.logs.tail_text(phase), sandbox.project_dir)
    proc = check.proc
    exit_info = ExitInfo()
    if phase == "install":
        exit_info = check.install_exit
        if not decision.timed_out:
            decision.reason = decision.reason.rstrip(".") + _summary(
                failure, _last_words(check, "install")
            )
    elif decision.verdict in (Verdict.CRASHED, Verdict.EXITED_EARLY) and proc is not None:
        exit_info = sequence.classify_exit(
            proc.returncode,
            oom_hint=proc.oom_killed,
            killed_by_us=proc.killed_by_us,  # a pod's own deadline ended it
            log_tail=check.logs.last_lines(),
        )
        if proc.oom_killed:
            decision.reason = (
                f"The app was killed for using more than {spec.memory_mb} MB of memory"
                f" {at:.1f} s after start."
            )
        else:
            when = (
                ""
                if decision.verdict == Verdict.CRASHED
                else (", before opening a port" if decision.port is None else ", before passing")
            )
            decision.reason = (
                f"The app exited with {sequence.describe_exit(exit_info)} {at:.1f} s after start"
                f"{when}{_summary(failure, _last_words(check, 'run'))}"
            )
    elif decision.timed_out and proc is not None:
        exit_info = sequence.classify_exit(proc.returncode, killed_by_us=True)
    if decision.verdict in (Verdict.HTTP_ERROR, Verdict.UNHEALTHY) and failure is not None:
        decision.reason = decision.reason.rstrip(".") + _located(failure)
    warnings: list[str] = []
    if decision.verdict == Verdict.PASS:
        port = decision.port.port if decision.port else None
        if port is not None and port != sandbox.port:  # the pass reason says so already
            warnings.append(
                f"the app listened on port {port}, not on the offered port {sandbox.port}"
            )
        logged = _log_warning(check, sandbox.project_dir)
        if logged:
            warnings.append(logged)
            decision.reason += f" Warning: {logged}."
    print_fp = None
    if decision.verdict != Verdict.PASS:
        extra = f"{exit_info.cls or ''}|{decision.reason if failure is None else ''}"
        print_fp = fingerprint(decision.verdict, failure, extra=extra)
    result = CheckResult(
        run_id=run_id,
        verdict=decision.verdict,
        reason=relative_to_project(decision.reason, str(sandbox.project_dir)),
        exit=exit_info,
        port=decision.port.port if decision.port else None,
        http_root=decision.http_root,
        http_health=decision.http_health,
        stages=check.stages,
        log_matches=[line.text for line in check.logs.expect_hits.values()]
        + ([check.logs.fail_hit[1].text] if check.logs.fail_hit else []),
        failure=failure,
        fingerprint=print_fp,
        log_tail=check.logs.last_lines(50),
        started=check.started,
        finished=time.time(),
        command=spec.run,
        job_id=job.job_id if job else None,
        isolation=getattr(sandbox, "isolation", ""),
        warnings=[relative_to_project(w, str(sandbox.project_dir)) for w in warnings],
    )
    check.emit(VerdictReached(run_id=run_id, result=result))
    return result


__all__ = ["inferred_detection", "new_run_id", "run_check", "validate_spec"]
