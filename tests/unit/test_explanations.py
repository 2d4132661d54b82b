"""Stored explanations (FTS search), `verdict explain RUN_ID` offline, and the CLI contract."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from console.cli import main
from console.explain.explainer import explain_failure
from console.explain.inputs import from_run, from_trace
from console.explain.traces import extract_failure
from console.fingerprint import fingerprint
from console.model import CheckResult, ExitClass, ExitInfo, LogBatch, LogLine, RunStarted, Verdict
from console.settings import Settings
from storage import runs
from storage.db import Database
from storage.explanations import (
    StoredExplanation,
    find_cached,
    insert_explanation,
    search_explanations,
)

TRACES = Path(__file__).parent.parent / "fixtures" / "explain" / "traces"
SPECS = Path(__file__).parent.parent / "fixtures" / "explain" / "specs"
SRC = Path(__file__).parent.parent / "fixtures" / "explain" / "src"


def _record_failed_run(db: Database, run_id: str, trace: str, project: Path) -> CheckResult:
    lines = ["starting", *trace.splitlines()]
    runs.record_run_started(db, RunStarted(run_id=run_id, project=str(project), command="x"))
    runs.record_log_batch(
        db,
        LogBatch(
            run_id=run_id,
            lines=[
                LogLine(seq=i, ts=time.time(), stream="stderr", text=t) for i, t in enumerate(lines)
            ],
        ),
    )
    failure = extract_failure(trace)
    result = CheckResult(
        run_id=run_id,
        verdict=Verdict.CRASHED,
        reason="the app exited with status 1 before opening a port",
        exit=ExitInfo(code=1, cls=ExitClass.ERROR),
        failure=failure,
        fingerprint=fingerprint(Verdict.CRASHED, failure),
    )
    runs.record_result(db, result)
    return result


def test_fts_search_over_exception_message_action_reason_guide(db: Database) -> None:
    def add(**fields: str) -> int:
        data = {"source": "offline", "prompt_version": "explain-v1", **fields}
        return insert_explanation(db, StoredExplanation.model_validate(data))

    a = add(exception="KeyError", message="'SHOP_DATABASE_URL'", reason="setting missing")
    b = add(exception="EADDRINUSE", guide="free the port", action="starting the shop")
    c = add(exception="TypeError", reason="value was undefined", fingerprint="fp")
    assert [e.id for e in search_explanations(db, "shop_database_url")] == [a]
    assert [e.id for e in search_explanations(db, "port")] == [b]
    assert [e.id for e in search_explanations(db, "undefined")] == [c]
    assert {e.id for e in search_explanations(db, "shop")} == {a, b}
    assert search_explanations(db, 'NEAR( "x" OR') == []  # operators are taken literally
    assert [e.id for e in search_explanations(db)] == [c, b, a]
    assert find_cached(db, "fp", lang="en", sources=("offline",)).id == c  # type: ignore[union-attr]
    assert find_cached(db, "fp", lang="ko", sources=("offline",)) is None
    assert find_cached(db, "fp", lang="en", sources=("llm",)) is None


async def test_explain_recorded_run_offline_then_cached(db: Database, tmp_path: Path) -> None:
    trace = (TRACES / "python_chained.txt").read_text(encoding="utf-8")
    result = _record_failed_run(db, "run-1", trace, tmp_path)
    data = from_run(db, "run-1")
    assert data.fingerprint == result.fingerprint and data.verdict == "crashed"
    assert "site-packages" not in data.log and "starting" in data.log
    settings = Settings(db=db.path)
    first = await explain_failure(data, settings=settings, db=db)  # no LLM configured
    assert first.source == "offline" and first.run_id == "run-1"
    assert first.exception == "RuntimeError"
    assert [f.name for f in first.app_frames] == ["load_settings", "<module>", "load_settings"]
    again = await explain_failure(from_run(db, "run-1"), settings=settings, db=db)
    assert again.source == "cached" and again.explanation_id == first.explanation_id
    assert again.explanation == first.explanation
    fresh = await explain_failure(from_run(db, "run-1"), settings=settings, db=db, fresh=True)
    assert fresh.source == "offline" and fresh.explanation_id != first.explanation_id


def test_from_run_errors(db: Database, tmp_path: Path) -> None:
    from console.errors import UsageError

    with pytest.raises(UsageError, match="no run"):
        from_run(db, "nope")
    runs.record_run_started(db, RunStarted(run_id="live", project=str(tmp_path)))
    with pytest.raises(UsageError, match="no verdict"):
        from_run(db, "live")


def test_cli_explain_run_json_and_explanations_search(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = Database(db_path)
    _record_failed_run(
        database, "run-42", (TRACES / "node_eaddrinuse.txt").read_text(encoding="utf-8"), tmp_path
    )
    database.close()
    assert main(["--db", str(db_path), "explain", "run-42", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "offline" and out["exception"] == "EADDRINUSE"
    assert out["operation"] is None and out["redactions"] == 0
    assert out["app_frames"] == [
        {"name": "Object.<anonymous>", "file": "/srv/shop/server.js", "line": 14, "signature": None}
    ]
    assert set(out["explanation"]) == {"action", "reason", "guide", "inference", "confidence"}
    assert main(["--db", str(db_path), "explain", "run-42", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"] == "cached"
    assert main(["--db", str(db_path), "explanations", "--search", "port", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in rows] == ["run-42"]
    assert main(["--db", str(db_path), "explanations"]) == 0
    assert "EADDRINUSE" in capsys.readouterr().out


def test_cli_trace_with_openapi_and_signatures(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--db", str(db_path), "explain", "--trace", str(TRACES / "kotlin_seed2.txt"),
        "--app", "im.toss.teens", "--source", str(SRC / "teens"),
        "--openapi", str(SPECS / "teens_openapi3.yaml"),
        "--method", "GET", "--url", "https://api.example.test/teens/apis/1.0/card/images-cards?x=1",
        "--offline", "--json",
    ]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    # No summary or description in the spec: the controller class from the trace stands in.
    assert out["operation"] == {
        "method": "GET",
        "path": "/apis/1.0/card/images-cards",
        "operationId": "listImageCards",
        "summary": "ImageCardController",
    }
    assert [(f["name"], f["signature"]) for f in out["app_frames"]] == [
        ("UserShareKeyEncrypter.decrypt", "decrypt(decryptedArray: String) -> String"),
        ("ImageCardController.getImageCard", "getImageCard(shareCode: String) -> Response"),
    ]
    assert out["explanation"]["action"].startswith("Calling GET /apis/1.0/card/images-cards")


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["explain"], "either RUN_ID or --trace"),
        (["explain", "r1", "--trace", "x"], "either RUN_ID or --trace"),
        (["explain", "--trace", "/no/such/file"], "cannot read"),
        (["explain", "--trace", str(TRACES / "kotlin_seed2.txt"), "--openapi", "x.json"],
         "needs --method and --url"),
        (["explain", "--trace", str(TRACES / "kotlin_seed2.txt"), "--openapi",
          str(SPECS / "broken.json"), "--method", "GET", "--url", "/x"], "not valid JSON"),
        (["explain", "missing-run"], "no run"),
        (["explanations", "--limit", "0"], "--limit"),
    ],
)  # fmt: skip
def test_cli_bad_input_exits_2_with_one_line(
    argv: list[str], problem: str, db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(db_path), *argv]) == 2
    err = capsys.readouterr().err
    assert problem in err and err.count("\n") == 1


def test_cli_no_trace_in_stdin(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("all good\nserver listening on 3000\n"))
    assert main(["--db", str(db_path), "explain", "--trace", "-"]) == 2
    assert "no stack trace found" in capsys.readouterr().err


def test_trace_input_fingerprint_includes_the_operation(db: Database) -> None:
    from console.explain.explainer import input_fingerprint
    from console.explain.openapi import load_spec, match_operation

    text = (TRACES / "kotlin_seed2.txt").read_text(encoding="utf-8")
    spec = load_spec(SPECS / "teens_openapi3.yaml")
    one = match_operation(spec, "GET", "/apis/1.0/card/images-cards")
    other = match_operation(spec, "GET", "/apis/1.0/image-cards/1")
    data = from_trace(text)
    assert input_fingerprint(data, one) == input_fingerprint(from_trace(text), one)
    assert input_fingerprint(data, one) != input_fingerprint(data, other)
