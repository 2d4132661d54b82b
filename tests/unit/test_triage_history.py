"""History reads without Textual: the run index follows the runs, pages never repeat or
skip a row, filters and dates, partial answers, the Markdown of an explanation."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.engine.history import Cursor, history_page, parse_history_query
from console.errors import UsageError
from console.explain.explainer import AppFrame, ExplainResult
from console.explain.session import partial_fields, to_markdown
from console.model import Explanation
from storage.db import Database
from storage.explanations import StoredExplanation, insert_explanation
from storage.history import HistoryQuery
from tests.support.triage_data import RUNS, T0, seed_triage_db


@pytest.fixture
def seeded(tmp_path: Path) -> Database:
    return seed_triage_db(tmp_path / "h.db")


def texts(db: Database, text: str) -> set[str]:
    page = history_page(db, parse_history_query(text), limit=100)
    return {row.key for row in page.rows if row.kind == "run"}


def test_the_index_follows_verdicts_and_failures(seeded: Database) -> None:
    assert texts(seeded, "order_store") == {"r01", "r07"}  # the failure's message
    assert texts(seeded, "unhealthy") == {"r05", "r06"}  # the verdict
    assert texts(seeded, "shop m2") == {"r09", "r10"}  # the combination
    with seeded.write() as db:
        db.execute("UPDATE runs SET reason = 'disk quota exceeded' WHERE run_id = 'r08'")
        db.execute("UPDATE runs SET log_lines = log_lines + 5 WHERE run_id = 'r09'")
    assert texts(seeded, "quota") == {"r08"}
    assert texts(seeded, "answered every probe") == {"r02", "r04", "r10"}  # r08 re-indexed
    with seeded.write() as db:
        db.execute("DELETE FROM runs WHERE run_id = 'r01'")
    assert texts(seeded, "order_store") == {"r07"}


def test_pages_cover_every_run_and_explanation_once(seeded: Database) -> None:
    for index in range(7):
        insert_explanation(seeded, StoredExplanation(
            run_id=RUNS[index].run_id, created=T0 + index * 1800 + 1, source="offline",
            prompt_version="t", exception="E", action=f"step {index} crashed"))
    for query in (HistoryQuery(), HistoryQuery(text="crashed")):
        seen: list[tuple[str, str]] = []
        cursor: Cursor | None = None
        pages = 0
        while True:
            page = history_page(seeded, query, cursor, limit=3)
            seen += [(row.kind, row.key) for row in page.rows]
            pages += 1
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
            assert pages < 20
        assert len(seen) == len(set(seen))
        if query.text is None:
            assert len(seen) == len(RUNS) + 7
        else:
            assert len(seen) == 7 + 3  # the explanations, and r01, r03 and r07
    first = history_page(seeded, HistoryQuery(), limit=20).rows
    assert [r.ts for r in first] == sorted((r.ts for r in first), reverse=True)


def test_filters_and_dates(seeded: Database) -> None:
    rows = history_page(seeded, parse_history_query("verdict:crashed model:m1")).rows
    assert {r.key for r in rows} == {"r01", "r07"}
    assert parse_history_query("since:2026-11-18 Error: x").text == "Error: x"
    with pytest.raises(UsageError, match="since"):
        parse_history_query("since:yesterday")


def test_partial_fields_show_the_words_so_far() -> None:
    assert partial_fields('{"action": "Open the po') == {"action": "Open the po"}
    assert partial_fields('{"action": "a\\"b\\n", "reason": "x\\u00e9') == {
        "action": 'a"b\n', "reason": "xé"}
    assert partial_fields('{"action": "ends with \\') == {"action": "ends with "}
    assert partial_fields('{"action": "x\\u00') == {"action": "x"}


def test_markdown_carries_the_explanation() -> None:
    result = ExplainResult(
        exception="KeyError", message="'total'", source="llm", model="m", run_id="r1",
        fingerprint="f" * 16, app_frames=[AppFrame(name="app.total", file="app.py", line=3)],
        explanation=Explanation(action="a", reason="b", guide="c", inference="d",
                                confidence=0.5),
    )
    text = to_markdown(result)
    assert text.splitlines()[0] == "### KeyError: 'total'"
    for part in ("run `r1`", "`app.total` (app.py:3)", "**Action** a", "**Guide** c",
                 "_source: llm (m)_"):
        assert part in text
