"""Find how a Python web project starts when it does not say so itself.

A module that starts its own server (``app.run()``, ``uvicorn.run()``, ``serve_forever()``
…) is run as a script.  A module that only *exposes* an app (``app = Flask(__name__)``,
``api = FastAPI()``, ``def create_app()``) gets the server a platform would give it:
``gunicorn`` for WSGI (Flask), ``uvicorn`` for ASGI (FastAPI), bound to ``$PORT``.  Entries
are looked for at the top level, in a package (``app/__init__.py``, ``app/main.py``) and
under ``src/``.  Files are read as text, never imported: the project is hostile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ENTRY_FILES = ("app.py", "main.py", "server.py", "wsgi.py", "asgi.py", "application.py", "run.py")
PACKAGE_ENTRIES = ("__init__.py", "main.py", "app.py", "server.py", "wsgi.py", "asgi.py")
PACKAGE_NAMES = ("app", "api", "server", "backend", "web")
_MAX_READ = 256 * 1024  # an entry file bigger than this is not a small web app's entry

_MAIN_GUARD = re.compile(r"""^if\s+__name__\s*==\s*['"]__main__['"]\s*:""", re.M)
_SELF_SERVING = re.compile(
    r"\b(?:app|application|api|server|httpd|srv)?\.?(?:run|serve_forever|run_app|serve)\s*\("
    r"|\buvicorn\.run\s*\(|\bweb\.run_app\s*\(|\bwaitress\.serve\s*\("
)
_TOP_LEVEL_SERVE = re.compile(r"^\S.*\.serve_forever\s*\(", re.M)
_APP_OBJECT = re.compile(
    r"^(?P<name>[A-Za-z_]\w*)\s*(?::[^=]+)?=\s*(?P<kind>Flask|FastAPI)\s*\(", re.M
)
_FACTORY = re.compile(r"^def\s+(?P<name>create_app|make_app|app_factory)\s*\(", re.M)


@dataclass(frozen=True)
class PythonEntry:
    """A start command for a Python module and the server package it needs."""

    run: str
    source: str
    why: str
    server_package: str | None = None  # installed when the project does not list it


def _read(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(_MAX_READ).decode("utf-8", errors="replace")
    except OSError:
        return ""


def _framework(text: str) -> str | None:
    if re.search(r"^\s*(from\s+fastapi\s+import|import\s+fastapi)", text, re.M):
        return "fastapi"
    if re.search(r"^\s*(from\s+flask\s+import|import\s+flask)", text, re.M):
        return "flask"
    return None


def _served(module: str, attr: str, framework: str, *, factory: bool, chdir: str | None) -> str:
    if framework == "fastapi":
        where = f" --app-dir {chdir}" if chdir else ""
        flag = " --factory" if factory else ""
        return f'uvicorn{flag}{where} {module}:{attr} --host 0.0.0.0 --port "$PORT"'
    where = f" --chdir {chdir}" if chdir else ""
    target = f"'{module}:{attr}()'" if factory else f"{module}:{attr}"
    return f'gunicorn{where} --bind "0.0.0.0:$PORT" {target}'


def entry_for_module(path: Path, module: str, shown: str, chdir: str | None) -> PythonEntry | None:
    """How to start the module at ``path`` (importable as ``module``), or None."""
    text = _read(path)
    if not text:
        return None
    guard = _MAIN_GUARD.search(text)
    if (guard and _SELF_SERVING.search(text, guard.end())) or _TOP_LEVEL_SERVE.search(text):
        script = shown if chdir is None else f"{chdir}/{shown}"
        if path.name == "__init__.py":
            return None  # a package's __init__ is imported, not run
        return PythonEntry(f"python3 {script}", shown, "starts its own server when run")
    framework = _framework(text)
    if framework is None:
        return None
    package = "uvicorn" if framework == "fastapi" else "gunicorn"
    label = "FastAPI" if framework == "fastapi" else "Flask"
    found = _APP_OBJECT.search(text)
    if found and found.group("kind").lower() == framework:
        name = found.group("name")
        return PythonEntry(
            _served(module, name, framework, factory=False, chdir=chdir),
            shown,
            f"defines the {label} app {name!r} but never starts a server",
            package,
        )
    factory = _FACTORY.search(text)
    if factory:
        name = factory.group("name")
        return PythonEntry(
            _served(module, name, framework, factory=True, chdir=chdir),
            shown,
            f"defines the {label} app factory {name}()",
            package,
        )
    return None


def _candidates(root: Path, prefix: str | None) -> list[tuple[Path, str, str]]:
    """(file, module, shown name) in the order a reader of the project would try them."""
    found: list[tuple[Path, str, str]] = []
    for name in ENTRY_FILES:
        found.append((root / name, name[:-3], name))
    # Packages only (with __init__.py): a plain directory is a monorepo's subproject, whose
    # modules import each other as top-level names and so must start from inside it.
    with_init = sorted(p for p in _children(root) if (p / "__init__.py").is_file())
    packages = [root / name for name in PACKAGE_NAMES if root / name in with_init]
    packages += [p for p in with_init if p not in packages]
    for package in packages:
        for entry in PACKAGE_ENTRIES:
            module = package.name if entry == "__init__.py" else f"{package.name}.{entry[:-3]}"
            found.append((package / entry, module, f"{package.name}/{entry}"))
    return [item for item in found if item[0].is_file()]


def _children(root: Path) -> list[Path]:
    try:
        return [p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
    except OSError:
        return []


def detect_python_entry(project: Path) -> tuple[PythonEntry | None, list[str]]:
    """The entry of a Python web project and the files that were looked at."""
    looked: list[str] = []
    for root, chdir in ((project, None), (project / "src", "src")):
        if not root.is_dir():
            continue
        for path, module, shown in _candidates(root, chdir):
            label = shown if chdir is None else f"{chdir}/{shown}"
            looked.append(label)
            entry = entry_for_module(path, module, shown, chdir)
            if entry is not None:
                return (
                    PythonEntry(entry.run, label, entry.why, entry.server_package),
                    looked,
                )
    return None, looked


__all__ = ["PythonEntry", "detect_python_entry", "entry_for_module"]
