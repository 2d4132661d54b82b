"""One typed settings model, read from ``config.toml`` with ``VERDICT_*`` overrides.

Precedence (highest first): explicit CLI options (applied by callers), environment
variables, the config file, defaults.  Environment names are ``VERDICT_<FIELD>`` for
top-level fields and ``VERDICT_<SECTION>_<FIELD>`` for nested ones, e.g.
``VERDICT_LLM_BASE_URL`` or ``VERDICT_SANDBOX_MEMORY_MB``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console import paths
from console.model import DEFAULT_SETTLE

ENV_PREFIX = "VERDICT_"
# Bounds that keep every number finite and within what the OS and asyncio accept.
MAX_SECONDS = 7 * 24 * 3600.0
MAX_MEMORY_MB = 1024 * 1024  # 1 TB
MAX_COUNT = 10**9


class SettingsError(ValueError):
    """The config file or an environment override is invalid (one-line message)."""


class Price(BaseModel):
    """USD per one million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = 0.0
    cached_input: float | None = None  # None: priced as ordinary input
    output: float = 0.0


class ModelConfig(BaseModel):
    """A model the LLM layer may create, with its own endpoint and parameters."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    price: Price = Field(default_factory=Price)


class LlmSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    model: str | None = None
    # Never stored in the file by us; read from the environment at call time.
    api_key: str | None = None
    timeout: float = Field(default=60.0, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    max_retries: int = Field(default=2, ge=0, le=100)
    models: dict[str, ModelConfig] = Field(default_factory=dict)


class SandboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = "local"
    memory_mb: int = Field(default=1024, gt=0, le=MAX_MEMORY_MB)
    start_timeout: float = Field(default=30.0, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    install_timeout: float = Field(default=300.0, gt=0, le=MAX_SECONDS, allow_inf_nan=False)
    settle: float = Field(default=DEFAULT_SETTLE, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    stop_grace: float = Field(default=2.0, ge=0, le=MAX_SECONDS, allow_inf_nan=False)
    max_log_lines: int = Field(default=100_000, gt=0, le=MAX_COUNT)
    open_files: int = Field(default=4096, gt=0, le=MAX_COUNT)
    file_size_mb: int = Field(default=1024, gt=0, le=MAX_MEMORY_MB)
    # "auto": Linux namespaces where permitted (a one-line warning where not); "off": none.
    isolation: Literal["auto", "off"] = "auto"
    # "none": the project runs without network access (an empty network namespace).
    network: Literal["host", "none"] = "host"
    max_copy_mb: int = Field(default=1024, gt=0, le=MAX_MEMORY_MB)
    max_copy_files: int = Field(default=100_000, gt=0, le=MAX_COUNT)
    # Kubernetes sandboxes (kind = "kube"): one pod per run in a namespace of its own.
    kube_namespace: str = "verdict-sandbox"
    kube_context: str | None = None  # kubeconfig context; None: current, or in-cluster
    kube_images: dict[str, str] = Field(
        default_factory=lambda: {"python": "python:3.12-slim", "node": "node:22-slim"}
    )
    kube_agent_image: str = "python:3.12-slim"  # the probe agent's sidecar (stdlib only)
    kube_node_selector: dict[str, str] = Field(default_factory=dict)
    kube_tolerations: list[dict[str, str]] = Field(default_factory=list)
    kube_cpu: str = "1"
    kube_ephemeral_mb: int = Field(default=1024, gt=0, le=MAX_MEMORY_MB)
    kube_max_pods: int = Field(default=20, gt=0, le=MAX_COUNT)
    kube_request_timeout: float = Field(default=10.0, gt=0, le=MAX_SECONDS, allow_inf_nan=False)


class QueueSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = "embedded"
    slots: int = 2
    min_free_memory_mb: int = 512
    max_cpu_percent: float = 90.0
    # Kafka consumer tuning (distributed mode).
    kafka_partitions: int = 6
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    kafka_max_poll_interval_ms: int = 300_000
    kafka_poll_ms: int = 200


class ExplainSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lang: str = "en"
    secrets: list[str] = Field(default_factory=list)
    max_input_chars: int = 24_000


class UiSettings(BaseModel):
    """The console: key remapping (binding id -> keys, e.g. ``rerun = "ctrl+r"``)."""

    model_config = ConfigDict(extra="forbid")

    keys: dict[str, str] = Field(default_factory=dict)
    log_lines: int = Field(default=5000, ge=100, le=1_000_000)  # kept in the log pane


class Settings(BaseModel):
    """Everything configurable, in one place."""

    model_config = ConfigDict(extra="forbid")

    db: Path | None = None
    user: str | None = None
    llm: LlmSettings = Field(default_factory=LlmSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    explain: ExplainSettings = Field(default_factory=ExplainSettings)
    ui: UiSettings = Field(default_factory=UiSettings)

    def db_path(self) -> Path:
        """The database file to open."""
        return self.db or paths.default_db_path()


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    sections = {
        name: model
        for name, model in Settings.model_fields.items()
        if isinstance(model.annotation, type) and issubclass(model.annotation, BaseModel)
    }
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        rest = key[len(ENV_PREFIX) :].lower()
        for section, field in sections.items():
            prefix = section + "_"
            sub_model = field.annotation
            if rest.startswith(prefix) and rest[len(prefix) :] in sub_model.model_fields:  # type: ignore[union-attr]
                overrides.setdefault(section, {})[rest[len(prefix) :]] = value
                break
        else:
            if rest in Settings.model_fields and rest not in sections:
                overrides[rest] = value
    return overrides


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    config_path: Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read settings from the config file and the environment.

    Raises:
        SettingsError: the file is not valid TOML or a value has the wrong type.
    """
    environ = dict(os.environ) if environ is None else environ
    path = config_path or Path(environ.get("VERDICT_CONFIG") or paths.config_file())
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    overrides = _env_overrides(environ)
    data = _merge(data, overrides)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first["loc"]]
        where = ".".join(loc)
        # Name where the bad value came from: an environment variable, or the file.
        value: Any = overrides
        for part in loc[:2]:
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None and not isinstance(value, dict):
            name = ENV_PREFIX + "_".join(loc[:2]).upper()
            raise SettingsError(f"{name}: {first['msg']}") from exc
        raise SettingsError(f"{path}: {where}: {first['msg']}") from exc
