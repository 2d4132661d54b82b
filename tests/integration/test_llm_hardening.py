"""The LLM layer and the explainer against malformed but well-formed-HTTP answers: a
completion without choices, without usage, with null content; an unpriced model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.explain.explainer import explain_failure
from console.explain.inputs import from_trace
from console.llm.factory import ChatModelFactory
from console.settings import Settings
from storage.db import Database
from storage.explanations import get_explanation
from storage.llm_calls import list_calls
from tests.support.openai_server import OpenAIServer, raw_reply

pytestmark = pytest.mark.llm

TRACE = (
    Path(__file__).parent.parent / "fixtures" / "explain" / "traces" / "python_chained.txt"
).read_text(encoding="utf-8")
GOOD = {
    "action": "Starting the shop API.",
    "reason": "DATABASE_URL is not set.",
    "guide": "Set DATABASE_URL.",
    "inference": "KeyError on os.environ.",
    "confidence": 0.9,
}


def _completion(
    content: str | None, *, usage: dict[str, Any] | None = None, choices: bool = True
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ]
        if choices
        else [],
    }
    if usage is not None:
        payload["usage"] = usage
    return payload


async def test_completion_without_usage_is_recorded_with_zero_tokens(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    openai_server.enqueue(raw_reply(_completion("fine")))
    model = ChatModelFactory(llm_settings, db).create()
    assert (await model.ainvoke("hi")).content == "fine"
    (row,) = list_calls(db)
    assert (row.status, row.input_tokens, row.output_tokens, row.cost_usd) == ("ok", 0, 0, 0.0)


async def test_completion_with_no_choices_is_recorded_not_raised_from_the_ledger(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    openai_server.enqueue(raw_reply(_completion(None, choices=False, usage={})))
    model = ChatModelFactory(llm_settings, db).create()
    try:
        await model.ainvoke("hi")
    except Exception:  # noqa: BLE001 - the client may refuse it; the ledger must still record
        pass
    (row,) = list_calls(db)
    assert row.model == "test-model" and row.input_tokens == 0


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (_completion(None, choices=False), "malformed completion"),
        (_completion(None), "invalid answer after one retry: not valid JSON"),
        (_completion("I think the database is down."), "invalid answer after one retry"),
    ],
    ids=["no-choices", "null-content", "prose"],
)
async def test_explainer_turns_malformed_answers_into_a_stored_unavailable(
    openai_server: OpenAIServer,
    llm_settings: Settings,
    db: Database,
    payload: dict[str, Any],
    why: str,
) -> None:
    openai_server.enqueue(raw_reply(payload), raw_reply(payload))
    result = await explain_failure(from_trace(TRACE), settings=llm_settings, db=db)
    assert result.source == "unavailable" and result.error and why in result.error
    stored = get_explanation(db, result.explanation_id or 0)
    assert stored is not None and stored.source == "unavailable" and stored.error == result.error
    assert len(list_calls(db)) == len(openai_server.requests)


async def test_unpriced_model_costs_zero(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database
) -> None:
    openai_server.enqueue(raw_reply(_completion(json.dumps(GOOD), usage={"prompt_tokens": 5})))
    result = await explain_failure(from_trace(TRACE), settings=llm_settings, db=db)
    assert result.source == "llm"
    (row,) = list_calls(db)
    assert row.cost_usd == 0.0 and row.input_tokens == 5


def test_usage_json_shape_and_zero_since(
    openai_server: OpenAIServer,
    llm_settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--db", str(llm_settings.db), "usage", "--json"]) == 0
    empty = json.loads(capsys.readouterr().out)
    assert set(empty) == {"by", "since", "rows", "total"} and empty["rows"] == []
    assert main(["--db", str(llm_settings.db), "usage", "--since", "0s"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--since" in err
