"""The sandbox contract: where a project's commands run and how the prober sees them.

The checker drives any sandbox through these two protocols, so a local subprocess and a
Kubernetes pod are interchangeable: prepare the project, start a command with a callback
for each output line, watch it (exit, listening port), stop it, and clean up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

Phase = Literal["install", "run"]
Stream = Literal["stdout", "stderr"]
# (stream, text without the newline, unix time the bytes arrived)
LineCallback = Callable[[Stream, str, float], None]


@dataclass(frozen=True)
class PortHit:
    """A listening socket found in the sandbox, and how to reach it from the prober."""

    port: int
    address: str
    pid: int | None
    connect_host: str
    others: tuple[int, ...] = ()  # other ports the tree listens on at the same time


class RunningProcess(Protocol):
    """One command started in a sandbox."""

    @property
    def pid(self) -> int | None:
        """The root process id (None where the sandbox has no local pid)."""

    @property
    def returncode(self) -> int | None:
        """The exit status once it has ended (negative: killed by that signal)."""

    @property
    def oom_killed(self) -> bool:
        """Whether the sandbox killed it for exceeding its memory limit."""

    @property
    def killed_by_us(self) -> bool:
        """Whether :meth:`stop` ended it (rather than the process ending by itself)."""

    async def wait(self) -> int:
        """Wait for the root process to end and return its status."""

    async def poll_port(self) -> PortHit | None:
        """Look once for a listening TCP socket anywhere in the process tree."""

    async def stop(self, grace: float) -> None:
        """End the whole tree: SIGTERM, ``grace`` seconds, then SIGKILL; no survivors."""


class Sandbox(Protocol):
    """A fresh, isolated place to run one project."""

    run_id: str
    port: int  # the port offered to the app through its environment

    @property
    def project_dir(self) -> Path:
        """Where the project's copy lives inside the sandbox (used to spot app frames)."""

    async def prepare(self, project: Path) -> None:
        """Copy the project in; the original is never modified."""

    async def start(self, command: str, *, phase: Phase, on_line: LineCallback) -> RunningProcess:
        """Start ``command`` through ``sh -c`` with the sandbox's environment and limits."""

    async def close(self) -> None:
        """Stop anything still running and remove the sandbox's files."""


# --- the environment a sandbox owns -------------------------------------------------
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The sandbox sets these itself; a port written into one of them breaks the run (PATH) or
# the harness (VERDICT_RUN marks the run's processes).
RESERVED_ENV = frozenset(
    {"PATH", "HOME", "LANG", "TMPDIR", "HOST", "PYTHONUNBUFFERED", "VERDICT_RUN", "SHELL", "PWD"}
)


def is_env_name(name: str) -> bool:
    """Whether ``name`` is a valid environment variable name."""
    return bool(_ENV_NAME.match(name))


def reserved_env_name(name: str) -> bool:
    """Whether ``name`` is an environment variable the sandbox owns (or a loader one)."""
    return name.upper() in RESERVED_ENV or name.upper().startswith("LD_")


def usable_port_env(name: str) -> bool:
    """Whether ``name`` can carry the port: a variable name the sandbox does not own."""
    return is_env_name(name) and not reserved_env_name(name)
