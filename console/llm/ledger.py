"""The callback that records every chat-model call in the token ledger.

One :class:`LedgerCallback` is attached to each model the factory creates.  It reads the
request context from :func:`console.llm.context.current_context` when the call starts,
times the call (and the first streamed token), takes the token counts from the message's
``usage_metadata`` (which langchain-openai fills from the usage block, or from the final
usage chunk of a stream), prices the call and hands an :class:`storage.llm_calls.LlmCall`
to a sink (the factory's inserts it into ``llm_calls``).

Recording never raises into the caller: every failure is logged and swallowed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGeneration, LLMResult

from console.llm.context import LlmContext, current_context
from console.llm.pricing import call_cost
from console.model import TokenUsage
from console.settings import Price
from storage.llm_calls import LlmCall

log = logging.getLogger(__name__)

Sink = Callable[[LlmCall], None]
MAX_ERROR_CHARS = 500


@dataclass(slots=True)
class _Pending:
    started_at: float
    t0: float
    ctx: LlmContext | None
    first_chunk: float | None = None
    first_token: float | None = None


def usage_from_result(response: LLMResult) -> TokenUsage:
    """Token counts of a chat result: ``usage_metadata`` first, ``llm_output`` second."""
    usage = TokenUsage()
    for generations in response.generations:
        for gen in generations:
            meta = (
                getattr(gen.message, "usage_metadata", None)
                if isinstance(gen, ChatGeneration)
                else None
            )
            if meta:
                input_details = meta.get("input_token_details") or {}
                output_details = meta.get("output_token_details") or {}
                usage.input_tokens += int(meta.get("input_tokens") or 0)
                usage.output_tokens += int(meta.get("output_tokens") or 0)
                usage.cached_input_tokens += int(input_details.get("cache_read") or 0)
                usage.reasoning_tokens += int(output_details.get("reasoning") or 0)
    if usage.input_tokens or usage.output_tokens:
        return usage
    # Older providers / non-chat generations: the raw OpenAI usage block.
    raw = (response.llm_output or {}).get("token_usage") or {}
    if raw:
        usage.input_tokens = int(raw.get("prompt_tokens") or 0)
        usage.output_tokens = int(raw.get("completion_tokens") or 0)
        usage.cached_input_tokens = int(
            (raw.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        )
        usage.reasoning_tokens = int(
            (raw.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
        )
    return usage


def error_status(error: BaseException) -> str:
    """The ledger status of a failed call: the SDK's error class name.

    langchain-openai re-raises SDK errors as its own subclasses (``OpenAIAPIError`` for
    an ``InternalServerError``); the SDK name is the one people search for.
    """
    for cls in type(error).__mro__:
        if cls.__module__.split(".")[0] == "openai":
            return cls.__name__
    return type(error).__name__


class LedgerCallback(BaseCallbackHandler):
    """Records each call of one model: tokens, latency, status, cost and context."""

    # Inline: runs in the caller's task (so it sees the caller's context) without a
    # thread hop per event.
    run_inline = True
    raise_error = False

    def __init__(self, model: str, price: Price | None, sink: Sink) -> None:
        self.model = model
        self.price = price
        self.sink = sink
        self._pending: dict[UUID, _Pending] = {}

    # --- events -------------------------------------------------------------------------
    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        """Remember when the call started and in which context."""
        try:
            self._pending[run_id] = _Pending(time.time(), time.perf_counter(), current_context())
        except Exception:
            log.exception("LLM ledger: cannot start recording a call")

    def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Completion-style models start here instead of ``on_chat_model_start``."""
        self.on_chat_model_start(serialized, [], run_id=run_id)

    def on_llm_new_token(
        self, token: str | list[str | dict[str, Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Note the first streamed chunk and the first one carrying text."""
        pending = self._pending.get(run_id)
        if pending is None:
            return
        now = time.perf_counter()
        if pending.first_chunk is None:
            pending.first_chunk = now
        if pending.first_token is None and token:
            pending.first_token = now

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Record a successful call."""
        try:
            usage = usage_from_result(response)
        except Exception:
            log.exception("LLM ledger: cannot read token usage")
            usage = TokenUsage()
        self._finish(run_id, "ok", None, usage)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Record a failed call with the error's class name as its status."""
        self._finish(run_id, error_status(error), str(error)[:MAX_ERROR_CHARS], TokenUsage())

    # --- recording ----------------------------------------------------------------------
    def build_call(
        self, pending: _Pending, status: str, error: str | None, usage: TokenUsage, end: float
    ) -> LlmCall:
        """The ledger row for a finished call."""
        ctx = pending.ctx
        first = pending.first_token or pending.first_chunk
        return LlmCall(
            started_at=pending.started_at,
            model=self.model,
            status=status,
            latency_ms=(end - pending.t0) * 1000.0,
            user=ctx.user if ctx else None,
            sandbox=ctx.sandbox if ctx else None,
            feature=ctx.feature if ctx else None,
            job_id=ctx.job_id if ctx else None,
            combination=ctx.combination if ctx else None,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            first_token_ms=(first - pending.t0) * 1000.0 if first is not None else None,
            streamed=pending.first_chunk is not None,
            error=error,
            cost_usd=call_cost(self.price, usage),
        )

    def _finish(self, run_id: UUID, status: str, error: str | None, usage: TokenUsage) -> None:
        end = time.perf_counter()
        try:
            pending = self._pending.pop(run_id, None)
            if pending is None:  # start not seen (handler attached mid-call)
                pending = _Pending(time.time(), end, current_context())
            self.sink(self.build_call(pending, status, error, usage, end))
        except Exception:
            log.exception("LLM ledger: cannot record a call of %s", self.model)
