"""The real-world trace corpus under ``tests/fixtures/traces/``: loading and scoring.

Each trace is ``<runtime>/<name>.txt`` beside ``<name>.json`` holding its source URL, the
runtime, the expected root exception and message, the app root or package (``app``, may be
null) and the expected application frames, innermost first, each written as
``name file:line`` (``name file`` without a line, ``name`` without a file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.explain.traces import extract_failure
from console.model import Failure, Frame

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "traces"


@dataclass(frozen=True)
class CorpusCase:
    """One stored trace and what a careful reader expects from it."""

    path: Path
    expected: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.path.parent.name}/{self.path.stem}"

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def load_cases() -> list[CorpusCase]:
    """Every corpus trace, sorted by runtime and name."""
    cases = []
    for text in sorted(CORPUS.glob("*/*.txt")):
        meta = json.loads(text.with_suffix(".json").read_text(encoding="utf-8"))
        cases.append(CorpusCase(text, meta))
    return cases


def frame_label(frame: Frame) -> str:
    """``name file:line`` as the corpus writes frames."""
    if frame.file and frame.line is not None:
        return f"{frame.name} {frame.file}:{frame.line}"
    if frame.file:
        return f"{frame.name} {frame.file}"
    return frame.name


def parse(case: CorpusCase, *, with_app: bool) -> Failure | None:
    """The failure the parser reads from ``case``, with or without its app root."""
    return extract_failure(case.text(), app=case.expected["app"] if with_app else None)


def app_labels(failure: Failure | None) -> list[str]:
    return [frame_label(f) for f in failure.app_frames()] if failure else []


def score(cases: list[CorpusCase], *, with_app: bool) -> dict[str, Any]:
    """How many cases get the exception, the message and the exact app frames right."""
    right = {"exception": 0, "message": 0, "frames": 0}
    misses: list[str] = []
    for case in cases:
        failure = parse(case, with_app=with_app)
        exception = failure.exception if failure else None
        message = failure.message if failure else None
        right["exception"] += exception == case.expected["exception"]
        right["message"] += message == case.expected["message"]
        if app_labels(failure) == case.expected["app_frames"]:
            right["frames"] += 1
        else:
            misses.append(case.id)
    return {"total": len(cases), **right, "frame_misses": misses}
