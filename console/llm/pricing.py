"""What an LLM call costs, from the per-model price table in settings."""

from __future__ import annotations

from console.model import TokenUsage
from console.settings import Price

PER_TOKENS = 1_000_000  # prices are USD per one million tokens


def call_cost(price: Price | None, usage: TokenUsage) -> float:
    """USD cost of one call.

    ``usage.input_tokens`` includes the cached ones (as OpenAI reports it); cached input
    is charged at ``price.cached_input`` when set, otherwise at the ordinary input price.
    Reasoning tokens are part of the output tokens and are charged as output.
    """
    if price is None:
        return 0.0
    cached = min(max(usage.cached_input_tokens, 0), max(usage.input_tokens, 0))
    fresh = max(usage.input_tokens, 0) - cached
    cached_price = price.input if price.cached_input is None else price.cached_input
    total = fresh * price.input + cached * cached_price + max(usage.output_tokens, 0) * price.output
    return total / PER_TOKENS
