"""Replay: use a recorded generation (``<dir>/<prompt version>/<model>/``) as the project."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from console.generate.payload import replay_root_for
from console.generate.project_toml import ProjectFileError, read_project_toml
from console.generate.result import GenerationResult
from console.generate.safety import Limits, UnsafeProjectError, check_relative_path, check_tree
from console.model import Job


class ReplayGenerator:
    """Copies ``<root>/<prompt version>/<model>/`` into the job's project directory.

    ``{spec}`` in ``root`` is replaced by the job's spec name, so each spec can have its
    own recordings.  A ``verdict.toml`` in the recorded directory may give run, install,
    health and port_env.
    """

    kind = "replay"

    def __init__(self, root: Path, *, limits: Limits | None = None) -> None:
        self.root = Path(root)
        self.limits = limits or Limits(max_files=500, max_total_bytes=16 * 1024 * 1024)

    def source_for(self, job: Job) -> Path:
        """The recorded directory for a job's prompt version and model."""
        version = check_relative_path(job.combination.prompt)
        model = check_relative_path(job.combination.model)
        spec = check_relative_path(job.combination.spec)
        return Path(replay_root_for(self.root, spec)) / version / model

    async def generate(self, job: Job, dest: Path) -> GenerationResult:
        """Copy the recorded project into ``dest``; ok=False when it is missing or unsafe."""
        return await asyncio.to_thread(self._generate, job, dest)

    def _generate(self, job: Job, dest: Path) -> GenerationResult:
        started = time.monotonic()

        def failed(reason: str) -> GenerationResult:
            return GenerationResult(ok=False, reason=reason, ms=(time.monotonic() - started) * 1000)

        try:
            source = self.source_for(job)
        except UnsafeProjectError as exc:
            return failed(f"replay: unusable prompt version or model name: {exc}")
        shown = f"{job.combination.prompt}/{job.combination.model}"
        root = replay_root_for(self.root, job.combination.spec)
        if source.is_symlink() or not source.is_dir():
            return failed(f"replay: no recorded generation {shown}/ in {root}")
        try:
            files = check_tree(source, self.limits)
            values = read_project_toml(source)
        except (UnsafeProjectError, ProjectFileError) as exc:
            return failed(f"replay: {shown}: {exc}")
        if not files:
            return failed(f"replay: {shown}/ in {root} is empty")
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copytree(
            source,
            dest,
            symlinks=True,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        return GenerationResult(
            ok=True,
            project_dir=dest,
            run=values.get("run"),
            install=values.get("install"),
            health=values.get("health"),
            port_env=values.get("port_env"),
            files=files,
            ms=(time.monotonic() - started) * 1000,
        )
