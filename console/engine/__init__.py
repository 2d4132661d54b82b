"""The engine object shared by the CLI and the console: queue, workers, events, live state."""

from console.engine.core import Engine, sandbox_usage
from console.engine.live import CellState, Changes, LiveState, SandboxState

__all__ = ["CellState", "Changes", "Engine", "LiveState", "SandboxState", "sandbox_usage"]
