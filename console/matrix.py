"""Read and validate a matrix file; expand it into one job per spec × prompt × model.

A matrix file is TOML with exactly these top-level keys::

    [settings]   # optional: slots, start_timeout, memory_mb, queue, sandbox
    [[spec]]     # name, task, and the checks: run, install, health, expect_log, fail_log,
                 # start_timeout
    [[prompt]]   # version, template (a file, relative to the matrix file)
    [[model]]    # name, optional base_url, params, price
    [generator]  # kind = "llm" | "replay"; replay: dir holding <version>/<model>/
                 # (``{spec}`` in dir gives each spec its own recordings)

Everything a worker on another machine needs to run a job (the resolved spec checks, the
rendered prompt, the model's configuration, the generator) travels in ``Job.payload``, so a
worker never opens the matrix file.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from console.errors import UsageError, one_line
from console.files import InputFileError, nesting_depth, read_text_file
from console.generate.payload import (
    PAYLOAD_FORMAT,
    check_spec_for_job,
    placeholders_in,
    render_template,
    replay_root_for,
)
from console.generate.result import GenerationResult
from console.model import CheckSpec, Combination, Job
from console.queue.base import parse_queue_url
from console.settings import MAX_MEMORY_MB, MAX_SECONDS, Price

if TYPE_CHECKING:
    from console.generate.result import Generator
    from console.settings import Settings
    from storage.db import Database

# Names become path components of replay directories and parts of Kafka keys.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Model names may carry a vendor prefix ("meta-llama/llama-3.1-8b") or a tag ("qwen2.5:7b").
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*(/[A-Za-z0-9][A-Za-z0-9._:-]*)*$")
_MAX_NAME = 100  # a path component must stay well under the file system's limit
PLACEHOLDERS = ("task", "spec", "version", "model")
MAX_MATRIX_BYTES = 1024 * 1024
MAX_NESTING = 32  # tables and arrays within each other; a real matrix uses 4 or 5
MAX_SLOTS = 1024
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")


class MatrixError(UsageError):
    """The matrix file is invalid.  The message is one line: file, key, problem."""


class _Strict(BaseModel):
    # Unknown keys are errors: a typo ("helth") must never be silently ignored.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MatrixSettings(_Strict):
    """``[settings]``: defaults for the whole run; each is optional."""

    slots: int | None = Field(default=None, gt=0, le=MAX_SLOTS)
    start_timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    memory_mb: int | None = Field(default=None, gt=0, le=MAX_MEMORY_MB)
    queue: str | None = None
    sandbox: Literal["local"] | None = None
    # "none": the projects run without network access (see ``verdict check --network``).
    network: Literal["host", "none"] | None = None


class SpecConfig(_Strict):
    """``[[spec]]``: what to build (``task``) and how to check it."""

    name: str
    task: str
    run: str | None = None
    install: str | None = None
    health: str | None = None
    expect_log: list[str] = Field(default_factory=list)
    fail_log: list[str] = Field(default_factory=list)
    start_timeout: float | None = Field(default=None, gt=0, le=MAX_SECONDS, allow_inf_nan=False)


class PromptConfig(_Strict):
    """``[[prompt]]``: a prompt version and its template file."""

    version: str
    template: str


class ModelEntry(_Strict):
    """``[[model]]``: a model name and its optional endpoint, parameters and price."""

    name: str
    base_url: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    price: Price | None = None

    @field_validator("base_url")
    @classmethod
    def _base_url_is_a_url(cls, value: str | None) -> str | None:
        if value is not None and not _URL.match(value):
            raise ValueError("must be an http:// or https:// URL, e.g. http://127.0.0.1:11434/v1")
        return value


class GeneratorConfig(_Strict):
    """``[generator]``: where projects come from."""

    kind: Literal["llm", "replay"]
    dir: str | None = None


class _MatrixFile(_Strict):
    settings: MatrixSettings = Field(default_factory=MatrixSettings)
    spec: list[SpecConfig] = Field(min_length=1)
    prompt: list[PromptConfig] = Field(min_length=1)
    model: list[ModelEntry] = Field(min_length=1)
    generator: GeneratorConfig


class Matrix:
    """A validated matrix file.  Build one with :func:`load_matrix`."""

    def __init__(
        self,
        path: Path,
        data: _MatrixFile,
        templates: dict[str, str],
        replay_dir: Path | None,
    ) -> None:
        self.path = path
        self.settings: MatrixSettings = data.settings
        self.specs: list[SpecConfig] = list(data.spec)
        self.prompts: list[PromptConfig] = list(data.prompt)
        self.models: list[ModelEntry] = list(data.model)
        self.generator_config: GeneratorConfig = data.generator
        self.templates = templates  # version -> template text
        self.replay_dir = replay_dir

    # --- lookup ------------------------------------------------------------------------

    def spec(self, name: str) -> SpecConfig:
        """The spec called ``name``; MatrixError when there is none."""
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise MatrixError(f"{self.path}: spec: no spec named {name!r}")

    def prompt(self, version: str) -> PromptConfig:
        """The prompt of ``version``; MatrixError when there is none."""
        for prompt in self.prompts:
            if prompt.version == version:
                return prompt
        raise MatrixError(f"{self.path}: prompt: no prompt version {version!r}")

    def model(self, name: str) -> ModelEntry:
        """The model called ``name``; MatrixError when there is none."""
        for model in self.models:
            if model.name == name:
                return model
        raise MatrixError(f"{self.path}: model: no model named {name!r}")

    def combinations(self, *, spec: str | None = None) -> list[Combination]:
        """Every spec × prompt × model cell, in file order (only ``spec`` when given)."""
        specs = [self.spec(spec)] if spec is not None else self.specs
        return [
            Combination(spec=s.name, prompt=p.version, model=m.name)
            for s in specs
            for p in self.prompts
            for m in self.models
        ]

    # --- expansion ---------------------------------------------------------------------

    def render_prompt(self, combination: Combination) -> str:
        """The prompt text sent to the model for one cell."""
        spec = self.spec(combination.spec)
        return render_template(
            self.templates[self.prompt(combination.prompt).version],
            {
                "task": spec.task.strip(),
                "spec": spec.name,
                "version": combination.prompt,
                "model": combination.model,
            },
        )

    def payload_for(self, combination: Combination) -> dict[str, Any]:
        """Everything a worker needs to run this cell, without the matrix file."""
        spec = self.spec(combination.spec)
        prompt = self.prompt(combination.prompt)
        model = self.model(combination.model)
        start_timeout = spec.start_timeout or self.settings.start_timeout
        return {
            "format": PAYLOAD_FORMAT,
            "spec": spec.model_dump(mode="json"),
            "prompt": {
                "version": prompt.version,
                "template": prompt.template,
                "text": self.render_prompt(combination),
            },
            "model": model.model_dump(mode="json"),
            "generator": {
                "kind": self.generator_config.kind,
                "dir": replay_root_for(self.replay_dir, spec.name) if self.replay_dir else None,
            },
            "check": {"start_timeout": start_timeout, "memory_mb": self.settings.memory_mb},
        }

    def job_for(
        self, combination: Combination, *, attempt: int = 1, rerun_of: str | None = None
    ) -> Job:
        """The job for one cell and attempt; the same inputs always give the same id."""
        if attempt < 1:
            raise MatrixError(f"{self.path}: attempt: must be 1 or more, got {attempt}")
        payload = self.payload_for(combination)
        return Job(
            job_id=job_id_for(payload, attempt, replay_dir_as_written=self.generator_config.dir),
            combination=combination,
            attempt=attempt,
            matrix=str(self.path),
            rerun_of=rerun_of,
            payload=payload,
        )

    def jobs(self, attempt: int = 1, *, spec: str | None = None) -> list[Job]:
        """One job per spec × prompt × model (only for ``spec`` when given)."""
        return [self.job_for(c, attempt=attempt) for c in self.combinations(spec=spec)]

    def check_spec_for(
        self, job: Job, project_dir: Path, generated: GenerationResult | None
    ) -> CheckSpec:
        """The checks for a generated project: the spec's values win over the generator's.

        ``run``, ``install`` and ``health`` come from the spec when it gives them, else from
        what the generator said; ``port_env`` comes from the generator (default ``PORT``).
        """
        return check_spec_for_job(job, project_dir, generated)

    def generator(self, settings: Settings, db: Database | None = None) -> Generator:
        """The generator this matrix asks for (replay, or LLM through the chat factory)."""
        from console.generate.select import generator_for

        return generator_for(
            self.generator_config.kind,
            self.replay_dir,
            settings=settings,
            db=db,
            models=[m.model_dump(mode="json") for m in self.models],
        )


def job_id_for(
    payload: dict[str, Any], attempt: int, *, replay_dir_as_written: str | None = None
) -> str:
    """A stable id from a job's resolved content and attempt number.

    The replay directory is hashed as written in the matrix, so the same matrix checked out
    in another place gives the same ids.
    """
    content = dict(payload)
    content["generator"] = {**payload["generator"], "dir": replay_dir_as_written}
    blob = json.dumps({"payload": content, "attempt": attempt}, sort_keys=True)
    return "j" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]


# --- loading ---------------------------------------------------------------------------


def load_matrix(path: Path) -> Matrix:
    """Read, validate and resolve a matrix file.

    Raises:
        MatrixError: the file is missing, not TOML, or invalid; the message names the
            file, the key and the problem on one line.
    """
    path = Path(path)
    try:
        text = read_text_file(path, limit=MAX_MATRIX_BYTES)
    except InputFileError as exc:
        raise MatrixError(f"{one_line(str(path), 300)}: {exc.problem}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: not valid TOML: {one_line(str(exc), None)}") from exc
    except RecursionError:
        raise MatrixError(f"{path}: nested more than {MAX_NESTING} levels deep") from None
    if nesting_depth(raw, MAX_NESTING) > MAX_NESTING:
        raise MatrixError(f"{path}: nested more than {MAX_NESTING} levels deep")
    try:
        data = _MatrixFile.model_validate(raw)
    except ValidationError as exc:
        raise MatrixError(f"{path}: {_describe(exc, raw)}") from exc
    base = path.resolve().parent
    _check_semantics(path, data)
    templates = {p.version: _read_template(path, base, i, p) for i, p in enumerate(data.prompt)}
    replay_dir = _replay_dir(path, base, data)
    return Matrix(path.resolve(), data, templates, replay_dir)


_TABLES = {"spec": "name", "prompt": "version", "model": "name"}


def _where(raw: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """``spec #2 "orders": helth`` for ``("spec", 1, "helth")``."""
    parts: list[str] = []
    i = 0
    while i < len(loc):
        part = loc[i]
        if (
            i == 0
            and isinstance(part, str)
            and part in _TABLES
            and i + 1 < len(loc)
            and isinstance(loc[i + 1], int)
        ):
            index = loc[i + 1]
            label = f"{part} #{index + 1}"
            items = raw.get(part)
            if isinstance(items, list) and index < len(items) and isinstance(items[index], dict):
                ident = items[index].get(_TABLES[part])
                if isinstance(ident, str):
                    label += f" {json.dumps(ident)}"
            parts.append(label + ":")
            i += 2
            continue
        parts.append(str(part) if not parts or parts[-1].endswith(":") else f".{part}")
        i += 1
    text = ""
    for part in parts:
        if part.startswith("."):
            text += part
        else:
            text += (" " if text else "") + part
    return text.rstrip(":")


