"""Errors shared across the engine."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input from the user: shown as one line, exit status 2."""
