"""The engine and storage never import Textual or the widgets (they run in workers and CI)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ENGINE_MODULES = [
    "console.model",
    "console.settings",
    "console.cli",
    "storage.db",
]


def test_engine_does_not_import_textual() -> None:
    code = (
        "import importlib, pkgutil, sys, console, storage\n"
        "skip = {'console.app', 'console.screens'}\n"
        "for pkg in (console, storage):\n"
        "    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "        if not any(info.name == s or info.name.startswith(s + '.') for s in skip):\n"
        "            importlib.import_module(info.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'widgets'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, contextlib, io\n"
        "from console.cli import build_parser\n"
        "build_parser()\n"
        "heavy = ('textual', 'langchain_openai', 'aiokafka', 'kubernetes', 'openai')\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _imports_of(path: Path) -> set[str]:
    """Every module a file imports (top level and inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


ROOT = Path(__file__).resolve().parents[2]
OURS = ("console", "storage", "widgets")


@pytest.mark.parametrize("package", ["storage", "widgets"])
def test_storage_and_widgets_import_only_the_model_of_ours(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in _imports_of(path):
            top = module.split(".")[0]
            if top in OURS and top != package and module != "console.model":
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_the_engine_never_imports_textual_or_widgets_even_lazily() -> None:
    ui = {"app.py", "screens", "cli.py", "commands"}
    offenders = []
    for path in sorted((ROOT / "console").rglob("*.py")):
        if path.relative_to(ROOT / "console").parts[0] in ui:
            continue
        for module in _imports_of(path):
            if module.split(".")[0] in ("textual", "widgets"):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []
