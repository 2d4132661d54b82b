"""Snapshots of the triage screens at 80×24 and 120×36, on the fixed triage history."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from console.app import ConsoleOptions, VerdictApp
from console.settings import Settings
from tests.support.triage_data import FP_IMPORT, T0, seed_triage_db

SIZES = [(80, 24), (120, 36)]


@pytest.fixture
def triage_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VerdictApp:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    db_path = tmp_path / "triage.db"
    seed_triage_db(db_path).close()
    return VerdictApp(ConsoleOptions(settings=Settings(), db_path=db_path, run_engine=False,
                                     clock=lambda: T0))


def after(keys: tuple[str, ...], ready: Callable[[Any], bool]) -> Callable[
        [Pilot[int]], Awaitable[None]]:
    """Press ``keys`` on the dashboard, then wait until ``ready(screen)`` holds."""

    async def run(pilot: Pilot[int]) -> None:
        deadline = time.monotonic() + 10
        while getattr(pilot.app.screen, "selected", "") is None:  # the dashboard's first cell
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        await pilot.press(*keys)
        while not ready(pilot.app.screen):
            assert time.monotonic() < deadline, "the screen never got ready"
            await pilot.pause(0.05)
        await pilot.pause()

    return run


SCREENS: dict[str, tuple[tuple[str, ...], Callable[[Any], bool]]] = {
    "explain": (("e",), lambda s: getattr(s, "state", None) is not None
                and s.state.preview is not None and s._drawn == s.state.version),
    "history": (("H",), lambda s: bool(getattr(s, "rows", None))),
    "timeline": (("H", "slash", *f"fp:{FP_IMPORT}", "enter"),
                 lambda s: len(getattr(s, "rows", [])) == 2),  # then t, below
    "diff": (("d",), lambda s: getattr(s, "diff", None) is not None),
    "stats": (("s",), lambda s: getattr(s, "report", None) is not None),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", sorted(SCREENS))
def test_triage_screen(snap_compare: Callable[..., bool], triage_app: VerdictApp, name: str,
                       size: tuple[int, int]) -> None:
    keys, ready = SCREENS[name]
    run_before = after(keys, ready)
    if name == "timeline":  # t once the search has found the fingerprint's runs
        first, then = run_before, after(("t",), lambda s: getattr(s, "timeline", None))

        async def run_before(pilot: Pilot[int]) -> None:
            await first(pilot)
            await then(pilot)

    assert snap_compare(triage_app, terminal_size=size, run_before=run_before)
