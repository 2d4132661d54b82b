"""One place that creates chat models, each recording its calls in the token ledger.

``ChatModelFactory(settings, db).create(model)`` returns a langchain-openai ``ChatOpenAI``
for any OpenAI-compatible endpoint, configured from settings: base URL, API key (from the
settings / ``VERDICT_LLM_API_KEY``, falling back to ``OPENAI_API_KEY``), per-model
parameters, an explicit timeout and retry count, and usage reporting for streams.  Every
call through the model is recorded in ``llm_calls`` with the current
:class:`~console.llm.context.LlmContext`.

langchain_openai and openai are imported only when a model is created.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from console.errors import UsageError
from console.settings import ModelConfig, Settings

if TYPE_CHECKING:
    from langchain_openai import ChatOpenAI

    from console.llm.ledger import LedgerCallback, Sink
    from storage.db import Database
    from storage.llm_calls import LlmCall

log = logging.getLogger(__name__)

API_KEY_ENV = ("VERDICT_LLM_API_KEY", "OPENAI_API_KEY")
MISSING_KEY_MESSAGE = (
    "no API key for the LLM endpoint: set VERDICT_LLM_API_KEY (or OPENAI_API_KEY); "
    "endpoints without authentication (Ollama, vLLM) accept any value"
)


class LlmConfigError(UsageError):
    """The LLM layer is not configured for what was asked (one-line message)."""


def resolve_api_key(settings: Settings) -> str | None:
    """The API key: settings (``VERDICT_LLM_API_KEY``), then the environment."""
    if settings.llm.api_key:
        return settings.llm.api_key
    for name in API_KEY_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def _late_api_key(settings: Settings) -> Callable[[], str]:
    """An API-key provider asked at call time, so a missing key fails the call, not
    ``create``; a key set after creation is picked up."""

    def provide() -> str:
        key = resolve_api_key(settings)
        if not key:
            raise LlmConfigError(MISSING_KEY_MESSAGE)
        return key

    return provide


class ChatModelFactory:
    """Creates ``ChatOpenAI`` models from settings, each recording calls in the ledger.

    Args:
        settings: the application settings (``settings.llm`` is used).
        db: the database whose ``llm_calls`` table receives the records; when None the
            database of ``settings`` is opened on the first recorded call.
        sink: where records go instead of the database (tests, benchmarks).
    """

    def __init__(
        self, settings: Settings, db: Database | None = None, *, sink: Sink | None = None
    ) -> None:
        self.settings = settings
        self.db = db
        self._sink = sink
        self._opened: Database | None = None
        self._http_async_client: Any = None
        self._open_lock = threading.Lock()

    # --- configuration ------------------------------------------------------------------
    def default_model(self) -> str | None:
        """The model used when ``create`` is given none."""
        llm = self.settings.llm
        if llm.model:
            return llm.model
        return next(iter(llm.models), None)

    def is_configured(self) -> bool:
        """Whether a model (and so an endpoint) is configured at all."""
        return self.default_model() is not None

    def known_models(self) -> list[str]:
        """Configured model names: the default first, then the per-model table."""
        names = [self.settings.llm.model] if self.settings.llm.model else []
        return names + [m for m in self.settings.llm.models if m not in names]

    def model_config(self, model: str) -> ModelConfig | None:
        """The per-model configuration of ``model``, if any."""
        return self.settings.llm.models.get(model)

    def _resolve_name(self, model: str | None) -> str:
        name = model or self.default_model()
        if not name:
            raise LlmConfigError(
                "no LLM endpoint configured: set VERDICT_LLM_MODEL (and VERDICT_LLM_BASE_URL"
                " for a non-OpenAI endpoint) or [llm] model/base_url in config.toml"
            )
        models = self.settings.llm.models
        if models and name not in models and name != self.settings.llm.model:
            raise LlmConfigError(
                f"unknown model {name!r}; configured models: {', '.join(self.known_models())}"
            )
        return name

    # --- creation -----------------------------------------------------------------------
    def create(self, model: str | None = None, **overrides: Any) -> ChatOpenAI:
        """A chat model for ``model`` (default: ``settings.llm.model``).

        ``overrides`` are ``ChatOpenAI`` parameters that win over settings (e.g.
        ``temperature``, ``timeout``, ``max_retries``); extra ``callbacks`` are added
        after the ledger's.

        Raises:
            LlmConfigError: no model configured, or ``model`` is not a configured one.
        """
        from langchain_openai import ChatOpenAI

        name = self._resolve_name(model)
        llm = self.settings.llm
        config = self.model_config(name)
        params: dict[str, Any] = {
            "model": name,
            "base_url": (config.base_url if config else None) or llm.base_url,
            "timeout": llm.timeout,
            "max_retries": llm.max_retries,
            "stream_usage": True,
        }
        if config:
            params.update(config.params)
        extra_callbacks = list(overrides.pop("callbacks", None) or [])
        params.update(overrides)
        if not params.get("api_key"):
            params["api_key"] = resolve_api_key(self.settings) or _late_api_key(self.settings)
        if params.get("http_async_client") is None:
            # One client per factory: models share its per-loop connection pools.
            if self._http_async_client is None:
                self._http_async_client = per_loop_async_client()
            params["http_async_client"] = self._http_async_client
        ledger = self.ledger_callback(name)
        params["callbacks"] = [ledger, *extra_callbacks]
        return ChatOpenAI(**params)

    def ledger_callback(self, model: str) -> LedgerCallback:
        """The callback recording calls of ``model`` (attached by :meth:`create`)."""
        from console.llm.ledger import LedgerCallback

        config = self.model_config(model)
        return LedgerCallback(model, config.price if config else None, self._record)

    def _record(self, call: LlmCall) -> None:
        from storage.llm_calls import insert_call

        if self._sink is not None:
            self._sink(call)
            return
        insert_call(self._database(), call)

    def _database(self) -> Database:
        if self.db is not None:
            return self.db
        with self._open_lock:  # calls may finish on several threads at once
            if self._opened is None:
                from storage.db import Database

                self._opened = Database(self.settings.db_path())
            return self._opened

    def close(self) -> None:
        """Close the database this factory opened itself (not one it was given)."""
        if self._opened is not None:
            self._opened.close()
            self._opened = None


def per_loop_async_client() -> Any:
    """An async HTTP client for the OpenAI SDK whose connections belong to the loop that
    uses them.

    langchain-openai otherwise shares one cached client (and its connection pool) across
    instances; a pool created on one event loop fails on the next (each test, each
    ``asyncio.run``).  Here each running loop gets its own transport.
    """
    import openai

    try:  # openai >= 3 is built on httpx2, older versions on httpx
        import httpx2 as httpx_module
    except ImportError:  # pragma: no cover - depends on the installed SDK
        import httpx as httpx_module  # type: ignore[no-redef]

    class PerLoopTransport(httpx_module.AsyncBaseTransport):
        def __init__(self) -> None:
            self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
                weakref.WeakKeyDictionary()
            )

        def _transport(self) -> Any:
            loop = asyncio.get_running_loop()
            transport = self._by_loop.get(loop)
            if transport is None:
                transport = httpx_module.AsyncHTTPTransport(
                    limits=httpx_module.Limits(
                        max_connections=1000, max_keepalive_connections=100, keepalive_expiry=5.0
                    )
                )
                self._by_loop[loop] = transport
            return transport

        async def handle_async_request(self, request: Any) -> Any:
            return await self._transport().handle_async_request(request)

        async def aclose(self) -> None:
            loop = asyncio.get_running_loop()
            transport = self._by_loop.pop(loop, None)
            if transport is not None:
                await transport.aclose()

    return openai.DefaultAsyncHttpxClient(transport=PerLoopTransport())
