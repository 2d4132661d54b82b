"""SQLite storage for runs, jobs, LLM calls and explanations (sqlite-utils)."""

from storage.db import Database, open_database

__all__ = ["Database", "open_database"]
