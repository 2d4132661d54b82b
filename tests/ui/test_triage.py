"""The triage half of the console, driven through Pilot on a seeded history: explain
(offline, streamed from the loopback endpoint, a hung endpoint), copy, history search,
a fingerprint's timeline, the attempt diff and stats checked against figures computed here."""

from __future__ import annotations

import base64
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

import console.explain.session as session
from console.app import ConsoleOptions, VerdictApp
from console.settings import ExplainSettings, LlmSettings, Settings
from tests.support.cli import db_rows, run_verdict
from tests.support.openai_server import OpenAIServer, chat_reply, hang_reply
from tests.support.triage_data import FP_IMPORT, HOUR, RUNS, T0, seed_triage_db

pytestmark = pytest.mark.timeout(60)

ANSWER = {
    "action": "Add the missing order_store module to the generated project",
    "reason": "app.py imports order_store, which the answer never included",
    "guide": "Ask the model for every imported module, or inline the store",
    "inference": "The generation was cut before the module was written",
    "confidence": 0.8,
}


@pytest.fixture
def seeded(db_path: Path) -> Path:
    seed_triage_db(db_path).close()
    return db_path


def make_app(db_path: Path, settings: Settings | None = None) -> VerdictApp:
    return VerdictApp(ConsoleOptions(settings=settings or Settings(), db_path=db_path,
                                     run_engine=False, clock=lambda: T0))


async def until(pilot: Pilot[int], condition: Callable[[], bool], within: float = 20) -> None:
    """Let the app run until ``condition`` holds (a deadline, never a fixed sleep)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await pilot.pause(0.02)


def screen_text(app: VerdictApp) -> str:
    """Every Static's content on the current screen, as plain text."""
    from rich.console import Console
    from textual.widgets import Static

    console = Console(width=200, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    for widget in app.screen.query(Static):
        console.print(widget.content)
    return console.export_text()


def explain_state(app: VerdictApp) -> Any:
    return app.screen.state  # type: ignore[attr-defined]


async def open_explain(pilot: Pilot[int], app: VerdictApp) -> None:
    """From the dashboard, ``e`` on the first cell (orders/v1/m1: latest r07, crashed)."""
    await until(pilot, lambda: app.screen.selected is not None)  # type: ignore[attr-defined]
    await pilot.press("e")
    await until(pilot, lambda: type(app.screen).__name__ == "ExplainScreen")
    await until(pilot, lambda: explain_state(app).preview is not None)
    await pilot.pause()


async def test_e_shows_the_preview_then_an_offline_answer_without_an_endpoint(
    seeded: Path,
) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_explain(pilot, app)
        state = explain_state(app)
        assert state.run_id == "r07"
        text = screen_text(app)
        assert "ModuleNotFoundError" in text and "redactions" in text
        assert "2 run(s); fixed by r02" in text  # r01 and r07 share it; r02 fixed it
        assert state.result is None  # nothing sent yet
        await pilot.press("e")
        await until(pilot, lambda: state.status == "done")
        assert state.result.source == "offline"
        await pilot.pause(0.1)
        assert state.result.explanation.action in screen_text(app)
    rows = db_rows(seeded, "SELECT source, run_id FROM explanations")
    assert rows == [("offline", "r07")]


async def test_the_answer_streams_from_the_endpoint_into_the_ledger(
    seeded: Path, openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, str]] = []
    real = session.partial_fields

    def spy(text: str) -> dict[str, str]:
        fields = real(text)
        seen.append(fields)
        return fields

    monkeypatch.setattr(session, "partial_fields", spy)
    openai_server.enqueue(chat_reply(json.dumps(ANSWER), chunk_size=6,
                                     prompt_tokens=321, completion_tokens=54))
    settings = Settings(db=seeded, llm=LlmSettings(base_url=openai_server.base_url,
                                                   model="test-model", api_key="sk-test",
                                                   timeout=10.0, max_retries=0))
    app = make_app(seeded, settings)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_explain(pilot, app)
        state = explain_state(app)
        await pilot.press("enter")
        await until(pilot, lambda: state.status == "done")
        assert state.result.source == "llm", state.result.error
        assert state.result.explanation.action == ANSWER["action"]
        assert "321→54 tokens" in state.call
        await pilot.pause(0.1)
        assert ANSWER["guide"] in screen_text(app)
    # The first words arrived before the object was complete.
    partial_actions = [f["action"] for f in seen if "action" in f]
    assert any(0 < len(a) < len(ANSWER["action"]) for a in partial_actions)
    assert openai_server.requests[0]["stream"] is True
    ledger = db_rows(seeded, "SELECT feature, sandbox, input_tokens, output_tokens, streamed"
                             " FROM llm_calls")
    assert ledger == [("explain", "r07", 321, 54, 1)]


