"""The token ledger: table, totals, pricing, the recording callback and ``verdict usage``."""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from console.cli import main
from console.commands.usage import parse_duration
from console.errors import UsageError
from console.llm.context import llm_context
from console.llm.factory import ChatModelFactory, LlmConfigError
from console.llm.ledger import LedgerCallback, usage_from_result
from console.llm.pricing import call_cost
from console.model import TokenUsage
from console.settings import LlmSettings, ModelConfig, Price, Settings
from storage.db import Database
from storage.llm_calls import LlmCall, insert_call, list_calls, percentile, usage_totals


def _call(**fields: object) -> LlmCall:
    base: dict[str, object] = {
        "started_at": time.time(),
        "model": "m1",
        "status": "ok",
        "latency_ms": 100.0,
    }
    base.update(fields)
    return LlmCall(**base)  # type: ignore[arg-type]


def _result(input_tokens: int, output_tokens: int, cached: int, reasoning: int) -> LLMResult:
    message = AIMessage(
        content="hi",
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
            "input_token_details": {"cache_read": cached},
            "output_token_details": {"reasoning": reasoning},
        },
    )
    return LLMResult(generations=[[ChatGeneration(message=message)]])


# --- storage ------------------------------------------------------------------------------
def test_insert_and_list_round_trip(db: Database) -> None:
    call = _call(user="ana", feature="explain", input_tokens=7, streamed=True, first_token_ms=3.5)
    call.id = insert_call(db, call)
    assert list_calls(db) == [call]
    assert db.schema_version("llm_calls") == 1


def test_usage_totals_group_sum_and_percentiles(db: Database) -> None:
    now = time.time()
    for i in range(1, 21):
        insert_call(
            db,
            _call(
                started_at=now - i,
                model="big" if i <= 10 else "small",
                feature="generate" if i % 2 else "explain",
                latency_ms=float(i * 10),
                input_tokens=100,
                cached_input_tokens=10,
                output_tokens=5,
                reasoning_tokens=1,
                cost_usd=0.5 if i <= 10 else 0.1,
                status="ok" if i != 3 else "RateLimitError",
            ),
        )
    insert_call(db, _call(started_at=now - 7200, model="old", latency_ms=1.0))

    (total,) = usage_totals(db)
    assert (total.key, total.calls, total.errors) == (None, 21, 1)
    assert total.input_tokens == 2000 and total.cached_input_tokens == 200
    assert total.output_tokens == 100 and total.reasoning_tokens == 20
    assert total.cost_usd == pytest.approx(6.0)

    by_model = {row.key: row for row in usage_totals(db, by="model", since=now - 3600)}
    assert set(by_model) == {"big", "small"}
    assert by_model["big"].calls == 10 and by_model["big"].errors == 1
    assert by_model["big"].p50_latency_ms == pytest.approx(55.0)
    assert by_model["big"].p95_latency_ms == pytest.approx(95.5)
    assert [row.key for row in usage_totals(db, by="model", since=now - 3600)] == ["big", "small"]

    by_feature = {row.key: row.calls for row in usage_totals(db, by="feature")}
    assert by_feature == {"generate": 10, "explain": 10, None: 1}
    with pytest.raises(ValueError, match="cannot group by"):
        usage_totals(db, by="colour")


def test_percentile_edges() -> None:
    assert percentile([], 50) is None
    assert percentile([4.0], 95) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)


# --- pricing ------------------------------------------------------------------------------
def test_cost_prices_cached_input_separately() -> None:
    usage = TokenUsage(input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=500_000)
    assert call_cost(Price(input=2.0, cached_input=0.5, output=8.0), usage) == pytest.approx(
        0.6 * 2.0 + 0.4 * 0.5 + 0.5 * 8.0
    )
    # No cached price: cached input costs as much as ordinary input.
    assert call_cost(Price(input=2.0, output=8.0), usage) == pytest.approx(2.0 + 4.0)
    assert call_cost(None, usage) == 0.0


# --- the callback -------------------------------------------------------------------------
def test_callback_records_usage_context_and_cost() -> None:
    rows: list[LlmCall] = []
    callback = LedgerCallback("m1", Price(input=1.0, cached_input=0.25, output=4.0), rows.append)
    run_id = uuid.uuid4()
    with llm_context(user="ana", feature="explain", job_id="j1", combination="s/v1/m1"):
        callback.on_chat_model_start({}, [[]], run_id=run_id)
    callback.on_llm_new_token("", run_id=run_id)
    callback.on_llm_new_token("Hel", run_id=run_id)
    callback.on_llm_end(_result(1000, 200, 400, 50), run_id=run_id)

    (row,) = rows
    assert (row.user, row.feature, row.job_id, row.combination) == (
        "ana",
        "explain",
        "j1",
        "s/v1/m1",
    )
    assert (row.input_tokens, row.output_tokens) == (1000, 200)
    assert (row.cached_input_tokens, row.reasoning_tokens) == (400, 50)
    assert row.cost_usd == pytest.approx((600 * 1.0 + 400 * 0.25 + 200 * 4.0) / 1e6)
    assert row.status == "ok" and row.streamed
    assert row.first_token_ms is not None and 0 <= row.first_token_ms <= row.latency_ms


