"""``verdict.toml`` in a project: how to run it (run, install, health, port_env).

The same file and keys are read when a project is checked on its own, so a generated
project stays reproducible with ``verdict check DIR``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

PROJECT_FILE = "verdict.toml"
KEYS = ("run", "install", "health", "port_env")


class ProjectFileError(ValueError):
    """``verdict.toml`` is not valid (one-line message)."""


def read_project_toml(project_dir: Path) -> dict[str, str]:
    """The run/install/health/port_env values a project's ``verdict.toml`` gives (may be {})."""
    file = project_dir / PROJECT_FILE
    if not file.is_file():
        return {}
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProjectFileError(f"{PROJECT_FILE}: not valid TOML: {exc}") from exc
    values: dict[str, str] = {}
    for key in KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ProjectFileError(f"{PROJECT_FILE}: {key}: must be a non-empty string")
        if key == "port_env":
            from console.sandbox.base import usable_port_env

            if not usable_port_env(value):
                raise ProjectFileError(
                    f"{PROJECT_FILE}: port_env: {value!r} is not a usable variable name"
                )
        if key == "health" and not value.startswith("/"):
            raise ProjectFileError(f"{PROJECT_FILE}: health: must be a path starting with '/'")
        values[key] = value
    return values


def write_project_toml(project_dir: Path, values: dict[str, str | None]) -> None:
    """Write the given keys (``None`` values are left out) as ``verdict.toml``."""
    lines = ["# How to run this project (written by the generator)."]
    for key in KEYS:
        value = values.get(key)
        if value is not None:
            # A JSON string is a valid TOML basic string.
            lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    (project_dir / PROJECT_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
