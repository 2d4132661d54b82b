"""Work out how to run a project when no ``--run`` is given.

Looked for in this order: ``verdict.toml`` (keys ``run``, ``install``, ``health``,
``port_env``), a ``package.json`` start script, Django's ``manage.py``, then the usual
entry files ``app.py`` / ``main.py`` / ``server.py`` and ``server.js`` / ``index.js`` /
``app.js``.
"""

from __future__ import annotations

import json
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

from console.errors import UsageError

PYTHON_ENTRIES = ("app.py", "main.py", "server.py")
NODE_ENTRIES = ("server.js", "index.js", "app.js")


@dataclass(frozen=True)
class Detection:
    """What was chosen and why (shown to the user)."""

    run: str
    source: str
    install: str | None = None
    health: str | None = None
    port_env: str | None = None


def _from_verdict_toml(path: Path) -> Detection | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    section = data.get("check", data)  # keys may sit at the top or under [check]
    if not isinstance(section, dict):
        raise UsageError(f"{path}: 'check' must be a table ([check]), not {section!r}")
    run = section.get("run")
    if not isinstance(run, str) or not run.strip():
        return None

    def text(key: str) -> str | None:
        value = section.get(key)
        return value if isinstance(value, str) and value.strip() else None

    return Detection(
        run=run,
        source="verdict.toml",
        install=text("install"),
        health=text("health"),
        port_env=text("port_env"),
    )


def _from_package_json(path: Path) -> Detection | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    scripts = data.get("scripts") if isinstance(data, dict) else None
    if isinstance(scripts, dict) and isinstance(scripts.get("start"), str):
        return Detection(run="npm start", source="package.json scripts.start")
    main = data.get("main") if isinstance(data, dict) else None
    if isinstance(main, str) and (path.parent / main).is_file():
        return Detection(run=f"node {shlex.quote(main)}", source="package.json main")
    return None


def detect_run(project: Path) -> Detection | None:
    """The command to run ``project`` and where it came from, or None."""
    toml = project / "verdict.toml"
    if toml.is_file():
        found = _from_verdict_toml(toml)
        if found:
            return found
    package = project / "package.json"
    if package.is_file():
        found = _from_package_json(package)
        if found:
            return found
    if (project / "manage.py").is_file():
        return Detection(
            run='python3 manage.py runserver "0.0.0.0:$PORT" --noreload', source="manage.py"
        )
    for name in PYTHON_ENTRIES:
        if (project / name).is_file():
            return Detection(run=f"python3 {name}", source=name)
    for name in NODE_ENTRIES:
        if (project / name).is_file():
            return Detection(run=f"node {name}", source=name)
    return None