def _allowed(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


_MODELS_AT: dict[str, type[BaseModel]] = {
    "settings": MatrixSettings,
    "spec": SpecConfig,
    "prompt": PromptConfig,
    "model": ModelEntry,
    "generator": GeneratorConfig,
    "price": Price,
}


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    errors = exc.errors()
    # A typo shows up as an unknown key *and* a missing one: the unknown key is the cause.
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(error["loc"])
    where = _where(raw, loc) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        parents = [p for p in loc[:-1] if isinstance(p, str)]
        owner = _MODELS_AT.get(parents[-1]) if parents else _MatrixFile
        allowed = f" (allowed: {_allowed(owner)})" if owner else ""
        return f"{where}: unknown key{allowed}"
    if kind == "missing":
        return f"{where}: missing required key"
    if kind == "too_short" and len(loc) == 1:
        return f"{where}: at least one [[{loc[0]}]] table is required"
    if kind == "list_type" and len(loc) == 1 and loc[0] in _TABLES:
        return f"{where}: must be an array of tables ([[{loc[0]}]])"
    return f"{where}: {one_line(error['msg'], None)}"


def _fail(path: Path, where: str, problem: str) -> MatrixError:
    return MatrixError(f"{path}: {where}: {problem}")


def _label(table: str, index: int, ident: str) -> str:
    return f"{table} #{index + 1} {json.dumps(ident)}"


def _check_semantics(path: Path, data: _MatrixFile) -> None:
    for table, items, key, pattern in (
        ("spec", data.spec, "name", _NAME),
        ("prompt", data.prompt, "version", _NAME),
        ("model", data.model, "name", _MODEL_NAME),
    ):
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            ident = getattr(item, key)
            where = f"{_label(table, index, ident)}: {key}"
            if not pattern.match(ident) or ".." in ident.split("/"):
                raise _fail(
                    path, where, "use letters, digits, '.', '_' or '-' (it names directories)"
                )
            if len(ident) > _MAX_NAME:
                raise _fail(path, where, f"too long ({len(ident)} > {_MAX_NAME} characters)")
            if ident in seen:
                raise _fail(path, where, f"duplicate {key} (also {table} #{seen[ident] + 1})")
            seen[ident] = index
    for index, spec in enumerate(data.spec):
        label = _label("spec", index, spec.name)
        if not spec.task.strip():
            raise _fail(path, f"{label}: task", "must not be empty")
        if spec.health is not None and (
            not spec.health.startswith("/")
            or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in spec.health)
        ):
            raise _fail(
                path,
                f"{label}: health",
                f"must be a path starting with '/' (no spaces or control characters),"
                f" got {one_line(repr(spec.health), 80)}",
            )
        for key in ("run", "install"):
            value = getattr(spec, key)
            if value is not None and not value.strip():
                raise _fail(path, f"{label}: {key}", "must not be empty (leave it out instead)")
        for key in ("expect_log", "fail_log"):
            for pattern in getattr(spec, key):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise _fail(
                        path, f"{label}: {key}", f"invalid regular expression {pattern!r}: {exc}"
                    ) from exc
    if data.settings.queue is not None:
        try:
            parse_queue_url(data.settings.queue)
        except UsageError as exc:
            raise _fail(path, "settings.queue", str(exc).removeprefix("--queue: ")) from exc
    generator = data.generator
    if generator.kind == "replay" and not generator.dir:
        raise _fail(path, "generator.dir", 'missing required key for kind = "replay"')
    if generator.kind == "llm" and generator.dir is not None:
        raise _fail(path, "generator.dir", 'only used with kind = "replay"')


