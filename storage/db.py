"""The database: one SQLite file, WAL, busy timeout, one writer, versioned migrations.

Each storage component (runs, jobs, llm_calls, explanations) owns a list of forward
migrations; ``schema_versions`` records how many of each have been applied, so components
evolve independently and an old database is brought forward on open.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


Migration = Callable[["sqlite_utils.Database"], None]

# Modules that expose ``COMPONENT: str`` and ``MIGRATIONS: list[Migration]``.
COMPONENT_MODULES = (
    "storage.runs",
    "storage.jobs",
    "storage.llm_calls",
    "storage.explanations",
    "storage.history",  # indexes runs and explanations: after both
)


class SchemaTooNew(RuntimeError):
    """The file was written by a newer version of the code; it is left untouched."""


class Database:
    """A connection to the Verdict database.

    All writes go through :meth:`write`, which serialises writers inside this process
    (one writer) and uses ``BEGIN IMMEDIATE`` so a read-then-write never deadlocks with
    another process's writer.
    """

    def __init__(self, path: Path | str, *, migrate: bool = True) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        conn.execute("PRAGMA busy_timeout = 30000")
        self.conn = conn
        if migrate:
            try:
                self.refuse_newer()  # before anything writes to the file
            except BaseException:
                conn.close()
                raise
        if self.path is not None:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        import sqlite_utils  # deferred: commands that never open a database stay fast

        self.db = sqlite_utils.Database(conn)
        self._lock = threading.RLock()
        self._depth = 0
        if migrate:
            self.migrate_all()

    # --- transactions -------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self.db
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self.db
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def query(self, sql: str, params: Sequence[object] | dict[str, object] = ()) -> list[dict]:
        """Run a read query and return rows as dicts."""
        with self._lock:
            cursor = self.conn.execute(sql, params)
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    # --- migrations ---------------------------------------------------------------------
    def schema_version(self, component: str) -> int:
        if "schema_versions" not in self.db.table_names():
            return 0
        rows = self.query("SELECT version FROM schema_versions WHERE component = ?", (component,))
        return int(rows[0]["version"]) if rows else 0

    def migrate(self, component: str, migrations: Sequence[Migration]) -> int:
        """Apply the migrations of ``component`` not applied yet; returns the new version."""
        with self.write() as db:
            if "schema_versions" not in db.table_names():
                db.execute(
                    "CREATE TABLE schema_versions ("
                    " component TEXT PRIMARY KEY, version INTEGER NOT NULL, applied REAL)"
                )
            current = self.schema_version(component)
            if current > len(migrations):
                raise SchemaTooNew(
                    f"was written by a newer version of Verdict ({component} schema {current},"
                    f" this version knows {len(migrations)})"
                )
            for migration in migrations[current:]:
                migration(db)
            if len(migrations) != current:
                db.execute(
                    "INSERT INTO schema_versions (component, version, applied) VALUES (?, ?, ?)"
                    " ON CONFLICT(component) DO UPDATE SET version = excluded.version,"
                    " applied = excluded.applied",
                    (component, len(migrations), time.time()),
                )
            return len(migrations)

    def refuse_newer(self) -> None:
        """Raise :class:`SchemaTooNew` when a component's stored version is ahead of ours.

        An older program must not migrate a newer file "down" (or write rows the newer
        schema does not expect): it refuses and touches nothing.
        """
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions'"
        ).fetchall()
        if not rows:
            return
        stored = dict(self.conn.execute("SELECT component, version FROM schema_versions"))
        for name in COMPONENT_MODULES:
            module = import_module(name)
            known = len(module.MIGRATIONS)
            version = stored.get(module.COMPONENT, 0)
            if isinstance(version, int) and version > known:
                raise SchemaTooNew(
                    f"was written by a newer version of Verdict ({module.COMPONENT} schema"
                    f" {version}, this version knows {known}); it was left untouched:"
                    " upgrade Verdict or choose another file with --db"
                )

    def migrate_all(self) -> None:
        for name in COMPONENT_MODULES:
            module = import_module(name)
            self.migrate(module.COMPONENT, module.MIGRATIONS)


def open_database(path: Path | str) -> Database:
    """Open (creating and migrating as needed) the database at ``path``."""
    return Database(path)
