"""Storage for explanations."""

from __future__ import annotations

from storage.db import Migration

COMPONENT = "explanations"
MIGRATIONS: list[Migration] = []
