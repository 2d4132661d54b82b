"""Plain domain types shared by the engine, storage, widgets and the CLI.

This is the leaf module: it imports nothing of ours.  Everything here is a pydantic
model so it round-trips through JSON unchanged (``model_dump(mode="json")`` /
``model_validate``) — that is how events travel on Kafka and how the CLI prints ``--json``.
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Verdict(StrEnum):
    """The outcome of one run.  Names are a public contract (CLI, JSON, database)."""

    PASS = "pass"
    GENERATION_FAILED = "generation_failed"
    INSTALL_FAILED = "install_failed"
    CRASHED = "crashed"
    EXITED_EARLY = "exited_early"
    NO_PORT = "no_port"
    HTTP_ERROR = "http_error"
    UNHEALTHY = "unhealthy"
    LOG_ERROR = "log_error"
    TIMEOUT = "timeout"


class ExitClass(StrEnum):
    """How a process ended.  Names are a public contract."""

    OK = "ok"
    ERROR = "error"
    USAGE = "usage"
    NOT_EXECUTABLE = "not_executable"
    COMMAND_NOT_FOUND = "command_not_found"
    SIGNAL = "signal"
    OOM = "oom"
    TIMEOUT = "timeout"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=False, extra="ignore")


class ExitInfo(_Model):
    """A process's end: its code, the signal that killed it, and the class."""

    code: int | None = None
    signal: str | None = None
    cls: ExitClass | None = Field(default=None, serialization_alias="class")


class LogLine(_Model):
    """One line of a sandboxed process's output."""

    seq: int
    ts: float
    stream: Literal["stdout", "stderr", "system"] = "stdout"
    phase: Literal["install", "run"] = "run"
    text: str


class StageResult(_Model):
    """One step of the verification sequence."""

    name: str
    ok: bool
    started: float
    ms: float
    detail: str = ""


class Frame(_Model):
    """One stack frame.  ``app`` marks the application's own code."""

    name: str
    file: str | None = None
    line: int | None = None
    app: bool = False
    module: str | None = None  # JVM: fully qualified class; Python/Node: None or module
    raw: str = ""


class Failure(_Model):
    """The parsed root failure of a run's log (or of a trace given to the explainer)."""

    exception: str
    message: str = ""
    frames: list[Frame] = Field(default_factory=list)
    language: Literal["python", "node", "jvm", "go", "ruby", "php", "dotnet", "rust", "unknown"] = (
        "unknown"
    )
    causes: list[str] = Field(default_factory=list)  # outer exceptions, outermost first

    def app_frames(self) -> list[Frame]:
        """The application's own frames, in the order stored (innermost first)."""
        return [frame for frame in self.frames if frame.app]


# Seconds an app must stay up after opening its port (GET / and the health check run inside
# the window, and it lasts at least a short tail after them).  Crashes after the port opens
# cluster in the first ~100 ms (a failed connect's unhandled rejection, a startup hook);
# ``--settle`` / ``[sandbox] settle`` lengthen it.
DEFAULT_SETTLE = 0.5


class CheckSpec(_Model):
    """What to run and how to judge it: everything ``verdict check`` accepts."""

    project: Path
    run: str | None = None
    install: str | None = None
    health: str | None = None
    expect_log: list[str] = Field(default_factory=list)
    fail_log: list[str] = Field(default_factory=list)
    start_timeout: float = 30.0
    install_timeout: float = 300.0
    memory_mb: int = 1024
    env: dict[str, str] = Field(default_factory=dict)
    settle: float = DEFAULT_SETTLE
    port_env: str = "PORT"