def _read_template(path: Path, base: Path, index: int, prompt: PromptConfig) -> str:
    where = f"{_label('prompt', index, prompt.version)}: template"
    file = base / prompt.template
    try:
        text = read_text_file(file, limit=MAX_MATRIX_BYTES)
    except InputFileError as exc:
        if exc.problem == "no such file":
            raise _fail(path, where, f"no such file: {prompt.template}") from None
        raise _fail(path, where, f"{prompt.template}: {exc.problem}") from None
    if not text.strip():
        raise _fail(path, where, f"{prompt.template} is empty")
    unknown = sorted(set(placeholders_in(text)) - set(PLACEHOLDERS))
    if unknown:
        known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        raise _fail(
            path,
            where,
            f"unknown placeholder {{{unknown[0]}}} in {prompt.template} (known: {known})",
        )
    if "task" not in placeholders_in(text):
        raise _fail(path, where, f"{prompt.template} never uses {{task}}")
    return text


def _replay_dir(path: Path, base: Path, data: _MatrixFile) -> Path | None:
    generator = data.generator
    if generator.kind != "replay" or generator.dir is None:
        return None
    unknown = sorted(set(placeholders_in(generator.dir)) - {"spec"})
    if unknown:
        raise _fail(
            path, "generator.dir", f"unknown placeholder {{{unknown[0]}}} (known: {{spec}})"
        )
    directory = base / generator.dir
    for spec in data.spec:
        resolved = Path(replay_root_for(directory, spec.name))
        if not resolved.is_dir():
            shown = render_template(generator.dir, {"spec": spec.name})
            raise _fail(path, "generator.dir", f"no such directory: {shown}")
    return directory