async def test_a_hung_endpoint_ends_unavailable_and_the_console_keeps_answering(
    seeded: Path, openai_server: OpenAIServer
) -> None:
    openai_server.enqueue(hang_reply(30))
    settings = Settings(db=seeded, llm=LlmSettings(base_url=openai_server.base_url,
                                                   model="test-model", api_key="sk-test",
                                                   timeout=1.0, max_retries=0))
    app = make_app(seeded, settings)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_explain(pilot, app)
        state = explain_state(app)
        started = time.monotonic()
        await pilot.press("e")
        await until(pilot, lambda: state.status == "asking")
        await pilot.press("escape")  # leave while it waits: handled at once
        assert type(app.screen).__name__ == "Dashboard"
        assert state.status == "asking"
        await pilot.press("e")  # and come back to the same call
        await until(pilot, lambda: type(app.screen).__name__ == "ExplainScreen")
        assert app.screen.state is state  # type: ignore[attr-defined]
        await until(pilot, lambda: state.status == "done", within=10)
        assert time.monotonic() - started < 5
        assert state.result.source == "unavailable"
        assert "timeout" in (state.result.error or "")
        await pilot.pause(0.1)
        assert "unavailable" in screen_text(app)


async def test_y_copies_the_markdown_through_osc_52(seeded: Path) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_explain(pilot, app)
        await pilot.press("o")
        state = explain_state(app)
        await until(pilot, lambda: state.status == "done")
        written: list[str] = []
        driver = app._driver
        assert driver is not None
        real_write = driver.write
        driver.write = lambda data: (written.append(data), real_write(data))[1]  # type: ignore[method-assign]
        await pilot.press("y")
        await until(pilot, lambda: any("\x1b]52;c;" in w for w in written))
    sequence = next(w for w in written if "\x1b]52;c;" in w)
    payload = sequence.split("\x1b]52;c;", 1)[1].rstrip("\a").split("\a")[0]
    markdown = base64.b64decode(payload).decode()
    assert markdown.startswith("### ModuleNotFoundError: No module named 'order_store'")
    assert "run `r07`" in markdown and "`<module>` (app.py:5)" in markdown
    for field in ("Action", "Reason", "Guide", "Inference"):
        assert f"**{field}**" in markdown
    assert state.result.explanation.guide in markdown


async def test_history_finds_a_past_explanation_after_a_restart_with_no_network(
    seeded: Path,
) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_explain(pilot, app)
        await pilot.press("o")
        await until(pilot, lambda: explain_state(app).status == "done")
        guide = explain_state(app).result.explanation.guide
    word = max((w for w in guide.split() if w.isalpha()), key=len)
    again = make_app(seeded)  # a new console on the same file
    async with again.run_test(size=(120, 36)) as pilot:
        await pilot.press("H")
        await until(pilot, lambda: type(again.screen).__name__ == "HistoryScreen")
        await pilot.press("slash")
        await pilot.press(*word, "enter")
        screen: Any = again.screen
        await until(pilot, lambda: screen.query_text == word and screen.rows
                    and not screen.loading)
        kinds = {(row.kind, row.run_id) for row in screen.rows}
        assert ("explanation", "r07") in kinds
        assert all(r.kind == "explanation" for r in screen.rows)  # runs do not say it
        await pilot.press("enter")  # opens the stored answer at once
        await until(pilot, lambda: type(again.screen).__name__ == "ExplainScreen")
        await until(pilot, lambda: explain_state(again).result is not None)
        assert explain_state(again).result.source == "cached"


async def test_a_fingerprint_timeline_shows_the_fix_and_the_return(seeded: Path) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("H")
        await until(pilot, lambda: type(app.screen).__name__ == "HistoryScreen")
        await pilot.press("slash", *f"fp:{FP_IMPORT}", "enter")
        screen: Any = app.screen
        await until(pilot, lambda: screen.query_text and len(screen.rows) == 2)
        assert [r.run_id for r in screen.rows] == ["r07", "r01"]
        await pilot.press("t")
        await until(pilot, lambda: getattr(app.screen, "timeline", None) is not None)
        timeline = app.screen.timeline  # type: ignore[attr-defined]
        assert timeline.first_seen == T0
        assert timeline.fixed_at == T0 + 1 * HOUR  # r02, the rerun of r01, passed
        assert timeline.came_back
        assert [(e.kind, e.run_id) for e in timeline.events] == [
            ("seen", "r01"), ("fixed", "r02"), ("returned", "r07")]
        text = screen_text(app)
        assert "came back after the fix" in text and "rerun" in text


async def test_d_diffs_the_failing_and_the_passing_attempt(seeded: Path) -> None:
    app = make_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.screen.selected is not None)  # type: ignore[attr-defined]
        await pilot.press("d")
        await until(pilot, lambda: getattr(app.screen, "diff", None) is not None)
        diff = app.screen.diff  # type: ignore[attr-defined]
        assert (diff.a.run_id, diff.b.run_id) == ("r02", "r07")  # last pass, then the failure
        assert diff.changed_files == ["app.py"]
        assert "-from http.server import HTTPServer" in diff.diff
        assert "+from order_store import ORDERS" in diff.diff
        text = screen_text(app)
        assert "generated files: app.py" in text and "ModuleNotFoundError" in text


