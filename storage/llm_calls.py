"""Storage for llm_calls."""

from __future__ import annotations

from storage.db import Migration

COMPONENT = "llm_calls"
MIGRATIONS: list[Migration] = []
