"""SVGs of each console screen, taken from the demo matrix running for real.

Called by ``generate.py``; drives the app with Textual's Pilot at a fixed size.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

SIZE = (120, 36)


async def _until(pilot: object, condition: object, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the demo did not finish")
        await pilot.pause(0.1)  # type: ignore[attr-defined]


async def shoot(matrix_path: Path, db_path: Path, out: Path, size: tuple[int, int] = SIZE) -> None:
    """Run the demo matrix in the console and save one SVG per screen into ``out``."""
    from console.app import ConsoleOptions, VerdictApp
    from console.matrix import load_matrix
    from console.model import Combination
    from console.settings import load_settings
    from widgets.log_pane import LogPane
    from widgets.verdict_matrix import VerdictMatrix

    matrix = load_matrix(matrix_path)
    app = VerdictApp(
        ConsoleOptions(settings=load_settings(), db_path=db_path, matrix=matrix, slots=4)
    )
    suffix = f"-{size[0]}x{size[1]}" if size != SIZE else ""
    async with app.run_test(size=size) as pilot:
        cells = app.screen.query_one(VerdictMatrix).cells
        total = len(matrix.combinations())
        await _until(
            pilot, lambda: len(cells) == total and all(c.status == "done" for c in cells.values())
        )
        failing = Combination(spec="orders-api", prompt="v1", model="gpt-4o-mini")
        app.screen.query_one(VerdictMatrix).select(failing)
        pane = app.screen.query_one(LogPane)
        await _until(pilot, lambda: bool(pane.shown()))
        await pilot.pause(0.3)
        app.save_screenshot(str(out / f"console-dashboard{suffix}.svg"))
        await pilot.press("enter")
        await pilot.pause(1.0)
        app.save_screenshot(str(out / f"console-run{suffix}.svg"))
        await pilot.press("escape", "question_mark")
        await pilot.pause(0.3)
        app.save_screenshot(str(out / f"console-help{suffix}.svg"))
        await pilot.press("escape", "q")
        if type(app.screen).__name__ == "ConfirmQuit":
            await pilot.press("y")
    for name in ("dashboard", "run", "help"):
        print(f"wrote {out / f'console-{name}{suffix}.svg'}")


def main(matrix_path: Path, db_path: Path, out: Path) -> None:
    """Both sizes the console is made for."""
    asyncio.run(shoot(matrix_path, db_path, out, SIZE))
    asyncio.run(shoot(matrix_path, db_path.with_name("small.db"), out, (80, 24)))
