"""Work out how to install and start a project when no ``--run`` is given, as a platform would.

The start command is read from what the project already declares, first match wins:

1. ``verdict.toml`` (keys ``run``, ``install``, ``health``, ``port_env``; top level or ``[check]``)
2. ``Procfile`` ``web:``
3. ``render.yaml`` ``startCommand``, ``railway.toml`` / ``railway.json`` ``deploy.startCommand``,
   ``nixpacks.toml`` ``[start] cmd``, ``app.json`` ``scripts.web`` / ``scripts.start``
4. a ``Dockerfile``'s ``ENTRYPOINT`` + ``CMD`` (a hint: Docker is not used)
5. ``package.json`` ``scripts.start`` (``npm start``), else ``main`` (``node MAIN``)
6. Django's ``manage.py`` (``runserver 0.0.0.0:$PORT``)
7. a Python module: one that starts its own server runs as a script; a Flask or FastAPI app
   that never starts one gets ``gunicorn`` / ``uvicorn`` on ``$PORT``; app factories,
   packages and ``src/`` too (:mod:`console.detect_python`)
8. ``server.js`` / ``index.js`` / ``app.js`` (also under ``src/``)
9. a monorepo: the same, in ``backend/``, ``server/``, ``api/``, ``web/``, ``apps/*``,
   ``packages/*``, ``services/*``, with dependencies from the subdirectory or the root.

The install step is inferred from the dependency files (:mod:`console.install`) unless
``verdict.toml`` gives one.
"""

from __future__ import annotations

import json
import shlex
import shutil
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console import detect_declared as declared
from console.detect_python import detect_python_entry
from console.errors import UsageError
from console.install import PYTHON_DEP_FILES, VENV_DIR, InstallPlan, node_plan, python_plan

PYTHON_ENTRIES = ("app.py", "main.py", "server.py")
NODE_ENTRIES = ("server.js", "index.js", "app.js", "server.mjs", "index.mjs")
MONOREPO_DIRS = ("backend", "server", "api", "web", "app", "service")
MONOREPO_PARENTS = ("apps", "packages", "services")
LOOKED_FOR = (
    "verdict.toml, Procfile, render.yaml, railway.toml/json, nixpacks.toml, app.json,"
    " Dockerfile, package.json (scripts.start or main), manage.py, a Flask/FastAPI app or a"
    " server script (app.py, main.py, server.py, wsgi.py, a package, src/),"
    " server.js/index.js/app.js, and the same in backend/, server/, api/, apps/*, packages/*"
)

_DECLARED: tuple[tuple[str, Callable[[Path], str | None]], ...] = (
    ("Procfile", declared.from_procfile),
    ("render.yaml", declared.from_render_yaml),
    ("railway.toml", declared.from_railway),
    ("railway.json", declared.from_railway),
    ("nixpacks.toml", declared.from_nixpacks),
    ("app.json", declared.from_app_json),
    ("Dockerfile", declared.from_dockerfile),
)


