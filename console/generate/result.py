"""What a generator returns, and the protocol every generator follows."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, Field

from console.model import Job


class GenerationResult(BaseModel):
    """The outcome of generating one project.

    ``ok=False`` means no runnable project was produced; ``reason`` says why in one line and
    the worker records the verdict ``generation_failed``.  ``run``/``install``/``health``/
    ``port_env`` are what the generator says about the project (``None``: not stated); the
    matrix's spec values take precedence over them (see ``Matrix.check_spec_for``).
    """

    ok: bool
    project_dir: Path | None = None
    run: str | None = None
    install: str | None = None
    health: str | None = None
    port_env: str | None = None
    reason: str = ""
    raw: str | None = None  # the model's last raw answer (LLM generator), kept for the record
    responses: list[str] = Field(default_factory=list)  # every raw answer, in order
    files: list[str] = Field(default_factory=list)  # relative paths written into project_dir
    attempts: int = 0  # model calls made (0 for replay)
    ms: float = 0.0


@runtime_checkable
class Generator(Protocol):
    """Produces the project for one job in ``dest`` (created if missing, expected empty)."""

    async def generate(self, job: Job, dest: Path) -> GenerationResult:
        """Write the project for ``job`` into ``dest`` and describe it."""
        ...
