"""Clean up what a killed harness left: runs still ``running``, their processes, their files.

Every run records its owner (``host:pid:start``, the start time guarding against a reused
pid) in the database and in an ``owner`` file in its directory.  A killed ``verdict check``
or ``verdict run`` cannot end its runs; the next command that records runs calls
:func:`sweep_orphans`, which ends each run whose owner on this host is gone as ``aborted``
with a reason, kills what it left running, and removes its directory.  Runs owned by other
hosts (Kafka workers) and by live processes are never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

from console import paths
from console.sandbox import proctree

if TYPE_CHECKING:
    from storage.db import Database

OWNER_FILE = "owner"  # in a run's directory, beside project/ and tmp/


def owner_tag() -> str:
    """This process as a run owner: ``host:pid:start``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{proctree.start_time(pid) or 0}"


def owner_alive(tag: str) -> bool | None:
    """Whether the owner is a live process; None when it cannot be told from here (another
    host, or an owner written by something else)."""
    host, _, rest = tag.rpartition(":")
    host, _, pid_text = host.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit() or not rest.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    started = proctree.start_time(pid)
    return started is not None and (started == int(rest) or int(rest) == 0)


def write_owner(workdir: Path) -> None:
    """Mark ``workdir`` as belonging to this process."""
    (workdir / OWNER_FILE).write_text(owner_tag(), encoding="ascii")


def kill_marked(run_id: str) -> int:
    """SIGKILL every process carrying the run's marker; returns how many were signalled."""
    marker = f"{proctree.MARKER_ENV}={run_id}".encode()
    killed = 0
    for pid in proctree.scan_marked(marker):
        killed += proctree.send(pid, signal.SIGKILL)
    return killed


def remove_run_dir(workdir: Path) -> None:
    """Delete a run's directory with its owner file last, so that a harness killed half-way
    leaves a directory a sweep still recognises as its own."""
    with contextlib.suppress(OSError):
        for entry in workdir.iterdir():
            if entry.name != OWNER_FILE:
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
    shutil.rmtree(workdir, ignore_errors=True)


# A run's directory gets its owner file right after it is made: one without it for longer
# was left by a harness killed in between (or in the last step of removing it).
OWNERLESS_AFTER = 60.0


def _orphaned_dirs(base: Path) -> list[Path]:
    found = []
    with contextlib.suppress(OSError):
        for path in base.iterdir():
            try:
                tag = (path / OWNER_FILE).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError):
                with contextlib.suppress(OSError):
                    if path.is_dir() and time.time() - path.stat().st_mtime > OWNERLESS_AFTER:
                        found.append(path)
                continue  # no owner file yet (being created) or not a run's directory
            if owner_alive(tag.strip()) is False:
                found.append(path)
    return found


def sweep_orphans(db: Database, runs_dir: Path | None = None) -> list[str]:
    """End the runs a dead harness on this host left behind; returns their run ids.

    Each such run is recorded ``aborted`` with
    a reason (a verdict recorded meanwhile is kept), its marked processes are killed, and
    its directory is removed; so are directories of dead owners that no row of this
    database names (another database's runs).
    """
    from console.worker import abandon_run  # deferred: the worker imports the checker

    host = socket.gethostname()
    swept: list[str] = []
    rows = db.query(
        "SELECT run_id, owner FROM runs WHERE status = 'running' AND owner LIKE ?",
        (f"{host.replace('%', '_')}:%",),
    )
    for row in rows:
        tag = str(row["owner"])
        if owner_alive(tag) is False:
            pid = tag.split(":")[-2]
            reason = f"aborted: the process running it (pid {pid}) died before a verdict"
            abandon_run(db, row["run_id"], reason)
            swept.append(row["run_id"])
    base = runs_dir or paths.runs_dir()
    for path in _orphaned_dirs(base):
        kill_marked(path.name)
        shutil.rmtree(path, ignore_errors=True)
    return swept