@dataclass(frozen=True)
class Detection:
    """What was chosen to install and start a project, from which file, and why."""

    run: str
    source: str
    install: str | None = None
    health: str | None = None
    port_env: str | None = None
    why: str = ""
    install_source: str | None = None
    plans: tuple[InstallPlan, ...] = ()
    looked: tuple[str, ...] = ()  # what was looked at for the start, in order
    path_prepend: tuple[str, ...] = field(default=())  # relative to the project

    def explain(self) -> list[str]:
        """Lines for ``--explain-detect``: each choice, the file it came from and why."""
        lines = [f"start:   {self.run}", f"  from {self.source}: {self.why}"]
        if self.looked:
            lines.append(f"  looked at, in order: {', '.join(self.looked)}")
        if self.install:
            lines.append(f"install: {self.install}")
            if self.install_source == "verdict.toml":
                lines.append("  from verdict.toml")
            for plan in self.plans:
                lines.append(f"  from {plan.source}: {plan.why}")
                if plan.added:
                    lines.append(f"  added {', '.join(plan.added)}: the detected start needs it")
                cache = "restorable from the shared cache" if plan.cacheable else "not cacheable"
                lines.append(f"  {cache}")
        else:
            lines.append("install: none (no dependency file)")
        if self.path_prepend:
            lines.append(f"PATH:    {', '.join(self.path_prepend)} first")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The ``detection`` object of ``check --json``."""
        return {
            "run": self.run,
            "source": self.source,
            "why": self.why,
            "looked": list(self.looked),
            "install": self.install,
            "install_source": self.install_source,
            "install_steps": [
                {
                    "kind": p.kind,
                    "command": p.command,
                    "source": p.source,
                    "why": p.why,
                    "cacheable": p.cacheable,
                    "added": list(p.added),
                }
                for p in self.plans
            ],
            "path_prepend": list(self.path_prepend),
        }


@dataclass(frozen=True)
class _Start:
    run: str
    source: str
    why: str
    server_package: str | None = None
    toml: dict[str, str] = field(default_factory=dict)


def _verdict_toml(path: Path) -> dict[str, str] | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from exc
    section = data.get("check", data)  # keys may sit at the top or under [check]
    if not isinstance(section, dict):
        raise UsageError(f"{path}: 'check' must be a table ([check]), not {section!r}")
    keys = ("run", "install", "health", "port_env")
    found = {k: v for k in keys if isinstance(v := section.get(k), str) and v.strip()}
    return found if "run" in found else None


def _package_start(path: Path) -> _Start | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    scripts = data.get("scripts")
    if isinstance(scripts, dict) and isinstance(scripts.get("start"), str):
        return _Start("npm start", "package.json", f"scripts.start is {scripts['start']!r}")
    main = data.get("main")
    if isinstance(main, str) and (path.parent / main).is_file():
        return _Start(f"node {shlex.quote(main)}", "package.json", "main names the entry file")
    return None


def _find_start(project: Path, looked: list[str]) -> _Start | None:
    """Steps 1–8 of the module docstring, in ``project`` itself."""
    looked.append("verdict.toml")
    if (project / "verdict.toml").is_file():
        toml = _verdict_toml(project / "verdict.toml")
        if toml:
            return _Start(toml["run"], "verdict.toml", "run is set there", toml=toml)
    for name, reader in _DECLARED:
        looked.append(name)
        path = project / name
        command = reader(path) if path.is_file() else None
        if command:
            why = "a hint: Docker is not used" if name == "Dockerfile" else "the web start"
            return _Start(command, name, why)
    looked.append("package.json")
    if (project / "package.json").is_file():
        found = _package_start(project / "package.json")
        if found:
            return found
    looked.append("manage.py")
    if (project / "manage.py").is_file():
        return _Start(
            'python3 manage.py runserver "0.0.0.0:$PORT" --noreload',
            "manage.py",
            "a Django project: its development server on $PORT",
        )
    entry, python_looked = detect_python_entry(project)
    looked.extend(python_looked)
    if entry is not None:
        return _Start(entry.run, entry.source, entry.why, entry.server_package)
    for name in PYTHON_ENTRIES:  # an entry file that shows no server is still run as one
        if (project / name).is_file():
            return _Start(f"python3 {name}", name, "the usual entry file, run as a script")
    for prefix in ("", "src/"):
        for name in NODE_ENTRIES:
            looked.append(prefix + name)
            if (project / prefix / name).is_file():
                return _Start(f"node {prefix}{name}", prefix + name, "the usual Node entry file")
    return None


def _subprojects(project: Path) -> list[str]:
    found = [name for name in MONOREPO_DIRS if (project / name).is_dir()]
    for parent in MONOREPO_PARENTS:
        try:
            found += sorted(
                f"{parent}/{p.name}" for p in (project / parent).iterdir() if p.is_dir()
            )
        except OSError:
            continue
    return found


def _has_python_deps(project: Path, directory: str) -> bool:
    return any((project / directory / name).is_file() for name in PYTHON_DEP_FILES)


def _plans(project: Path, directory: str, start: _Start) -> list[InstallPlan]:
    """Install steps: a subdirectory's own dependency files first, else the root's."""
    extra = (start.server_package,) if start.server_package else ()
    plans: list[InstallPlan] = []
    where_python = next(
        (w for w in dict.fromkeys((directory, ".")) if _has_python_deps(project, w)), None
    )
    if where_python is not None or extra:
        plan = python_plan(project, where_python or ".", extra)
        if plan:
            plans.append(plan)
    for where in dict.fromkeys((directory, ".")):
        node = node_plan(project, where)
        if node:
            plans.append(node)
            break
    return plans


def _python_command(run: str, has_venv: bool) -> str:
    """``python`` is not on every PATH (Debian has only ``python3``); a venv has both."""
    if not has_venv and run.startswith("python ") and shutil.which("python") is None:
        return "python3 " + run[len("python ") :]
    return run


def detect_run(project: Path) -> Detection | None:
    """How to install and start ``project``, where each came from, or None.

    Raises:
        UsageError: ``verdict.toml`` is malformed.
    """
    looked: list[str] = []
    directory = "."
    start = _find_start(project, looked)
    if start is None:
        for sub in _subprojects(project):
            start = _find_start(project / sub, [])
            if start is not None:
                directory = sub
                looked.append(f"{sub}/ (a monorepo subdirectory)")
                start = _Start(
                    f"cd {shlex.quote(sub)} && {start.run}",
                    f"{sub}/{start.source}",
                    start.why,
                    start.server_package,
                    start.toml,
                )
                break
    if start is None:
        return None
    plans = _plans(project, directory, start)
    install = start.toml.get("install")
    install_source = "verdict.toml" if install else None
    if install is None and plans:
        install = " && ".join(plan.command for plan in plans)
        install_source = ", ".join(plan.source for plan in plans)
        if start.toml:
            install_source += " (verdict.toml gives no install)"
    has_venv = any(plan.kind == "python" for plan in plans) and install_source != "verdict.toml"
    return Detection(
        run=_python_command(start.run, has_venv),
        source=start.source,
        install=install,
        health=start.toml.get("health"),
        port_env=start.toml.get("port_env"),
        why=start.why,
        install_source=install_source,
        plans=tuple(plans) if install_source != "verdict.toml" else (),
        looked=tuple(looked),
        path_prepend=(f"{VENV_DIR}/bin",) if has_venv else (),
    )


__all__ = ["LOOKED_FOR", "Detection", "detect_run"]
