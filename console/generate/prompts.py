"""The fixed framing around a matrix prompt: the answer's JSON shape and the repair turn."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from console.sandbox.base import is_env_name, reserved_env_name

SYSTEM_PROMPT = """\
You write small, complete, runnable software projects.

Answer with one JSON object and nothing else:
- "files": every file of the project, each {"path": ..., "content": ...}; paths are
  relative to the project root and use "/" (no absolute paths, no "..").
- "run": the shell command, run from the project root, that starts the server.
- "install": the shell command that installs dependencies, or null when there is nothing
  to install.
- "port_env": the environment variable the server reads its port from, or null.
- "health": the path of the health-check endpoint (for example "/health"), or null.
"""

REPAIR_PROMPT = """\
Your answer was rejected: {error}
Answer again with the complete project as one JSON object of the same shape, fixing that
problem."""


class ProjectFile(BaseModel):
    """One file of a generated project."""

    model_config = ConfigDict(extra="ignore")

    path: str
    content: str


class GeneratedProject(BaseModel):
    """The structured answer a model gives for one project."""

    model_config = ConfigDict(extra="ignore")

    files: list[ProjectFile] = Field(min_length=1)
    run: str = Field(min_length=1)
    install: str | None = None
    port_env: str | None = None
    health: str | None = None

    @field_validator("run")
    @classmethod
    def _run_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("install")
    @classmethod
    def _blank_install_is_none(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @field_validator("port_env")
    @classmethod
    def _port_env_is_a_name(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        value = value.lstrip("$")
        if not is_env_name(value):
            raise ValueError(f"not an environment variable name: {value!r}")
        if reserved_env_name(value):
            raise ValueError(f"{value!r} is reserved by the sandbox; use PORT")
        return value

    @field_validator("health")
    @classmethod
    def _health_is_a_path(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith("/"):
            raise ValueError(f"must be a path starting with '/', got {value!r}")
        return value


def response_format() -> dict[str, Any]:
    """The ``json_schema`` response format (strict-mode compatible) for the answer."""
    nullable = {"type": ["string", "null"]}
    schema = {
        "type": "object",
        "properties": {
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                    "required": ["path", "content"],
                    "additionalProperties": False,
                },
            },
            "run": {"type": "string"},
            "install": nullable,
            "port_env": nullable,
            "health": nullable,
        },
        "required": ["files", "run", "install", "port_env", "health"],
        "additionalProperties": False,
    }
    return {
        "type": "json_schema",
        "json_schema": {"name": "generated_project", "strict": True, "schema": schema},
    }
