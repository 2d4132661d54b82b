"""Business code never passes logging arguments: the ledger is filled from the context.

The edge (a worker, a command) sets the context once; generation and explanation code
only call the factory's model, and every row of ``llm_calls`` still says who, where and
why.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from console.llm.context import LlmContext, llm_context, run_with_context
from console.llm.factory import ChatModelFactory
from console.model import Combination, Job
from console.settings import Settings
from storage.db import Database
from storage.llm_calls import list_calls
from tests.support.openai_server import OpenAIServer, chat_reply

# Parameter names that would mean a caller has to thread logging data through.
LOGGING_PARAMETERS = {
    "log",
    "logger",
    "ledger",
    "callback",
    "callbacks",
    "run_manager",
    "tracer",
    "ctx",
    "context",
    "llm_context",
    "user",
    "sandbox",
    "feature",
    "job_id",
    "combination",
}


def _entry_points() -> list[Callable[..., Any]]:
    from console.explain.explainer import explain_failure
    from console.generate.llm import LlmGenerator

    return [LlmGenerator.__init__, LlmGenerator.generate, explain_failure]


@pytest.mark.parametrize("fn", _entry_points(), ids=lambda fn: fn.__qualname__)
def test_business_entry_points_take_no_logging_parameters(fn: Callable[..., Any]) -> None:
    names = set(inspect.signature(fn).parameters)
    assert not names & LOGGING_PARAMETERS, f"{fn.__qualname__} takes {names & LOGGING_PARAMETERS}"


async def test_generation_calls_are_recorded_with_the_edge_context(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database, tmp_path: Path
) -> None:
    from console.generate.llm import LlmGenerator

    project = {
        "files": [{"path": "app.py", "content": "print('hi')\n"}],
        "run": "python app.py",
        "install": None,
        "port_env": "PORT",
        "health": "/health",
    }
    openai_server.enqueue(chat_reply(json.dumps(project), prompt_tokens=321, completion_tokens=45))
    combination = Combination(spec="todo-api", prompt="v1", model="test-model")
    job = Job(job_id="job-42", combination=combination, payload={"prompt": {"text": "Build it"}})
    generator = LlmGenerator(ChatModelFactory(llm_settings, db))

    # The worker edge says who and where; the generator itself adds feature/job.
    with llm_context(user="ana", sandbox="pod-3"):
        result = await generator.generate(job, tmp_path / "project")
    assert result.ok, result.reason

    (row,) = list_calls(db)
    assert (row.user, row.sandbox) == ("ana", "pod-3")
    assert (row.feature, row.job_id, row.combination) == ("generate", "job-42", combination.key)
    assert (row.input_tokens, row.output_tokens, row.status) == (321, 45, "ok")


async def summarise(model: Any, text: str) -> str:
    """A business-style function: it knows nothing about logging."""
    reply = await model.ainvoke(f"Summarise: {text}")
    return str(reply.content)


async def test_a_plain_business_function_is_recorded_from_the_context(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    model = ChatModelFactory(llm_settings, db).create()
    ctx = LlmContext(user="bo", feature="explain", job_id="j7", sandbox="run-9")
    assert await run_with_context(ctx, summarise, model, "a stack trace") == "ok"
    assert await summarise(model, "outside any context") == "ok"

    with_ctx, without = list_calls(db)
    assert (with_ctx.user, with_ctx.feature, with_ctx.job_id, with_ctx.sandbox) == (
        "bo",
        "explain",
        "j7",
        "run-9",
    )
    assert (without.user, without.feature, without.job_id) == (None, None, None)


async def test_explanation_calls_are_recorded_with_the_edge_context(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    from console.explain.explainer import explain_failure
    from console.explain.inputs import FailureInput

    answer = {
        "action": "free port 8080",
        "reason": "the port is taken",
        "guide": "stop the other server",
        "inference": "bind failed at start",
        "confidence": 0.7,
    }
    openai_server.enqueue(chat_reply(json.dumps(answer), prompt_tokens=77, completion_tokens=12))
    failure = FailureInput(log="OSError: [Errno 98] Address already in use", run_id="r-77")
    with llm_context(user="cy", job_id="job-5"):
        result = await explain_failure(failure, settings=llm_settings, db=db)
    assert result.source == "llm", result.error

    (row,) = list_calls(db)
    assert (row.user, row.job_id) == ("cy", "job-5")  # from the edge
    assert (row.feature, row.sandbox) == ("explain", "r-77")  # set by the explainer
    assert (row.input_tokens, row.output_tokens, row.status) == (77, 12, "ok")
