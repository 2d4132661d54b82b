"""Regenerate the README's screenshots from real command output.

Runs the bundled example in a throw-away data directory and renders what the terminal
showed as SVG::

    .venv/bin/python screenshots/generate.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent
WIDTH = 100


def _verdict(args: list[str], env: dict[str, str], *, stderr: bool = True) -> str:
    """The command's output as a terminal shows it (stderr notes come first here)."""
    proc = subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return (proc.stderr if stderr else "") + proc.stdout


def _save(name: str, title: str, sessions: list[tuple[str, str]]) -> None:
    console = Console(record=True, width=WIDTH, force_terminal=True, file=open(os.devnull, "w"))
    for command, output in sessions:
        console.print(Text("$ " + command, style="bold green"))
        console.print(Text.from_ansi(output.rstrip("\n")))
    console.save_svg(str(OUT / name), title=title)
    print(f"wrote {OUT / name}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "XDG_DATA_HOME": str(Path(tmp) / "data"),
            "XDG_CONFIG_HOME": str(Path(tmp) / "config"),
            "VERDICT_DB": str(Path(tmp) / "verdict.db"),
            "FORCE_COLOR": "1",
            "COLUMNS": str(WIDTH),
        }
        for name in ("VERDICT_LLM_BASE_URL", "VERDICT_LLM_MODEL"):
            env.pop(name, None)
        os.environ.update({k: env[k] for k in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")})
        sys.path.insert(0, str(OUT))
        from console_shots import main as console_main

        console_main(ROOT / "examples" / "shop.toml", Path(tmp) / "console.db", OUT)
        run_out = _verdict(["run", "examples/shop.toml"], env, stderr=False)
        _save("run.svg", "verdict run", [("verdict run examples/shop.toml", run_out)])

        project = "examples/replays/orders-api/v1/gpt-4o-mini"
        check_out = _verdict(["check", project], env)
        history = json.loads(_verdict(["history", "--limit", "1", "--json"], env, stderr=False))
        run_id = history[0]["run_id"]
        explain_out = _verdict(["explain", run_id], env)
        _save(
            "check-explain.svg",
            "verdict check / verdict explain",
            [(f"verdict check {project}", check_out), (f"verdict explain {run_id}", explain_out)],
        )


if __name__ == "__main__":
    main()
