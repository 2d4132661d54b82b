"""The engine and storage never import Textual or the widgets (they run in workers and CI)."""

from __future__ import annotations

import subprocess
import sys

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
