"""Choosing the generator from a matrix or from a job's payload alone; parsing answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.errors import UsageError
from console.generate.llm import InvalidAnswer, LlmGenerator
from console.generate.replay import ReplayGenerator
from console.generate.select import generator_for, generator_for_job, settings_with_models
from console.settings import LlmSettings, ModelConfig, Settings


def test_replay_from_payload_without_the_matrix(tmp_path: Path) -> None:
    generator = generator_for_job(
        {"generator": {"kind": "replay", "dir": str(tmp_path)}}, settings=Settings()
    )
    assert isinstance(generator, ReplayGenerator) and generator.root == tmp_path
    with pytest.raises(UsageError, match="unknown kind"):
        generator_for_job({"generator": {"kind": "magic"}}, settings=Settings())
    with pytest.raises(UsageError, match="replay needs a directory"):
        generator_for_job({"generator": {"kind": "replay"}}, settings=Settings())


def test_llm_without_any_endpoint_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no LLM endpoint is configured"):
        generator_for("llm", None, settings=Settings(), models=[{"name": "m"}])
    # A model's own base_url is an endpoint.
    generator = generator_for(
        "llm",
        None,
        settings=Settings(),
        models=[{"name": "m", "base_url": "http://127.0.0.1:9/v1"}],
    )
    assert isinstance(generator, LlmGenerator)
    assert generator.factory.model_config("m").base_url == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]


def test_matrix_models_override_configured_ones_where_given() -> None:
    settings = Settings(
        llm=LlmSettings(
            base_url="http://127.0.0.1:1/v1",
            models={"a": ModelConfig(base_url="http://a/v1", params={"temperature": 0, "seed": 1})},
        )
    )
    merged = settings_with_models(
        settings,
        [
            {"name": "a", "params": {"temperature": 0.5}, "price": {"input": 1.0, "output": 2.0}},
            {"name": "b", "base_url": "http://b/v1"},
        ],
    )
    a, b = merged.llm.models["a"], merged.llm.models["b"]
    assert a.base_url == "http://a/v1" and a.params == {"temperature": 0.5, "seed": 1}
    assert (a.price.input, a.price.output) == (1.0, 2.0)
    assert b.base_url == "http://b/v1"
    assert settings.llm.models["a"].params == {"temperature": 0, "seed": 1}  # not mutated


def test_parse_validates_shape_then_paths() -> None:
    generator = LlmGenerator(factory=None)  # type: ignore[arg-type]  # parse never calls it
    good = {
        "files": [{"path": "./a.py", "content": "x"}],
        "run": "python3 a.py",
        "install": " ",
        "port_env": "$APP_PORT",
        "health": "",
    }
    project, files = generator.parse(json.dumps(good))
    assert files == [("a.py", b"x")]
    assert (project.install, project.port_env, project.health) == (None, "APP_PORT", None)
    for raw, problem in [
        ("{", "not valid JSON"),
        ("[]", "answer: Input should be a valid dictionary"),
        (json.dumps({**good, "run": "  "}), "run: Value error, must not be blank"),
        (json.dumps({**good, "health": "health"}), "health: Value error, must be a path"),
        (json.dumps({**good, "port_env": "MY PORT"}), "not an environment variable name"),
        (json.dumps({**good, "files": [{"path": "../x", "content": ""}]}), "'..' in file path"),
        (json.dumps({**good, "files": [{"path": "x"}]}), "files.0.content: Field required"),
    ]:
        with pytest.raises(InvalidAnswer, match=problem):
            generator.parse(raw)
