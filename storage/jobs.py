"""Storage for jobs."""

from __future__ import annotations

from storage.db import Migration

COMPONENT = "jobs"
MIGRATIONS: list[Migration] = []
