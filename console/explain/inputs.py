"""What a failure explanation starts from: a trace given by the user, or a recorded run."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from console.errors import UsageError
from console.explain.appframes import mark_app_frames
from console.explain.signatures import INSTALLED_DIRS
from console.explain.traces import extract_failure
from console.model import Failure

_FRAME_LINE = re.compile(r'^\s*(?:at\s|File "|\.\.\. \d+ (?:more|common)|Caused by:|\^+\s*$|~+)')
LOG_LINES = 40


class FailureInput(BaseModel):
    """One failure to explain, with everything known about it.

    Attributes:
        failure: the parsed root failure (None for a run that ended without a trace).
        log: context lines from the log (frame lines left out: the trace is summarised).
        run_id / fingerprint / verdict / exit_class: set when it comes from a recorded run.
        service: project or service name shown to the model.
        project_root: where sources (signatures) and an OpenAPI file may be found.
        project_files: the project's files (relative paths), when known: a recorded
            generation's, or those under ``project_root``.
        spec / method / url: the API description and the failed request, when known.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    failure: Failure | None = None
    log: str = ""
    run_id: str | None = None
    fingerprint: str | None = None
    verdict: str | None = None
    exit_class: str | None = None
    reason: str | None = None
    service: str | None = None
    project_root: Path | None = None
    project_files: tuple[str, ...] | None = None
    spec: dict[str, Any] | None = None
    method: str | None = None
    url: str | None = None


def context_lines(text: str, limit: int = LOG_LINES) -> str:
    """The last ``limit`` lines of ``text`` that are not stack-frame lines."""
    kept = [line for line in text.splitlines() if line.strip() and not _FRAME_LINE.match(line)]
    return "\n".join(kept[-limit:])


# Installed dependencies, VCS data and byte code: not the project's own files.
_NOT_OWN = INSTALLED_DIRS | {"__pycache__"}
MAX_LISTED = 5000


def project_file_names(root: Path) -> tuple[str, ...] | None:
    """The files under ``root`` (relative, POSIX), installed dependencies left out; None
    when ``root`` holds more than :data:`MAX_LISTED` (an untrusted tree is not walked whole)."""
    found: list[str] = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if name not in _NOT_OWN]
        base = Path(directory).relative_to(root)
        found.extend((base / name).as_posix() for name in files)
        if len(found) > MAX_LISTED:
            return None
    return tuple(sorted(found))


def _is_path(app: str) -> bool:
    return "/" in app or "\\" in app or app.startswith((".", "~")) or bool(re.match(r"^\w:", app))


def from_trace(
    text: str,
    *,
    app: str | None = None,
    source: Path | None = None,
    spec: dict[str, Any] | None = None,
    method: str | None = None,
    url: str | None = None,
) -> FailureInput:
    """A failure from trace text.

    Raises:
        UsageError: the text holds no stack trace.
    """
    failure = extract_failure(text, app=app)
    if failure is None:
        raise UsageError("no stack trace found in the input")
    root = source
    if root is None and app and _is_path(app):
        root = Path(app).expanduser()
    service = root.name if root else (app.rsplit(".", 1)[-1] if app else None)
    return FailureInput(
        failure=failure,
        log=context_lines(text),
        service=service,
        project_root=root,
        project_files=project_file_names(root) if root and root.is_dir() else None,
        spec=spec,
        method=method,
        url=url,
    )


def from_run(database: Any, run_id: str, *, app: str | None = None) -> FailureInput:
    """The failure of a recorded run: its stored failure, or the one in its log.

    Raises:
        UsageError: no such run, or the run passed (nothing to explain).
    """
    from storage.runs import get_generation, get_run, run_log

    record = get_run(database, run_id)
    if record is None:
        raise UsageError(f"no run {run_id!r} in the database")
    if record.status == "running" or record.verdict is None:
        raise UsageError(f"run {record.run_id} has no verdict yet")
    if record.verdict.value == "pass":
        raise UsageError(f"run {record.run_id} passed: there is no failure to explain")
    failure = record.result.failure if record.result else None
    lines = run_log(database, record.run_id, max(0, record.log_lines - 2000), 2000)
    text = "\n".join(line.text for line in lines)
    if failure is None and text:
        failure = extract_failure(text, app=app)
    elif failure is not None and app:
        mark_app_frames(failure, app)
    if not text and record.result:
        text = "\n".join(line.text for line in record.result.log_tail)
    project = Path(record.project) if record.project else None
    root = project if project and project.is_dir() else None
    generation = get_generation(database, record.run_id)
    if generation is not None and generation.ok:
        files: tuple[str, ...] | None = tuple(generation.files)
    else:
        files = project_file_names(root) if root else None
    return FailureInput(
        failure=failure,
        log=context_lines(text),
        run_id=record.run_id,
        fingerprint=record.fingerprint,
        verdict=record.verdict.value,
        exit_class=record.exit_class,
        reason=record.reason,
        service=record.spec or (project.name if project else None),
        project_root=root,
        project_files=files,
    )
