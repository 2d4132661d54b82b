"""Project generation: a generator writes one job's project into a directory.

``ReplayGenerator`` copies recorded generations (offline, tests, re-verification);
``LlmGenerator`` asks a chat model for the files as validated structured output.
"""

from __future__ import annotations

from console.generate.result import GenerationResult, Generator

__all__ = ["GenerationResult", "Generator"]
