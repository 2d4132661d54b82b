"""The engine object shared by the CLI and the console: queue, workers, events, live state.

Names are loaded on first use, so importing one submodule (``console.engine.live``) does
not pull in the queue and storage stack.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.engine.core import Engine, sandbox_usage
    from console.engine.live import CellState, Changes, LiveState, SandboxState

_WHERE = {
    "Engine": "console.engine.core",
    "sandbox_usage": "console.engine.core",
    "CellState": "console.engine.live",
    "Changes": "console.engine.live",
    "LiveState": "console.engine.live",
    "SandboxState": "console.engine.live",
}

__all__ = ["CellState", "Changes", "Engine", "LiveState", "SandboxState", "sandbox_usage"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(name)
