"""Start commands that projects already declare for a platform.

Each reader returns the command (or None) and never raises on a malformed file: a project
under test is hostile, and a broken ``render.yaml`` only means that hint is not used.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

_MAX_READ = 256 * 1024


def _text(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return handle.read(_MAX_READ).decode("utf-8", errors="replace")
    except OSError:
        return None


def _string(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def from_procfile(path: Path) -> str | None:
    """The ``web:`` process of a Procfile (Heroku, Dokku, Scalingo)."""
    text = _text(path)
    for line in (text or "").splitlines():
        kind, sep, command = line.partition(":")
        if sep and kind.strip() == "web":
            return _string(command)
    return None


def from_render_yaml(path: Path) -> str | None:
    """``startCommand`` of the first web service of a Render blueprint."""
    import yaml

    try:
        data: Any = yaml.safe_load(_text(path) or "")
    except yaml.YAMLError:
        return None
    services = data.get("services") if isinstance(data, dict) else None
    for service in services if isinstance(services, list) else []:
        if isinstance(service, dict) and service.get("type", "web") == "web":
            found = _string(service.get("startCommand"))
            if found:
                return found
    return None


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(_text(path) or "")
    except tomllib.TOMLDecodeError:
        return {}


def from_railway(path: Path) -> str | None:
    """``deploy.startCommand`` of ``railway.toml`` / ``railway.json``."""
    if path.suffix == ".json":
        try:
            data: Any = json.loads(_text(path) or "")
        except json.JSONDecodeError:
            return None
    else:
        data = _toml(path)
    deploy = data.get("deploy") if isinstance(data, dict) else None
    return _string(deploy.get("startCommand")) if isinstance(deploy, dict) else None


def from_nixpacks(path: Path) -> str | None:
    """``[start] cmd`` of ``nixpacks.toml``."""
    start = _toml(path).get("start")
    return _string(start.get("cmd")) if isinstance(start, dict) else None


def from_app_json(path: Path) -> str | None:
    """A web start in an ``app.json`` manifest (``scripts.web``, ``scripts.start``, or the
    ``formation.web.command`` some manifests carry)."""
    try:
        data: Any = json.loads(_text(path) or "")
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    scripts = data.get("scripts")
    if isinstance(scripts, dict):
        for key in ("web", "start"):
            found = _string(scripts.get(key))
            if found:
                return found
    formation = data.get("formation")
    web = formation.get("web") if isinstance(formation, dict) else None
    return _string(web.get("command")) if isinstance(web, dict) else None


def _instruction(value: str) -> list[str] | None:
    value = value.strip()
    if value.startswith("["):
        try:
            parts = json.loads(value)
        except json.JSONDecodeError:
            return None
        return [str(p) for p in parts] if isinstance(parts, list) else None
    return ["sh", "-c", value] if value else None


def from_dockerfile(path: Path) -> str | None:
    """The last ``ENTRYPOINT`` + ``CMD`` of a Dockerfile, read as a hint (no Docker): paths
    under its ``WORKDIR`` are made relative, and a shell form is kept as written."""
    text = _text(path)
    if text is None:
        return None
    joined = re.sub(r"\\\r?\n", " ", text)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    workdir = ""
    for line in joined.splitlines():
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "WORKDIR":
            workdir = rest.strip().rstrip("/")
        elif keyword == "ENTRYPOINT":
            entrypoint = _instruction(rest)
        elif keyword == "CMD":
            cmd = _instruction(rest)
    argv = (entrypoint or []) + (cmd or [])
    if not argv:
        return None
    if argv[:2] == ["sh", "-c"] and len(argv) >= 3:
        command = " ".join(argv[2:])
    else:
        command = shlex.join(argv)
    if workdir:
        command = command.replace(workdir + "/", "")
    return command


__all__ = [
    "from_app_json",
    "from_dockerfile",
    "from_nixpacks",
    "from_procfile",
    "from_railway",
    "from_render_yaml",
]