def test_call_without_context_is_recorded_with_empty_fields() -> None:
    rows: list[LlmCall] = []
    callback = LedgerCallback("m1", None, rows.append)
    run_id = uuid.uuid4()
    callback.on_chat_model_start({}, [[]], run_id=run_id)
    callback.on_llm_error(TimeoutError("too slow"), run_id=run_id)
    (row,) = rows
    assert (row.user, row.sandbox, row.feature, row.job_id, row.combination) == (None,) * 5
    assert row.status == "TimeoutError" and row.error == "too slow"
    assert not row.streamed and row.first_token_ms is None


def test_recording_never_raises_into_the_caller(caplog: pytest.LogCaptureFixture) -> None:
    def broken_sink(call: LlmCall) -> None:
        raise OSError("disk full")

    callback = LedgerCallback("m1", None, broken_sink)
    run_id = uuid.uuid4()
    with caplog.at_level(logging.ERROR):
        callback.on_chat_model_start({}, [[]], run_id=run_id)
        callback.on_llm_end(LLMResult(generations=[[]]), run_id=run_id)
        callback.on_llm_end(_result(1, 1, 0, 0), run_id=uuid.uuid4())  # start never seen
    assert "cannot record a call" in caplog.text


def test_usage_falls_back_to_the_raw_usage_block() -> None:
    result = LLMResult(
        generations=[[]],
        llm_output={
            "token_usage": {
                "prompt_tokens": 30,
                "completion_tokens": 4,
                "prompt_tokens_details": {"cached_tokens": 20},
                "completion_tokens_details": {"reasoning_tokens": 2},
            }
        },
    )
    assert usage_from_result(result) == TokenUsage(
        input_tokens=30, output_tokens=4, cached_input_tokens=20, reasoning_tokens=2
    )


# --- factory configuration ----------------------------------------------------------------
def test_unknown_model_names_the_configured_models() -> None:
    settings = Settings(
        llm=LlmSettings(
            base_url="http://127.0.0.1:9/v1",
            model="alpha",
            models={"beta": ModelConfig(), "gamma": ModelConfig()},
        )
    )
    factory = ChatModelFactory(settings)
    with pytest.raises(LlmConfigError, match="unknown model 'delta'.*alpha, beta, gamma"):
        factory.create("delta")
    assert isinstance(LlmConfigError("x"), UsageError)
    assert factory.create("beta").model_name == "beta"
    assert factory.create().model_name == "alpha"


def test_no_model_configured_is_a_config_error() -> None:
    factory = ChatModelFactory(Settings())
    assert not factory.is_configured()
    with pytest.raises(LlmConfigError, match="VERDICT_LLM_MODEL"):
        factory.create()


def test_model_uses_explicit_timeout_retries_and_stream_usage() -> None:
    settings = Settings(
        llm=LlmSettings(
            base_url="http://127.0.0.1:9/v1",
            model="alpha",
            models={"alpha": ModelConfig(params={"temperature": 0.1}, base_url=None)},
        )
    )
    factory = ChatModelFactory(settings)
    assert factory.is_configured()
    model = factory.create()  # no API key anywhere: creating still works
    assert model.request_timeout == 60.0 and model.max_retries == 2
    assert model.stream_usage is True and model.temperature == 0.1
    assert model.openai_api_base == "http://127.0.0.1:9/v1"
    tuned = factory.create(timeout=1.5, max_retries=0)
    assert tuned.request_timeout == 1.5 and tuned.max_retries == 0


# --- verdict usage ------------------------------------------------------------------------
def _seed(db_path: Path) -> None:
    database = Database(db_path)
    now = time.time()
    insert_call(database, _call(model="m1", feature="explain", cost_usd=0.25, latency_ms=10.0))
    insert_call(database, _call(model="m2", feature="generate", cost_usd=1.0, latency_ms=30.0))
    insert_call(database, _call(started_at=now - 3 * 86400, model="m1", cost_usd=5.0))
    database.close()


def test_usage_command_json_and_table(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _seed(db_path)
    assert main(["--db", str(db_path), "usage", "--by", "model", "--since", "1d", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [(r["key"], r["calls"]) for r in payload["rows"]] == [("m2", 1), ("m1", 1)]
    assert payload["total"]["calls"] == 2
    assert payload["total"]["cost_usd"] == pytest.approx(1.25)

    assert main(["--db", str(db_path), "usage"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["scope", "calls", "errors"]
    assert lines[1].split()[:2] == ["all", "3"]

    assert main(["--db", str(db_path), "usage", "--by", "feature"]) == 0
    out = capsys.readouterr().out
    assert "(none)" in out and "TOTAL" in out and "generate" in out


def test_bad_since_is_exit_2_and_loses_nothing(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(db_path)
    assert main(["--db", str(db_path), "usage", "--since", "yesterday"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--since" in err
    database = Database(db_path)
    assert len(list_calls(database)) == 3
    database.close()


def test_parse_duration() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2w") == 2 * 604800
    assert parse_duration("1.5d") == 1.5 * 86400
    for bad in ("", "5", "h", "5x", "1h 30m", "-1h", "0m"):
        with pytest.raises(UsageError):
            parse_duration(bad)
