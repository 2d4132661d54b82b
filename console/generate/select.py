"""Build the generator a matrix (or a job's payload) asks for."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.errors import UsageError
from console.generate.replay import ReplayGenerator
from console.generate.result import Generator

if TYPE_CHECKING:
    from console.settings import Settings
    from storage.db import Database


def settings_with_models(settings: Settings, models: list[dict[str, Any]]) -> Settings:
    """A copy of ``settings`` whose LLM section also knows the matrix's models.

    A matrix model's ``base_url``/``params``/``price`` override the configured ones where
    given; models the config already knows keep their other values.
    """
    from console.settings import ModelConfig

    known = dict(settings.llm.models)
    for entry in models:
        name = entry["name"]
        current = known.get(name, ModelConfig())
        update: dict[str, Any] = {}
        if entry.get("base_url"):
            update["base_url"] = entry["base_url"]
        if entry.get("params"):
            update["params"] = {**current.params, **entry["params"]}
        if entry.get("price"):
            update["price"] = entry["price"]
        known[name] = ModelConfig.model_validate({**current.model_dump(), **update})
    llm = settings.llm.model_copy(update={"models": known})
    return settings.model_copy(update={"llm": llm})


def generator_for(
    kind: str,
    replay_dir: Path | None,
    *,
    settings: Settings,
    db: Database | None = None,
    models: list[dict[str, Any]] | None = None,
) -> Generator:
    """A replay generator over ``replay_dir`` or an LLM generator for ``models``.

    Raises:
        UsageError: replay without a directory, an unknown kind, or no LLM endpoint.
    """
    if kind == "replay":
        if replay_dir is None:
            raise UsageError("generator: replay needs a directory")
        return ReplayGenerator(replay_dir)
    if kind == "llm":
        from console.generate.llm import LlmGenerator
        from console.llm.factory import ChatModelFactory

        models = models or []
        # A model's own base_url is an endpoint; otherwise the configured one must exist.
        has_endpoint = ChatModelFactory(settings).is_configured() or any(
            m.get("base_url") for m in models
        )
        if not has_endpoint:
            raise UsageError(
                'generator: kind = "llm" but no LLM endpoint is configured '
                "(set llm.base_url in config.toml or VERDICT_LLM_BASE_URL, "
                "or a base_url on each [[model]])"
            )
        return LlmGenerator(ChatModelFactory(settings_with_models(settings, models), db))
    raise UsageError(f'generator: unknown kind {kind!r} (use "llm" or "replay")')


def generator_for_job(
    job_payload: dict[str, Any], *, settings: Settings, db: Database | None = None
) -> Generator:
    """The generator for a job received without its matrix (e.g. from Kafka)."""
    generator = job_payload.get("generator") or {}
    replay_dir = generator.get("dir")
    model = job_payload.get("model")
    return generator_for(
        str(generator.get("kind", "")),
        Path(replay_dir) if replay_dir else None,
        settings=settings,
        db=db,
        models=[model] if isinstance(model, dict) else [],
    )
