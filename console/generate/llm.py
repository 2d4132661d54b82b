"""The LLM generator: a chat model writes the project as validated structured output."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from console.errors import one_line
from console.generate.project_toml import write_project_toml
from console.generate.prompts import (
    REPAIR_PROMPT,
    SYSTEM_PROMPT,
    GeneratedProject,
    response_format,
)
from console.generate.result import GenerationResult
from console.generate.safety import Limits, UnsafeProjectError, check_files, write_files
from console.llm.context import llm_context
from console.model import Job

if TYPE_CHECKING:
    from console.matrix import Matrix

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*)\n\s*```\s*$", re.DOTALL)


class ChatFactory(Protocol):
    """What the generator needs of ``console.llm.factory.ChatModelFactory``."""

    def create(self, model: str | None = None, **overrides: Any) -> Any:
        """A chat model for ``model``."""
        ...


class InvalidAnswer(ValueError):
    """The model's answer cannot be used (one-line message, fed back to the model)."""


class LlmGenerator:
    """Asks a chat model for the project; one repair round on an invalid answer.

    The model is created through the chat-model factory (so every call is recorded with
    the current LLM context); the prompt is the job's rendered matrix prompt.
    """

    kind = "llm"

    def __init__(
        self,
        factory: ChatFactory,
        matrix: Matrix | None = None,
        *,
        limits: Limits | None = None,
        max_attempts: int = 2,
    ) -> None:
        self.factory = factory
        self.matrix = matrix
        self.limits = limits or Limits()
        self.max_attempts = max_attempts

    def prompt_for(self, job: Job) -> str:
        """The rendered prompt of a job (from its payload, else from the matrix)."""
        text = (job.payload.get("prompt") or {}).get("text")
        if isinstance(text, str) and text.strip():
            return text
        if self.matrix is not None:
            return self.matrix.render_prompt(job.combination)
        raise ValueError(f"job {job.job_id} carries no prompt text and no matrix was given")

    async def generate(self, job: Job, dest: Path) -> GenerationResult:
        """Generate, validate and write the project for ``job`` into ``dest``."""
        with llm_context(feature="generate", job_id=job.job_id, combination=job.combination):
            return await self._generate(job, dest)

    async def _generate(self, job: Job, dest: Path) -> GenerationResult:
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        started = time.monotonic()
        responses: list[str] = []

        def result(**fields: Any) -> GenerationResult:
            return GenerationResult(
                raw=responses[-1] if responses else None,
                responses=list(responses),
                attempts=len(responses),
                ms=(time.monotonic() - started) * 1000,
                **fields,
            )

        try:
            chat = self.factory.create(job.combination.model).bind(
                response_format=response_format()
            )
        except Exception as exc:  # unknown model, no endpoint: this job cannot be generated
            return result(ok=False, reason=f"model unavailable: {one_line(exc)}")
        messages: list[Any] = [SystemMessage(SYSTEM_PROMPT), HumanMessage(self.prompt_for(job))]
        problem = ""
        for _ in range(self.max_attempts):
            try:
                reply = await chat.ainvoke(messages)
            except Exception as exc:  # transport errors are retried inside the client
                return result(ok=False, reason=f"model call failed: {one_line(exc)}")
            raw = _text_of(reply.content)
            responses.append(raw)
            try:
                project, files = self.parse(raw)
            except InvalidAnswer as exc:
                problem = str(exc)
                messages += [AIMessage(raw), HumanMessage(REPAIR_PROMPT.format(error=problem))]
                continue
            try:
                written = write_files(dest, files)
            except (OSError, UnsafeProjectError) as exc:
                return result(ok=False, reason=f"cannot write the project: {one_line(exc)}")
            write_project_toml(
                dest,
                {
                    "run": project.run,
                    "install": project.install,
                    "health": project.health,
                    "port_env": project.port_env,
                },
            )
            return result(
                ok=True,
                project_dir=dest,
                run=project.run,
                install=project.install,
                health=project.health,
                port_env=project.port_env,
                files=written,
            )
        attempts = len(responses)
        return result(
            ok=False,
            reason=f"invalid answer after {attempts} attempt{'s' * (attempts != 1)}: {problem}",
        )

    def parse(self, raw: str) -> tuple[GeneratedProject, list[tuple[str, bytes]]]:
        """Validate a raw answer: JSON shape, then paths and sizes.

        Raises:
            InvalidAnswer: with a one-line description of the first problems found.
        """
        text = raw.strip()
        fenced = _FENCE.match(text)
        if fenced:  # some endpoints wrap JSON in a code fence despite the schema
            text = fenced.group(1)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidAnswer(f"not valid JSON: {exc}") from exc
        try:
            project = GeneratedProject.model_validate(data)
        except ValidationError as exc:
            raise InvalidAnswer(_validation_summary(exc)) from exc
        try:
            files = check_files([(f.path, f.content) for f in project.files], self.limits)
        except UnsafeProjectError as exc:
            raise InvalidAnswer(str(exc)) from exc
        return project, files


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    return str(content)


def _validation_summary(exc: ValidationError, limit: int = 3) -> str:
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in error["loc"]) or "answer"
        parts.append(f"{where}: {error['msg']}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
