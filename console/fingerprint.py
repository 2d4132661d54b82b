"""Stable fingerprints of failures, so the same error is recognised when it comes back.

A fingerprint hashes the verdict, the exception type, the exception message and the top
application frames (function and file), after removing what changes from run to run: line
numbers, memory addresses, ports, temporary and per-run paths, ids and other numbers.  The
message is included (normalised) because it often is the only thing that tells two
failures apart (``No module named 'flask'`` vs ``'django'`` raised at the same import).
"""

from __future__ import annotations

import hashlib
import re

from console.model import Failure, Frame, Verdict

TOP_FRAMES = 3

_RULES: list[tuple[re.Pattern[str], str]] = [
    # A run's working copy: …/runs/<run id>/project/x.py -> x.py
    (re.compile(r"(?:[\w.~-]*/)*runs/[\w.-]+/project/"), ""),
    (re.compile(r"(?:/private)?/(?:tmp|var/folders|var/tmp)(?:/[^\s'\":,)]+)*"), "<tmp>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), "<id>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<addr>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"(?<![\w.])\[?::[0-9a-f:]*\]?:\d+\b", re.I), "<ip>"),
    (re.compile(r"\b[0-9a-f]{12,}\b", re.I), "<id>"),
    (re.compile(r"\d+"), "<n>"),
    (re.compile(r"\s+"), " "),
]


def normalise(text: str) -> str:
    """``text`` with the volatile parts (paths, addresses, ports, ids, numbers) replaced."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text.strip()


def _frame_key(frame: Frame) -> str:
    where = frame.module or ""
    if frame.file:
        # The last two path components survive a different checkout location.
        where = "/".join(normalise(frame.file).split("/")[-2:])
    return f"{normalise(frame.name)}@{where}"


def fingerprint(verdict: Verdict, failure: Failure | None, *, extra: str = "") -> str:
    """A 16-hex-digit hash identifying this kind of failure.

    Args:
        verdict: the run's verdict.
        failure: the parsed root failure, if the log had a trace.
        extra: more evidence for runs without a trace (e.g. the exit class and the reason);
            normalised before hashing.
    """
    parts = [str(verdict)]
    if failure is not None:
        frames = failure.app_frames() or failure.frames
        parts.append(failure.exception)
        parts.append(normalise(failure.message))
        parts.extend(_frame_key(frame) for frame in frames[:TOP_FRAMES])
    if extra:
        parts.append(normalise(extra))
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
