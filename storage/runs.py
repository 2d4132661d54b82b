"""Storage for runs."""

from __future__ import annotations

from storage.db import Migration

COMPONENT = "runs"
MIGRATIONS: list[Migration] = []
