"""Line-level preparation for the trace parsers: log prefixes and Python exception groups.

* A log prefix printed before every line of a trace (``app-1  | ``, or a timestamp and
  level such as ``2026-11-21T09:00:00.123Z ERROR app | ``) is removed.  The prefix of the
  trace's first line is generalised (every run of digits matches any run of digits), so a
  timestamp that changes from line to line is still recognised.
* A Python exception group (PEP 654, ``+ Exception Group Traceback``) is printed inside a
  ``|`` margin with ``+---- N ----`` separators between its sub-exceptions.  The margins are
  removed and the group is split into segments: the group's own traceback first, then each
  sub-exception (nested groups are flattened in print order).

:class:`Block` and :func:`chain_failure` are the chain bookkeeping every parser shares.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from console.model import Failure, Frame

Language = Literal["python", "node", "jvm", "go", "ruby", "php", "dotnet", "rust"]

GROUP_START = "Exception Group Traceback (most recent call last)"
PY_START = "Traceback (most recent call last)"
MAX_TRACE_LINES = 5000

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MARGIN = re.compile(r"^\s*\| ?")
_SEPARATOR = re.compile(r"^\s*\+[-+]")
_HEADER = re.compile(r"^\s*\+ (?=Exception Group Traceback)")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (CSI, OSC and two-byte escapes)."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def strip_control(text: str) -> str:
    """Remove ANSI escapes and control characters (newlines and tabs are kept)."""
    text = strip_ansi(text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub("", text)


def clean_lines(text: str) -> list[str]:
    """``text`` ready for the parsers: one list of plain lines.

    ANSI escapes are removed and any line ending splits; a JSON log line (pino, structlog,
    Docker's json-file driver) carrying a trace as a string is replaced by that trace's
    lines; a line holding escaped newlines around a trace (``\\n#0 ``, ``\\n    at ``, as
    Apache and some loggers write them) is split; repeated log prefixes are cut
    (:func:`strip_log_prefixes`).
    """
    text = strip_ansi(text)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if "{" in text or "\\n" in text:
        expanded: list[str] = []
        for line in lines:
            expanded.extend(_expand_line(line))
        lines = expanded
    return strip_log_prefixes(lines)


# A JSON log line worth decoding: it holds an escaped newline and a key that loggers use
# for traces.  The key list keeps ordinary JSON lines from being decoded at all.
_JSON_TRACE_KEYS = re.compile(r'"(?:stack|err|error|exception|exc_info|traceback|log)"\s*:')
_ESCAPED_TRACE = re.compile(r"\\n(?:#\d+ |\s+at |Stack trace:|Traceback |\s+File \"|Caused by: )")
_MAX_JSON_LINE = 1_000_000


def _expand_line(line: str) -> list[str]:
    stripped = line.strip()
    if (
        stripped.endswith("}")
        and "{" in stripped
        and len(stripped) < _MAX_JSON_LINE
        and _JSON_TRACE_KEYS.search(stripped)
    ):
        traces = _json_traces(stripped[stripped.index("{") :])
        if traces:
            return [part for trace in traces for part in trace.split("\n")]
    if "\\n" in line and _ESCAPED_TRACE.search(line):
        return line.replace("\\n", "\n").replace("\\t", "\t").split("\n")
    return [line]


def _json_traces(text: str) -> list[str]:
    """Multi-line strings of a JSON object that hold a trace, the message line first."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):  # malformed, or nested deeper than the decoder goes
        return []
    found: list[str] = []

    def visit(value: object, depth: int) -> None:
        if depth > 4:
            return
        if isinstance(value, dict):
            for item in value.values():
                visit(item, depth + 1)
        elif isinstance(value, list):
            for item in value:
                visit(item, depth + 1)
        elif isinstance(value, str) and "\n" in value:
            found.append(value.rstrip("\n"))

    visit(record, 0)
    return found


# Prefixes that log routers put before every line: Docker Compose (``web_1  | ``),
# kubectl --prefix (``[pod/web-1/app] ``), Heroku (``<timestamp> app[web.1]: ``) and
# concurrently/npm-run-all (``[1] ``).
# Each comes with a substring every prefixed line holds, a cheap test before the pattern.
_LINE_PREFIXES = (
    ("|", re.compile(r"^[A-Za-z0-9][\w.-]*\s+\| ?")),
    ("[pod/", re.compile(r"^\[pod/[^\]\s]+\] ")),
    ("]: ", re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)? [\w-]+\[[\w.-]+\]: ")),
    ("[", re.compile(r"^\[\d+\] ?")),
)


def strip_log_prefixes(lines: list[str]) -> list[str]:
    """``lines`` with a log router's per-line prefix cut, where at least two lines carry it."""
    for marker, pattern in _LINE_PREFIXES:
        hits = 0
        for line in lines:
            if marker in line and pattern.match(line):
                hits += 1
                if hits >= 2:
                    break
        if hits >= 2:
            lines = [pattern.sub("", line, count=1) if marker in line else line for line in lines]
    return lines


def log_prefix(line: str, marker: str, *, spaces: bool = True) -> re.Pattern[str] | None:
    """A pattern for the text before ``marker`` on ``line``; None when there is none.

    Runs of digits match any run of digits (timestamps, pids, line counters change from
    line to line); everything else must be the same.  ``spaces=False`` leaves the prefix's
    trailing whitespace out (it is the indentation of the trace line, not the prefix's).
    """
    index = line.find(marker)
    prefix = line[:index] if spaces else line[:index].rstrip()
    if index <= 0 or not prefix.strip():
        return None
    parts = re.split(r"(\d+)", prefix)
    return re.compile("".join(r"\d+" if p.isdigit() else re.escape(p) for p in parts if p))


def strip_prefix(lines: list[str], start: int, marker: str) -> list[str] | None:
    """Lines from ``start`` on (at most :data:`MAX_TRACE_LINES`) with the log prefix of
    ``lines[start]`` removed where it is present; None when that line has no prefix."""
    pattern = log_prefix(lines[start], marker)
    if pattern is None:
        return None
    view = lines[start : start + MAX_TRACE_LINES]
    out = []
    for line in view:
        match = pattern.match(line)
        out.append(line[match.end() :] if match else line)
    return out


def group_segments(lines: list[str], start: int) -> tuple[list[list[str]], int]:
    """The exception group whose header is ``lines[start]``, as segments of plain lines.

    Returns (segments, index after the group).  The first segment is the group's own
    traceback; each further one a sub-exception.  Nested group headers are turned into
    plain ``Traceback`` headers, so every segment reads as an ordinary Python traceback
    (or, for a sub-exception raised without a traceback, just its ``Name: message`` line).
    """
    segments: list[list[str]] = [[PY_START + ":"]]
    i = start + 1
    n = len(lines)
    while i < n and i - start < MAX_TRACE_LINES:
        line = lines[i]
        if _SEPARATOR.match(line):
            segments.append([])
        elif _MARGIN.match(line):
            text = _MARGIN.sub("", line, count=1)
            if text.startswith(GROUP_START):
                text = PY_START + ":"
            segments[-1].append(text)
        elif _HEADER.match(line):
            segments[-1].append(PY_START + ":")
        else:
            break
        i += 1
    return [s for s in segments if any(line.strip() for line in s)], i


def is_group_name(exception: str) -> bool:
    """Whether ``exception`` names an exception group (``ExceptionGroup``, subclasses)."""
    return exception.rsplit(".", 1)[-1].endswith("ExceptionGroup")


class Block:
    """One exception of a chain while it is being parsed (shared by the parsers)."""

    __slots__ = ("exception", "message", "frames", "code")

    def __init__(self, exception: str, message: str = "") -> None:
        self.exception = exception
        self.message = message
        self.frames: list[Frame] = []
        self.code: str | None = None

    def title(self) -> str:
        return f"{self.exception}: {self.message}" if self.message else self.exception


def chain_failure(blocks: list[Block], language: Language) -> Failure:
    """The failure of a parsed chain: the last block is the root; its frames come first."""
    root = blocks[-1]
    return Failure(
        exception=root.exception,
        message=root.message,
        frames=[f for block in reversed(blocks) for f in block.frames],
        language=language,
        causes=[b.title() for b in blocks[:-1]],
    )
