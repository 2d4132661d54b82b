"""The LLM layer: request context, the chat-model factory and the token ledger."""

from __future__ import annotations

from console.llm.context import (
    LlmContext,
    bind_context,
    current_context,
    llm_context,
    run_in_executor,
    run_with_context,
)
from console.llm.factory import ChatModelFactory, LlmConfigError

__all__ = [
    "ChatModelFactory",
    "LlmConfigError",
    "LlmContext",
    "bind_context",
    "current_context",
    "llm_context",
    "run_in_executor",
    "run_with_context",
]
