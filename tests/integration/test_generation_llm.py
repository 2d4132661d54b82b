"""The LLM generator against the loopback OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from console.generate.llm import LlmGenerator
from console.generate.project_toml import read_project_toml
from console.llm.factory import ChatModelFactory
from console.matrix import load_matrix
from console.model import Combination, Job
from console.settings import LlmSettings, Settings
from storage.db import Database
from storage.llm_calls import list_calls
from tests.support.openai_server import OpenAIServer, chat_reply, error_reply, hang_reply

pytestmark = pytest.mark.llm

APP = "import os\nprint('listening on', os.environ['PORT'])\n"


def answer(files: list[dict[str, str]] | None = None, **fields: Any) -> str:
    body: dict[str, Any] = {
        "files": files if files is not None else [{"path": "app.py", "content": APP}],
        "run": "python3 app.py",
        "install": None,
        "port_env": "PORT",
        "health": "/health",
    }
    body.update(fields)
    return json.dumps(body)


def make_job(prompt_text: str = "Write a notes API.") -> Job:
    return Job(
        job_id="j-test",
        combination=Combination(spec="notes", prompt="v1", model="test-model"),
        payload={"prompt": {"version": "v1", "text": prompt_text}},
    )


@pytest.fixture
def generator(llm_settings: Settings, db: Database) -> LlmGenerator:
    return LlmGenerator(ChatModelFactory(llm_settings, db))


def last_user_text(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


async def test_valid_project_is_written_and_the_call_recorded(
    openai_server: OpenAIServer, generator: LlmGenerator, db: Database, tmp_path: Path
) -> None:
    reply = answer(
        [{"path": "app.py", "content": APP}, {"path": "lib/store.py", "content": "NOTES = []\n"}]
    )
    openai_server.enqueue(chat_reply(reply))
    dest = tmp_path / "project"
    result = await generator.generate(make_job(), dest)
    assert result.ok, result.reason
    assert (result.run, result.health, result.port_env, result.install) == (
        "python3 app.py",
        "/health",
        "PORT",
        None,
    )
    assert result.files == ["app.py", "lib/store.py"] and result.attempts == 1
    assert result.raw == reply and result.responses == [reply]
    assert (dest / "app.py").read_text() == APP
    assert (dest / "lib" / "store.py").read_text() == "NOTES = []\n"
    assert read_project_toml(dest) == {
        "run": "python3 app.py",
        "health": "/health",
        "port_env": "PORT",
    }

    request = openai_server.requests[0]
    assert request["model"] == "test-model"
    assert request["response_format"]["type"] == "json_schema"
    assert request["messages"][0]["role"] == "system"
    assert last_user_text(request) == "Write a notes API."
    [call] = list_calls(db)
    assert (call.feature, call.job_id, call.combination, call.status) == (
        "generate",
        "j-test",
        "notes/v1/test-model",
        "ok",
    )


async def test_invalid_answer_is_repaired_with_the_error_fed_back(
    openai_server: OpenAIServer, generator: LlmGenerator, tmp_path: Path
) -> None:
    bad = json.dumps({"files": [{"path": "app.py", "content": APP}]})  # no "run"
    openai_server.enqueue(chat_reply(bad), chat_reply(answer()))
    result = await generator.generate(make_job(), tmp_path / "p")
    assert result.ok, result.reason
    assert result.attempts == 2 and result.responses[0] == bad and result.raw == answer()
    second = openai_server.requests[1]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == bad
    assert "run: Field required" in last_user_text(openai_server.requests[1])


async def test_code_fenced_json_is_accepted(
    openai_server: OpenAIServer, generator: LlmGenerator, tmp_path: Path
) -> None:
    openai_server.enqueue(chat_reply("```json\n" + answer() + "\n```"))
    result = await generator.generate(make_job(), tmp_path / "p")
    assert result.ok and result.attempts == 1


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../outside.py", "'..' in file path"),
        ("/tmp/evil.py", "absolute file path"),
        ("C:/evil.py", "drive letter"),
    ],
)
async def test_unsafe_paths_are_rejected_and_nothing_escapes(
    openai_server: OpenAIServer,
    generator: LlmGenerator,
    tmp_path: Path,
    path: str,
    problem: str,
) -> None:
    unsafe = answer([{"path": "app.py", "content": APP}, {"path": path, "content": "boom"}])
    openai_server.enqueue(chat_reply(unsafe), chat_reply(unsafe))
    dest = tmp_path / "sub" / "project"
    result = await generator.generate(make_job(), dest)
    assert not result.ok
    assert (
        result.reason.startswith("invalid answer after 2 attempts: ") and problem in result.reason
    )
    assert problem in last_user_text(openai_server.requests[1])
    assert not dest.exists() and not (tmp_path / "sub" / "outside.py").exists()


async def test_generation_fails_after_two_bad_answers_and_keeps_the_raw_text(
    openai_server: OpenAIServer, generator: LlmGenerator, tmp_path: Path
) -> None:
    openai_server.enqueue(chat_reply("Sure! Here is your project: app.py ..."))
    openai_server.enqueue(chat_reply(answer(files=[])))
    result = await generator.generate(make_job(), tmp_path / "p")
    assert not result.ok and result.project_dir is None
    assert result.reason.startswith("invalid answer after 2 attempts: files:")
    assert result.responses == ["Sure! Here is your project: app.py ...", answer(files=[])]
    assert result.raw == answer(files=[])
    assert "not valid JSON" in last_user_text(openai_server.requests[1])
    assert len(openai_server.requests) == 2


async def test_a_failing_endpoint_gives_a_failed_result(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database, tmp_path: Path
) -> None:
    settings = llm_settings.model_copy(
        update={"llm": llm_settings.llm.model_copy(update={"max_retries": 0})}
    )
    openai_server.enqueue(error_reply(500))
    result = await LlmGenerator(ChatModelFactory(settings, db)).generate(make_job(), tmp_path / "p")
    assert not result.ok and result.reason.startswith("model call failed: ")
    assert result.attempts == 0 and result.raw is None


async def test_a_hung_endpoint_times_out_into_a_failed_result(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database, tmp_path: Path
) -> None:
    llm = llm_settings.llm.model_copy(update={"max_retries": 0, "timeout": 2.0})
    openai_server.enqueue(chat_reply("{"), hang_reply(30))
    generator = LlmGenerator(ChatModelFactory(llm_settings.model_copy(update={"llm": llm}), db))
    result = await generator.generate(make_job(), tmp_path / "p")
    assert not result.ok and result.reason.startswith("model call failed: ")
    assert "Timeout" in result.reason
    assert result.responses == ["{"] and result.raw == "{"


async def test_matrix_llm_generator_uses_the_matrix_models_and_prompt(
    openai_server: OpenAIServer, db: Database, tmp_path: Path
) -> None:
    (tmp_path / "v1.txt").write_text("Task for {model}:\n{task}\n")
    (tmp_path / "m.toml").write_text(
        f"""
[[spec]]
name = "notes"
task = "A notes API."
health = "/ready"

[[prompt]]
version = "v1"
template = "v1.txt"

[[model]]
name = "small-model"
base_url = "{openai_server.base_url}"
params = {{ temperature = 0.3 }}

[generator]
kind = "llm"
"""
    )
    matrix = load_matrix(tmp_path / "m.toml")
    settings = Settings(db=tmp_path / "v.db", llm=LlmSettings(api_key="sk-test"))
    generator = matrix.generator(settings, db)
    openai_server.enqueue(chat_reply(answer()))
    [job] = matrix.jobs()
    dest = tmp_path / "project"
    result = await generator.generate(job, dest)
    assert result.ok, result.reason
    request = openai_server.requests[0]
    assert request["model"] == "small-model" and request["temperature"] == 0.3
    assert last_user_text(request) == "Task for small-model:\nA notes API.\n"
    assert matrix.check_spec_for(job, dest, result).health == "/ready"
    assert [c.combination for c in list_calls(db)] == ["notes/v1/small-model"]
