"""Errors shared across the engine."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user: shown as one line, exit status 2."""


def one_line(error: BaseException | str, limit: int | None = 500) -> str:
    """An error as one line of text: an exception as ``Type: message``, whitespace folded.

    Reasons stored with a verdict and messages on stderr must stay one line; ``limit`` caps
    the length (None: no cap).
    """
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    folded = " ".join(text.split())
    return folded if limit is None else folded[:limit]
