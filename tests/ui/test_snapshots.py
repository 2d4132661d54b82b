"""Snapshots of every screen at 80×24 and 120×36, on fixed data (no engine, fixed clock)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from console.app import ConsoleOptions, VerdictApp
from console.settings import Settings
from tests.support.console_data import T0, seed_console_db
from widgets.log_pane import LogPane

SIZES = [(80, 24), (120, 36)]


@pytest.fixture
def fixed_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VerdictApp:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    db_path = tmp_path / "fixed.db"
    seed_console_db(db_path).close()
    return VerdictApp(
        ConsoleOptions(
            settings=Settings(), db_path=db_path, run_engine=False, clock=lambda: T0 + 100
        )
    )


async def settled(pilot: Pilot[int]) -> None:
    """Let pending workers finish (the log measures its width in a thread) and redraw."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def log_loaded(pilot: Pilot[int]) -> None:
    """Wait until the selected run's stored log is on screen."""
    deadline = time.monotonic() + 10
    pane = pilot.app.screen.query_one(LogPane)
    while not pane.shown() and time.monotonic() < deadline:
        await pilot.pause(0.05)
    await settled(pilot)


def then(*keys: str) -> Callable[[Pilot[int]], Awaitable[None]]:
    async def run(pilot: Pilot[int]) -> None:
        await log_loaded(pilot)
        await pilot.press(*keys)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "loading" in str(
            pilot.app.screen.query("#detail-body").first().render()
            if pilot.app.screen.query("#detail-body")
            else ""
        ):
            await pilot.pause(0.05)
        await settled(pilot)

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dashboard(snap_compare: Callable[..., bool], fixed_app: VerdictApp, size: tuple) -> None:
    assert snap_compare(fixed_app, terminal_size=size, run_before=log_loaded)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_detail(snap_compare: Callable[..., bool], fixed_app: VerdictApp, size: tuple) -> None:
    assert snap_compare(fixed_app, terminal_size=size, run_before=then("enter"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare: Callable[..., bool], fixed_app: VerdictApp, size: tuple) -> None:
    assert snap_compare(fixed_app, terminal_size=size, run_before=then("question_mark"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_filtered_log(
    snap_compare: Callable[..., bool], fixed_app: VerdictApp, size: tuple
) -> None:
    assert snap_compare(
        fixed_app, terminal_size=size, run_before=then("slash", *"Error", "enter")
    )
