"""The real langchain-openai client against the loopback server, recorded in the ledger."""

from __future__ import annotations

import asyncio

import pytest

from console.llm.context import llm_context
from console.llm.factory import ChatModelFactory, LlmConfigError
from console.settings import ModelConfig, Price, Settings
from storage.db import Database
from storage.llm_calls import list_calls
from tests.support.openai_server import OpenAIServer, chat_reply, error_reply, hang_reply

pytestmark = pytest.mark.llm


@pytest.fixture
def priced_settings(llm_settings: Settings) -> Settings:
    llm_settings.llm.models = {
        "test-model": ModelConfig(price=Price(input=2.0, cached_input=0.5, output=10.0))
    }
    return llm_settings


async def test_usage_block_with_cached_and_reasoning_tokens(
    openai_server: OpenAIServer, priced_settings: Settings, db: Database
) -> None:
    openai_server.enqueue(
        chat_reply(
            "hello",
            prompt_tokens=1200,
            completion_tokens=300,
            cached_tokens=1000,
            reasoning_tokens=120,
        )
    )
    model = ChatModelFactory(priced_settings, db).create()
    with llm_context(user="ana", feature="explain", sandbox="run-1", job_id="j1"):
        answer = await model.ainvoke("why did it fail?")
    assert answer.content == "hello"
    request = openai_server.requests[0]
    assert request["model"] == "test-model"
    assert request["messages"][-1]["content"] == "why did it fail?"

    (row,) = list_calls(db)
    assert (row.model, row.status, row.streamed) == ("test-model", "ok", False)
    assert (row.user, row.feature, row.sandbox, row.job_id) == ("ana", "explain", "run-1", "j1")
    assert (row.input_tokens, row.cached_input_tokens) == (1200, 1000)
    assert (row.output_tokens, row.reasoning_tokens) == (300, 120)
    assert row.cost_usd == pytest.approx((200 * 2.0 + 1000 * 0.5 + 300 * 10.0) / 1e6)
    assert row.latency_ms > 0 and row.first_token_ms is None


