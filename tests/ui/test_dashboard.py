"""The console driven through Textual's Pilot, on real runs (local sandboxes)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from textual.pilot import Pilot

from console.app import ConsoleOptions, VerdictApp
from console.matrix import load_matrix
from console.model import Combination
from console.settings import Settings
from storage import jobs as job_store
from storage.db import Database
from tests.support.cli import VERDICT
from widgets.log_pane import LogPane
from widgets.verdict_matrix import VerdictMatrix

FIXTURES = Path(__file__).parent.parent / "fixtures" / "queue"
QUICK = FIXTURES / "quick.toml"

pytestmark = pytest.mark.timeout(120)


def make_app(db_path: Path, matrix: Path | None = None, **kwargs: object) -> VerdictApp:
    return VerdictApp(
        ConsoleOptions(
            settings=Settings(),
            db_path=db_path,
            matrix=load_matrix(matrix) if matrix else None,
            slots=4,
            **kwargs,  # type: ignore[arg-type]
        )
    )


async def until(pilot: Pilot[int], condition: Callable[[], bool], within: float = 60) -> None:
    """Let the app run until ``condition`` holds (a deadline, never a fixed sleep)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await pilot.pause(0.05)


async def quit_app(pilot: Pilot[int], app: VerdictApp) -> None:
    """Quit as a user would (answering the question if one is asked)."""
    await pilot.press("q")
    if type(app.screen).__name__ == "ConfirmQuit":
        await pilot.press("y")
    await until(pilot, lambda: not app.is_running, within=30)


def cell_text(app: VerdictApp, spec: str, prompt: str, model: str) -> str:
    matrix = app.screen.query_one(VerdictMatrix)
    return matrix.cell_text(Combination(spec=spec, prompt=prompt, model=model))


def all_done(app: VerdictApp, count: int) -> bool:
    cells = app.screen.query_one(VerdictMatrix).cells
    return len(cells) == count and all(c.status == "done" for c in cells.values())


async def test_the_matrix_fills_in_from_events(db_path: Path) -> None:
    app = make_app(db_path, QUICK)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: all_done(app, 4))
        assert cell_text(app, "quick", "v1", "m1") == "✓ pass"
        assert cell_text(app, "quick", "v1", "m2") == "✓ pass"
        assert cell_text(app, "quick", "v2", "m1") == "✗ crashed"
        assert cell_text(app, "quick", "v2", "m2") == "✗ gen fail"
        await quit_app(pilot, app)


async def test_r_reruns_the_selected_cell_as_a_new_attempt(db_path: Path) -> None:
    app = make_app(db_path, QUICK)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: all_done(app, 4))
        matrix = app.screen.query_one(VerdictMatrix)
        crashed = Combination(spec="quick", prompt="v2", model="m1")
        matrix.select(crashed)
        await pilot.pause()
        old_run = app.live.cells[crashed.key].run_id
        await pilot.press("r")
        await until(pilot, lambda: matrix.cells[crashed.key].attempt == 2)
        await until(pilot, lambda: matrix.cells[crashed.key].status == "done")
        assert cell_text(app, "quick", "v2", "m1") == "✗ crashed ×2"
        await quit_app(pilot, app)
    db = Database(db_path)
    record = job_store.unfinished(db, crashed.key) or job_store.jobs_by_id(
        db, [app.live.cells[crashed.key].job_id or ""]
    )[0]
    assert record.job.attempt == 2 and record.job.rerun_of == old_run
    db.close()


async def test_R_fans_out_and_stars_the_cells_that_pass(db_path: Path) -> None:
    app = make_app(db_path, QUICK)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: all_done(app, 4))
        matrix = app.screen.query_one(VerdictMatrix)
        matrix.select(Combination(spec="quick", prompt="v2", model="m1"))
        await pilot.pause()
        await pilot.press("R")
        others = ["quick/v1/m1", "quick/v1/m2", "quick/v2/m2"]
        await until(pilot, lambda: all(matrix.cells[k].attempt == 2 for k in others))
        await until(pilot, lambda: all(matrix.cells[k].status == "done" for k in others))
        assert cell_text(app, "quick", "v1", "m1") == "✓ pass ×2 ★"
        assert cell_text(app, "quick", "v1", "m2") == "✓ pass ×2 ★"
        assert "★" not in cell_text(app, "quick", "v2", "m2")
        assert matrix.cells["quick/v2/m1"].attempt == 1  # the origin is not rerun
        await quit_app(pilot, app)


async def test_filter_hides_lines_and_follow_toggles(db_path: Path) -> None:
    app = make_app(db_path, QUICK)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: all_done(app, 4))
        crashed = Combination(spec="quick", prompt="v2", model="m1")
        app.screen.query_one(VerdictMatrix).select(crashed)
        pane = app.screen.query_one(LogPane)
        await until(pilot, lambda: any("Traceback" in line for line in pane.shown()))
        everything = pane.shown()
        await pilot.press("slash")
        await pilot.press(*"Error")
        await pilot.press("enter")
        shown = pane.shown()
        assert shown and len(shown) < len(everything)
        assert all("error" in line.lower() for line in shown)
        await pilot.press("escape")
        assert pane.shown() == everything
        assert pane.auto_scroll
        await pilot.press("f")
        assert not pane.auto_scroll
        await pilot.press("f")
        assert pane.auto_scroll
        await quit_app(pilot, app)


async def test_a_run_started_by_another_process_appears_live(db_path: Path) -> None:
    Database(db_path).close()
    app = make_app(db_path)  # attached, no matrix of its own
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.ready.is_set())
        assert not app.screen.query_one(VerdictMatrix).cells
        other = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for off the loop
            [*VERDICT, "--db", str(db_path), "run", str(QUICK)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await until(pilot, lambda: all_done(app, 4), within=90)
        finally:
            await asyncio.to_thread(other.wait, 60)
        assert cell_text(app, "quick", "v1", "m1") == "✓ pass"
        await quit_app(pilot, app)


async def test_state_survives_a_restart(db_path: Path) -> None:
    first = make_app(db_path, QUICK)
    async with first.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: all_done(first, 4))
        before = {k: str(v) for k, v in first.screen.query_one(VerdictMatrix).cells.items()}
        await quit_app(pilot, first)
    second = make_app(db_path)
    async with second.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: len(second.screen.query_one(VerdictMatrix).cells) == 4)
        after = {k: str(v) for k, v in second.screen.query_one(VerdictMatrix).cells.items()}
        await quit_app(pilot, second)
    assert after == before


async def test_quit_while_running_asks_once_and_leaves_no_process(db_path: Path) -> None:
    app = make_app(db_path, FIXTURES / "slow.toml")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: any(b.pid for b in app.live.sandboxes.values()))
        (box,) = app.live.sandboxes.values()
        assert box.pid is not None
        tree = [psutil.Process(box.pid), *psutil.Process(box.pid).children(recursive=True)]
        await pilot.press("q")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmQuit")
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, within=30)
    alive = [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    db = Database(db_path)
    (record,) = job_store.jobs_by_id(db, [j.job_id for j in load_matrix(
        FIXTURES / "slow.toml").jobs()])
    assert record.state == job_store.QUEUED  # the job stays queued for the next start
    db.close()
