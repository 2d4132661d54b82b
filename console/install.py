"""Infer a project's install step from its dependency files, as a platform would.

``package.json`` → ``npm ci`` with a lockfile, else ``npm install`` (``yarn`` / ``pnpm`` by
their lockfiles when the tool is on the PATH).  ``requirements.txt`` / ``pyproject.toml`` /
``Pipfile`` → a per-run virtual environment, :data:`VENV_DIR` in the run's copy of the
project, with the dependencies installed; the sandbox puts its ``bin`` first on the run's
``PATH``.  A server package the detected start needs (``gunicorn``, ``uvicorn``) is added
when the project does not list it.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Kind = Literal["python", "npm", "yarn", "pnpm"]
VENV_DIR = ".verdict-venv"
PYTHON_DEP_FILES = ("requirements.txt", "pyproject.toml", "Pipfile")
NODE_LOCKFILES: tuple[tuple[str, Kind], ...] = (
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
    ("yarn.lock", "yarn"),
    ("pnpm-lock.yaml", "pnpm"),
)
# A plain requirement: a name, extras, version specifiers and markers; no URL, path or option.
_PLAIN_REQUIREMENT = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,\s-]*\])?\s*([<>=!~][^;@]*)?(;[^@]*)?$"
)


@dataclass(frozen=True)
class InstallPlan:
    """One inferred install step: what runs in the sandbox and what the cache may restore."""

    kind: Kind
    command: str  # the step as it runs in the sandbox when nothing is restored
    source: str  # the file it was inferred from, relative to the project
    directory: str = "."  # where the dependency files live, relative to the project
    requirements: tuple[str, ...] = ()  # python: the plain requirements the cache can build
    cacheable: bool = False  # every dependency can be fetched without running project code
    why: str = ""
    lockfile: str | None = None
    added: tuple[str, ...] = field(default=())  # server packages added by detection


def _harness_pip() -> str:
    """pip as the harness runs it: the venv in the sandbox is created without pip (fast)."""
    return f"{shlex.quote(sys.executable)} -m pip --python {VENV_DIR}/bin/python"


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _requirement_name(line: str) -> str:
    return re.split(r"[\s\[<>=!~;]", line, maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements(path: Path) -> list[str] | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    project = data.get("project")
    if isinstance(project, dict) and isinstance(project.get("dependencies"), list):
        return [str(item) for item in project["dependencies"]]
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies")
    if isinstance(poetry, dict):
        return [_poetry_requirement(n, v) for n, v in poetry.items() if n.lower() != "python"]
    return None


def _poetry_requirement(name: str, value: object) -> str:
    version = value.get("version") if isinstance(value, dict) else value
    if not isinstance(version, str) or version in ("*", ""):
        return name
    if version.startswith("^"):  # ^1.2 → >=1.2 (the upper bound is left to the resolver)
        return f"{name}>={version[1:]}"
    return f"{name}{version}" if version[0] in "<>=!~" else f"{name}=={version}"


def _pipfile_requirements(path: Path) -> list[str] | None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    packages = data.get("packages")
    if not isinstance(packages, dict):
        return None
    return [_poetry_requirement(n, v if v != "*" else "") for n, v in packages.items()]


def python_plan(project: Path, directory: str, extra: tuple[str, ...]) -> InstallPlan | None:
    """The virtualenv install for the Python dependency file in ``project/directory``."""
    base = project / directory
    prefix = "" if directory == "." else f"{directory}/"
    pip = _harness_pip()
    venv = f"python3 -m venv --without-pip {VENV_DIR}"
    for name in PYTHON_DEP_FILES:
        path = base / name
        if not path.is_file():
            continue
        if name == "requirements.txt":
            lines = _lines(path)
            plain = [line for line in lines if _PLAIN_REQUIREMENT.match(line)]
            listed = {_requirement_name(line) for line in plain}
            added = tuple(p for p in extra if p not in listed)
            args = f"-r {shlex.quote(prefix + name)}" + "".join(f" {p}" for p in added)
            return InstallPlan(
                "python",
                f"{venv} && {pip} install --no-cache-dir --disable-pip-version-check {args}",
                prefix + name,
                directory,
                tuple(plain) + added,
                cacheable=len(plain) == len(lines),
                why="Python dependencies into a per-run virtual environment",
                added=added,
            )
        found = (
            _pyproject_requirements(path)
            if name == "pyproject.toml"
            else _pipfile_requirements(path)
        )
        if found is None:
            continue
        listed = {_requirement_name(line) for line in found}
        added = tuple(p for p in extra if p not in listed)
        requirements = tuple(found) + added
        quoted = " ".join(shlex.quote(r) for r in requirements)
        step = f" && {pip} install --no-cache-dir --disable-pip-version-check {quoted}"
        return InstallPlan(
            "python",
            venv + (step if requirements else ""),
            prefix + name,
            directory,
            requirements,
            cacheable=all(_PLAIN_REQUIREMENT.match(r) for r in requirements),
            why=f"the dependencies listed in {name} into a per-run virtual environment",
            added=added,
        )
    if extra:  # no dependency file, but the detected server must be there
        return InstallPlan(
            "python",
            f"{venv} && {pip} install --no-cache-dir --disable-pip-version-check "
            + " ".join(extra),
            "(detected start)",
            directory,
            extra,
            cacheable=True,
            why="the server the detected start needs, into a per-run virtual environment",
            added=extra,
        )
    return None


def _package_json(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def node_plan(project: Path, directory: str) -> InstallPlan | None:
    """The npm / yarn / pnpm install for ``project/directory/package.json``, if it has any
    dependencies (a package.json with none needs no install)."""
    base = project / directory
    data = _package_json(base / "package.json")
    if data is None:
        return None
    prefix = "" if directory == "." else f"{directory}/"
    cd = "" if directory == "." else f"cd {shlex.quote(directory)} && "
    lock = next(((n, tool) for n, tool in NODE_LOCKFILES if (base / n).is_file()), None)
    deps = any(data.get(k) for k in ("dependencies", "devDependencies", "optionalDependencies"))
    if not deps and lock is None:
        return None
    scripts = data.get("scripts")
    own_scripts = isinstance(scripts, dict) and any(
        k in scripts for k in ("preinstall", "install", "postinstall", "prepare")
    )
    flags = "--no-audit --no-fund"
    if lock is not None and lock[1] != "npm" and shutil.which(lock[1]):
        command = f"{lock[1]} install --frozen-lockfile"
        return InstallPlan(
            lock[1], cd + command, prefix + lock[0], directory, lockfile=lock[0],
            why=f"{lock[0]} is {lock[1]}'s lockfile and {lock[1]} is installed",
        )  # fmt: skip
    if lock is not None and lock[1] == "npm":
        return InstallPlan(
            "npm",
            f"{cd}npm ci {flags}",
            prefix + lock[0],
            directory,
            cacheable=not own_scripts,
            why=f"{lock[0]} pins every package (npm ci installs exactly that)",
            lockfile=lock[0],
        )
    note = "" if lock is None else f" ({lock[0]} found, but {lock[1]} is not installed)"
    return InstallPlan(
        "npm",
        f"{cd}npm install {flags}",
        prefix + "package.json",
        directory,
        cacheable=not own_scripts,
        why="package.json lists dependencies and there is no npm lockfile" + note,
    )


__all__ = ["VENV_DIR", "InstallPlan", "node_plan", "python_plan"]