async def test_streaming_records_the_final_usage_chunk_and_first_token(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    text = "a streamed answer in several chunks"
    openai_server.enqueue(
        chat_reply(text, prompt_tokens=50, completion_tokens=9, cached_tokens=32, chunk_size=4)
    )
    model = ChatModelFactory(llm_settings, db).create()
    with llm_context(feature="generate"):
        pieces = [chunk.content async for chunk in model.astream("go")]
    assert "".join(str(p) for p in pieces) == text
    assert openai_server.requests[0]["stream"] is True
    assert openai_server.requests[0]["stream_options"] == {"include_usage": True}

    (row,) = list_calls(db)
    assert row.streamed and row.status == "ok" and row.feature == "generate"
    assert (row.input_tokens, row.cached_input_tokens, row.output_tokens) == (50, 32, 9)
    assert row.first_token_ms is not None and 0 < row.first_token_ms <= row.latency_ms


async def test_dropped_stream_is_recorded_as_an_error_and_the_model_recovers(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    openai_server.enqueue(chat_reply("x" * 40, chunk_size=2, drop_after=4))
    model = ChatModelFactory(llm_settings, db).create()
    received: list[str] = []
    with pytest.raises(Exception, match="Connection error"):
        async for chunk in model.astream("go"):
            received.append(str(chunk.content))
    assert "".join(received) == "xxxxxx"  # three pieces arrived before the cut
    assert (await model.ainvoke("again")).content == "ok"

    dropped, recovered = list_calls(db)
    assert dropped.status == "APIConnectionError" and dropped.streamed
    assert dropped.first_token_ms is not None and dropped.input_tokens == 0
    assert (recovered.status, recovered.input_tokens) == ("ok", 10)


async def test_rate_limit_with_retry_after_then_success(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    openai_server.enqueue(
        # 0.8 s is longer than the client's own first backoff (0.375-0.5 s), so the
        # elapsed time shows the header was honoured.
        error_reply(429, headers={"Retry-After": "0.8"}),
        error_reply(429, headers={"Retry-After": "0.05"}),
        chat_reply("finally", prompt_tokens=11, completion_tokens=2),
    )
    model = ChatModelFactory(llm_settings, db).create()
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert (await model.ainvoke("hi")).content == "finally"
    assert loop.time() - start >= 0.8
    assert len(openai_server.requests) == 3  # two retries inside one call
    (row,) = list_calls(db)
    assert (row.status, row.input_tokens, row.output_tokens) == ("ok", 11, 2)


async def test_server_error_is_recorded_with_its_class(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    fast = {"Retry-After": "0.01"}
    openai_server.enqueue(*(error_reply(500, headers=fast) for _ in range(3)))
    model = ChatModelFactory(llm_settings, db).create()
    with llm_context(feature="explain"), pytest.raises(Exception, match="500") as info:
        await model.ainvoke("hi")
    assert len(openai_server.requests) == 3  # max_retries=2
    (row,) = list_calls(db)
    assert row.status == "InternalServerError" == _sdk_name(info.value)
    assert row.feature == "explain" and row.input_tokens == 0 and "500" in (row.error or "")


async def test_hung_endpoint_times_out_and_is_recorded(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    openai_server.enqueue(hang_reply(30))
    model = ChatModelFactory(llm_settings, db).create(timeout=0.3, max_retries=0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(Exception, match="timed out"):
        await model.ainvoke("hi")
    assert loop.time() - start < 10  # the 30 s hang was not waited for
    (row,) = list_calls(db)
    assert row.status == "APITimeoutError"
    assert row.latency_ms >= 300 * 0.9


async def test_missing_api_key_fails_at_call_time_with_a_hint(
    openai_server: OpenAIServer,
    llm_settings: Settings,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    llm_settings.llm.api_key = None
    factory = ChatModelFactory(llm_settings, db)
    model = factory.create()  # creating works without a key
    with pytest.raises(LlmConfigError, match="VERDICT_LLM_API_KEY"):
        await model.ainvoke("hi")
    assert openai_server.requests == []
    assert list_calls(db)[0].status == "LlmConfigError"

    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")  # the fallback, read at call time
    assert (await model.ainvoke("hi")).content == "ok"
    assert [row.status for row in list_calls(db)] == ["LlmConfigError", "ok"]


async def test_structured_output_from_scripted_json(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        action: str
        confidence: float

    openai_server.enqueue(chat_reply('{"action": "fix the port", "confidence": 0.8}'))
    model = ChatModelFactory(llm_settings, db).create()
    with llm_context(feature="explain"):
        answer = await model.with_structured_output(Answer).ainvoke("explain")
    assert answer == Answer(action="fix the port", confidence=0.8)
    assert openai_server.requests[0]["response_format"]["type"] == "json_schema"
    assert [row.feature for row in list_calls(db)] == ["explain"]


def test_one_model_works_across_event_loops(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    model = ChatModelFactory(llm_settings, db).create()

    async def call(i: int) -> str:
        with llm_context(job_id=f"loop-{i}"):
            return str((await model.ainvoke("hi")).content)

    # Each asyncio.run is a fresh loop, as each async test is; a pool from an old loop
    # would fail here ("Event loop is closed" / bound to a different loop).
    assert [asyncio.run(call(i)) for i in range(3)] == ["ok"] * 3
    assert model.invoke("sync too").content == "ok"
    assert [row.job_id for row in list_calls(db)] == ["loop-0", "loop-1", "loop-2", None]


async def test_fifty_concurrent_tasks_keep_their_own_context(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    def responder(request: dict) -> object:
        # The answer's token count identifies the task that asked.
        n = int(str(request["messages"][-1]["content"]).split("-")[1])
        return chat_reply(f"answer-{n}", prompt_tokens=1000 + n, completion_tokens=n)

    openai_server.responder = responder  # type: ignore[assignment]
    model = ChatModelFactory(llm_settings, db).create()

    async def task(n: int) -> None:
        with llm_context(
            user=f"user-{n}",
            feature="generate",
            job_id=f"job-{n}",
            sandbox=f"pod-{n}",
            combination=f"spec/v1/m{n}",
        ):
            for _ in range(2):
                await asyncio.sleep(0)  # interleave with the other tasks
                reply = await model.ainvoke(f"task-{n}")
                assert reply.content == f"answer-{n}"

    await asyncio.gather(*(task(n) for n in range(50)))
    rows = list_calls(db)
    assert len(rows) == 100
    for row in rows:
        n = row.input_tokens - 1000
        assert (row.user, row.job_id, row.sandbox, row.combination) == (
            f"user-{n}",
            f"job-{n}",
            f"pod-{n}",
            f"spec/v1/m{n}",
        )
        assert row.output_tokens == n and row.status == "ok"
    assert sorted(row.job_id or "" for row in rows) == sorted(
        f"job-{n}" for n in range(50) for _ in range(2)
    )


def _sdk_name(error: BaseException) -> str:
    return next(c.__name__ for c in type(error).__mro__ if c.__module__.startswith("openai"))


async def test_factory_without_db_records_into_the_settings_database(
    openai_server: OpenAIServer, llm_settings: Settings
) -> None:
    factory = ChatModelFactory(llm_settings)  # no db: opened on the first record
    model = factory.create()
    with llm_context(feature="explain", job_id="j-thread"):
        # A blocking call handed to a thread keeps the caller's context.
        reply = await asyncio.to_thread(model.invoke, "from a thread")
    assert reply.content == "ok"
    factory.close()
    database = Database(llm_settings.db_path())
    try:
        (row,) = list_calls(database)
    finally:
        database.close()
    assert (row.feature, row.job_id, row.status) == ("explain", "j-thread", "ok")