class CheckResult(_Model):
    """The verdict of one run with all of its evidence."""

    run_id: str
    verdict: Verdict
    reason: str
    exit: ExitInfo = Field(default_factory=ExitInfo)
    port: int | None = None
    http_root: int | None = None
    http_health: int | None = None
    stages: list[StageResult] = Field(default_factory=list)
    log_matches: list[str] = Field(default_factory=list)
    failure: Failure | None = None
    fingerprint: str | None = None
    log_tail: list[LogLine] = Field(default_factory=list)
    started: float = Field(default_factory=time.time)
    finished: float = Field(default_factory=time.time)
    command: str | None = None
    job_id: str | None = None
    # "namespaces", or "none: <why>" when the run had only the process-group sandbox.
    isolation: str = ""
    # What a pass should not hide (a stack trace in its log, another port than offered);
    # each is also said in the reason.
    warnings: list[str] = Field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` contract of ``verdict check``."""
        return {
            "run_id": self.run_id,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "exit": {
                "code": self.exit.code,
                "signal": self.exit.signal,
                "class": self.exit.cls.value if self.exit.cls else None,
            },
            "port": self.port,
            "http": {"root": self.http_root, "health": self.http_health},
            "stages": [
                {"name": s.name, "ok": s.ok, "ms": round(s.ms, 1), "detail": s.detail}
                for s in self.stages
            ],
            "log_matches": list(self.log_matches),
            "failure": None
            if self.failure is None
            else {
                "exception": self.failure.exception,
                "message": self.failure.message,
                "frames": [
                    {"name": f.name, "file": f.file, "line": f.line, "app": f.app}
                    for f in self.failure.frames
                ],
            },
            "fingerprint": self.fingerprint,
            "log_tail": [line.text for line in self.log_tail[-50:]],
            "isolation": self.isolation,
            "warnings": list(self.warnings),
        }


class Combination(_Model):
    """One cell of the matrix: project spec × prompt version × model."""

    model_config = ConfigDict(frozen=True)

    spec: str
    prompt: str
    model: str

    @property
    def key(self) -> str:
        """Stable text key, used as the Kafka message key."""
        return f"{self.spec}/{self.prompt}/{self.model}"


class Job(_Model):
    """A unit of work on the queue: verify one combination (one attempt)."""

    job_id: str
    combination: Combination
    attempt: int = 1
    matrix: str | None = None  # path of the matrix file the job came from
    rerun_of: str | None = None  # run_id this attempt reruns
    payload: dict[str, Any] = Field(default_factory=dict)  # resolved spec/prompt/model data
    created: float = Field(default_factory=time.time)


class TokenUsage(_Model):
    """Tokens of one LLM call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0


class Explanation(_Model):
    """The structured answer for a failure, as the seed defines it (+ confidence)."""

    action: str
    reason: str
    guide: str
    inference: str
    confidence: float = 0.5


# --- events -----------------------------------------------------------------------------
# Every engine output a console pane shows live is one of these.  They are JSON-safe so the
# distributed mode carries them on the ``verdict.events`` topic unchanged.


class RunStarted(_Model):
    kind: Literal["run_started"] = "run_started"
    run_id: str
    project: str
    command: str | None = None
    job_id: str | None = None
    combination: Combination | None = None
    attempt: int = 1
    rerun_of: str | None = None
    ts: float = Field(default_factory=time.time)
    isolation: str = ""  # as CheckResult.isolation
    owner: str = ""  # "host:pid:start" of the process running it (finds runs it left)


class StageChanged(_Model):
    kind: Literal["stage_changed"] = "stage_changed"
    run_id: str
    name: str
    status: Literal["running", "ok", "failed", "skipped"]
    detail: str = ""
    ms: float | None = None
    ts: float = Field(default_factory=time.time)


class LogBatch(_Model):
    kind: Literal["log_batch"] = "log_batch"
    run_id: str
    lines: list[LogLine]
    truncated: bool = False  # the per-run cap was reached; later lines are dropped


class PortFound(_Model):
    kind: Literal["port_found"] = "port_found"
    run_id: str
    port: int
    pid: int | None = None
    ts: float = Field(default_factory=time.time)


class ProcessStarted(_Model):
    """A command started in a sandbox: where it runs (a local pid or a pod)."""

    kind: Literal["process_started"] = "process_started"
    run_id: str
    phase: Literal["install", "run"] = "run"
    sandbox: str = "local"
    pid: int | None = None
    pod: str | None = None
    node: str | None = None
    ts: float = Field(default_factory=time.time)


class VerdictReached(_Model):
    kind: Literal["verdict_reached"] = "verdict_reached"
    run_id: str
    result: CheckResult


class RunAborted(_Model):
    """A run ended without a verdict: cancelled (signal, worker stop) or the sandbox failed."""

    kind: Literal["run_aborted"] = "run_aborted"
    run_id: str
    reason: str
    ts: float = Field(default_factory=time.time)


class JobQueued(_Model):
    kind: Literal["job_queued"] = "job_queued"
    job: Job


class JobStarted(_Model):
    kind: Literal["job_started"] = "job_started"
    job_id: str
    run_id: str
    worker: str = ""
    ts: float = Field(default_factory=time.time)


class JobFinished(_Model):
    kind: Literal["job_finished"] = "job_finished"
    job_id: str
    run_id: str
    verdict: Verdict
    fingerprint: str | None = None
    ts: float = Field(default_factory=time.time)


class GenerationFinished(_Model):
    """A job's project was generated (or not): what the generator said and returned.

    ``responses`` are the model's raw answers in order (none for replay).  Each text is
    capped when the event is built (``console.generate.record``) so one event stays well
    under a Kafka record; ``notes`` says what was cut.
    """

    kind: Literal["generation_finished"] = "generation_finished"
    run_id: str
    job_id: str | None = None
    ok: bool
    reason: str = ""
    generator: str = ""  # "llm", "replay", ...
    attempts: int = 0
    ms: float = 0.0
    files: list[str] = Field(default_factory=list)
    responses: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    ts: float = Field(default_factory=time.time)


Event = Annotated[
    RunStarted
    | StageChanged
    | LogBatch
    | PortFound
    | ProcessStarted
    | VerdictReached
    | RunAborted
    | JobQueued
    | JobStarted
    | JobFinished
    | GenerationFinished,
    Field(discriminator="kind"),
]


class EventEnvelope(_Model):
    """Wrapper used to (de)serialise any event: ``EventEnvelope(event=e).model_dump_json()``."""

    event: Event