def expected_figures() -> dict[str, Any]:
    """The seed's figures, computed straight from RUNS (not through the project)."""
    ended = {r.run_id: T0 + r.hours * HOUR + 2.0 for r in RUNS}
    by_id = {r.run_id: r for r in RUNS}
    combos = {(r.spec, r.prompt, r.model) for r in RUNS}
    waits, failing, rescued = [], 0, 0
    for combo in combos:
        runs = sorted((r for r in RUNS if (r.spec, r.prompt, r.model) == combo),
                      key=lambda r: r.hours)
        fails = [r for r in runs if r.verdict.value != "pass"]
        if not fails:
            continue
        failing += 1
        passes = [r for r in runs if r.verdict.value == "pass" and r.hours > fails[0].hours]
        if passes:
            waits.append(ended[passes[0].run_id] - ended[fails[0].run_id])
        fail_ids = {r.run_id for r in fails}
        if any(r.rerun_of in fail_ids and r.verdict.value == "pass" for r in RUNS):
            rescued += 1
    fixed, back = 0, 0
    for fp in {r.fingerprint for r in RUNS if r.fingerprint}:
        hits = [r for r in RUNS if r.fingerprint == fp]
        hit_combos = {(r.spec, r.prompt, r.model) for r in hits}
        fixes = [r.hours for r in RUNS if r.verdict.value == "pass" and (
            (r.rerun_of and by_id[r.rerun_of].fingerprint == fp)
            or ((r.spec, r.prompt, r.model) in hit_combos
                and r.hours > min(h.hours for h in hits)))]
        if fixes:
            fixed += 1
            back += any(h.hours > min(fixes) for h in hits)
    rates = {}
    for model, prompt in {(r.model, r.prompt) for r in RUNS}:
        cell = [r for r in RUNS if (r.model, r.prompt) == (model, prompt)]
        rates[(model, prompt)] = sum(r.verdict.value == "pass" for r in cell) / len(cell)
    return {"time_to_fix": statistics.median(waits), "rescued": (rescued, failing),
            "regression": (back, fixed), "rates": rates}


async def test_stats_match_figures_computed_from_the_seed(seeded: Path) -> None:
    want = expected_figures()
    app = make_app(seeded)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("s")
        await until(pilot, lambda: getattr(app.screen, "report", None) is not None)
        report = app.screen.report  # type: ignore[attr-defined]
        text = screen_text(app)
    measures = report.measures
    assert measures["time_to_fix"].value == pytest.approx(want["time_to_fix"])
    assert (measures["rerun_rescue"].numerator, measures["rerun_rescue"].denominator) == \
        want["rescued"]
    assert (measures["regression"].numerator, measures["regression"].denominator) == \
        want["regression"]
    assert {(p.model, p.prompt): p.rate for p in report.pass_rates} == pytest.approx(
        want["rates"])
    assert "definition" in text and "median time from" in text  # definitions are shown
    assert "105m" in text  # the median wait, as shown
    top = {f.fingerprint: f for f in report.top_fingerprints}
    assert top[FP_IMPORT].count == 2 and top[FP_IMPORT].came_back
    # verdict stats --json prints the same figures
    done = run_verdict("stats", "--json", db=seeded)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["measures"]["time_to_fix"]["value"] == pytest.approx(want["time_to_fix"])
    assert printed["measures"]["regression"]["numerator"] == want["regression"][0]


def test_verdict_diff_and_stats_cli_conventions(seeded: Path) -> None:
    done = run_verdict("diff", "r02", "r07", "--json", db=seeded)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["changed_files"] == ["app.py"]
    missing = run_verdict("diff", "r02", "nope", db=seeded)
    assert missing.returncode == 2
    assert missing.stderr.strip().count("\n") == 0 and "nope" in missing.stderr
    bad = run_verdict("stats", "--since", "soon", db=seeded)
    assert bad.returncode == 2 and "--since" in bad.stderr


async def test_the_pane_answers_in_korean_when_set(seeded: Path) -> None:
    settings = Settings(explain=ExplainSettings(lang="ko"))
    app = make_app(seeded, settings)
    async with app.run_test(size=(120, 36)) as pilot:
        await open_explain(pilot, app)
        await pilot.press("o")
        state = explain_state(app)
        await until(pilot, lambda: state.status == "done")
        guide = state.result.explanation.guide
    assert any("\uac00" <= char <= "\ud7a3" for char in guide), guide  # Hangul syllables
    assert db_rows(seeded, "SELECT lang FROM explanations") == [("ko",)]
