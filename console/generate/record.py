"""The record of one generation: a :class:`~console.model.GenerationFinished` event.

A model's raw answers are kept for the record, but an answer can be arbitrarily large and
the event travels as one Kafka record.  Every text is capped by the size of its JSON form
(what the wire carries: multi-byte characters and escaped control characters count in
full), the number of answers and file paths kept is bounded, and ``notes`` says what was
cut.  With the default budget one event stays under ~0.6 MiB whatever the generator
returned, well below the event record limit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from console.generate.result import GenerationResult
from console.model import GenerationFinished, Job


@dataclass(frozen=True)
class Budget:
    """Caps, in bytes of JSON, applied to one generation event."""

    response_bytes: int = 128 * 1024  # each raw answer
    max_responses: int = 4  # the first ones and the last one are kept
    reason_bytes: int = 4 * 1024
    path_bytes: int = 512  # each file path
    files_bytes: int = 64 * 1024  # all file paths together


DEFAULT_BUDGET = Budget()


def json_size(text: str) -> int:
    """Bytes ``text`` takes as a JSON string (UTF-8, control characters escaped)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def cap_text(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut so its JSON form takes at most ``limit`` bytes; and whether it was cut."""
    size = json_size(text)
    if size <= limit:
        return text, False
    keep = min(len(text), limit)
    while keep > 0:
        size = json_size(text[:keep])
        if size <= limit:
            break
        # Shrink in proportion to the excess (escapes and multi-byte characters), at least 1.
        keep = min(keep - 1, keep * limit // size)
    return text[: max(keep, 0)], True


def generation_event(
    job_id: str | None,
    run_id: str,
    result: GenerationResult,
    generator: str,
    *,
    budget: Budget = DEFAULT_BUDGET,
) -> GenerationFinished:
    """The event recording ``result`` (capped to ``budget``) for job ``job_id``'s run."""
    notes: list[str] = []
    reason, cut = cap_text(result.reason, budget.reason_bytes)
    if cut:
        notes.append(f"reason cut to {len(reason)} of {len(result.reason)} characters")
    responses = list(result.responses) or ([result.raw] if result.raw else [])
    indexed = list(enumerate(responses, start=1))
    if len(indexed) > budget.max_responses:
        dropped = len(indexed) - budget.max_responses
        indexed = indexed[: budget.max_responses - 1] + indexed[-1:]
        notes.append(f"{dropped} of {len(responses)} responses left out (kept first and last)")
    kept_responses = []
    for number, text in indexed:
        capped, cut = cap_text(text, budget.response_bytes)
        if cut:
            notes.append(f"response {number} cut to {len(capped)} of {len(text)} characters")
        kept_responses.append(capped)
    files: list[str] = []
    used = paths_cut = 0
    for path in result.files:
        capped, cut = cap_text(path, budget.path_bytes)
        used += json_size(capped) + 1
        if used > budget.files_bytes:
            left = len(result.files) - len(files)
            notes.append(f"{left} of {len(result.files)} file paths left out")
            break
        paths_cut += cut
        files.append(capped)
    if paths_cut:
        notes.append(f"{paths_cut} file paths cut to {budget.path_bytes} bytes")
    return GenerationFinished(
        run_id=run_id,
        job_id=job_id,
        ok=result.ok,
        reason=reason,
        generator=generator,
        attempts=result.attempts,
        ms=result.ms,
        files=files,
        responses=kept_responses,
        notes=notes[:20],
    )


def generator_kind(generator: Any, job: Job) -> str:
    """What kind of generator made a job's project: its ``kind``, the job's, or its type."""
    kind = getattr(generator, "kind", None)
    if isinstance(kind, str) and kind:
        return kind
    config = job.payload.get("generator")
    if isinstance(config, dict) and config.get("kind"):
        return str(config["kind"])
    return type(generator).__name__


def shrink(event: GenerationFinished) -> GenerationFinished:
    """``event`` with every cap halved: the wire's last resort for a record still too big."""
    budget = Budget(
        response_bytes=max(max((json_size(r) for r in event.responses), default=2) // 2, 1),
        max_responses=max(len(event.responses), 1),
        reason_bytes=max(json_size(event.reason) // 2, 2),
        path_bytes=512,
        files_bytes=max(sum(json_size(f) + 1 for f in event.files) // 2, 1),
    )
    result = GenerationResult(
        ok=event.ok,
        reason=event.reason,
        responses=event.responses,
        files=event.files,
        attempts=event.attempts,
        ms=event.ms,
    )
    smaller = generation_event(event.job_id, event.run_id, result, event.generator, budget=budget)
    return smaller.model_copy(update={"ts": event.ts, "notes": [*event.notes, *smaller.notes][:20]})
