"""Python tracebacks: chained ones, a bare ``SyntaxError`` report, exception groups.

The exception reported is the last one printed; earlier ones go to ``causes``.  Of an
exception group (PEP 654) the first sub-exception that is not itself a group is reported,
and the group is its outermost cause.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from console.explain.tracelines import (
    GROUP_START,
    MAX_TRACE_LINES,
    PY_START,
    Block,
    chain_failure,
    group_segments,
    is_group_name,
    strip_prefix,
)
from console.model import Failure, Frame

# The name ends on a non-space character: a lazy ``.+?`` before ``\s*$`` took quadratic
# time on a line with a long run of spaces.
_PY_FRAME = re.compile(
    r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<name>.*?\S))?\s*$'
)
_PY_EXC = re.compile(r"^(?P<exc>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")
_PY_CHAIN = (
    "During handling of the above exception, another exception occurred",
    "The above exception was the direct cause of the following exception",
)
_PY_SYNTAX = re.compile(r"^(?:SyntaxError|IndentationError|TabError)\b")



def _frame(match: re.Match[str], line: str) -> Frame:
    """The frame of a ``File "…", line N, in name`` line."""
    return Frame(
        name=match["name"] or "<module>",
        file=match["file"],
        line=int(match["line"]),
        raw=line.strip(),
    )

def _py_block(lines: list[str], i: int) -> tuple[Block | None, int]:
    """Parse one ``Traceback`` block starting after its header; returns (block, next)."""
    n = len(lines)
    frames: list[Frame] = []
    after_frame = False
    while i < n:
        line = lines[i]
        match = _PY_FRAME.match(line)
        if match:
            frames.append(_frame(match, line))
            after_frame = True
            i += 1
            continue
        if not line.strip() or line[:1] in " \t":
            # Source lines, caret markers, "[Previous line repeated N more times]".
            after_frame = False
            i += 1
            continue
        exc = _PY_EXC.match(line.strip())
        if after_frame and not _looks_raised(exc):
            # A source line whose indentation was lost (pasted into an issue, say).
            after_frame = False
            i += 1
            continue
        if exc and PY_START not in line:
            block = Block(exc["exc"], (exc["msg"] or "").strip())
            frames.reverse()
            block.frames = frames
            return block, i + 1
        return None, i
    return None, i


def _looks_raised(exc: re.Match[str] | None) -> bool:
    """Whether an unindented line right after a frame is the exception, not source code."""
    if exc is None:
        return False
    return exc["msg"] is not None or exc["exc"].rsplit(".", 1)[-1][:1].isupper()


def _frames_above(lines: list[str], start: int) -> list[Frame]:
    """Frames printed just above ``lines[start]`` whose ``Traceback`` header was cut off,
    innermost first."""
    frames: list[Frame] = []
    j = start - 1
    while j >= 0 and start - j <= MAX_TRACE_LINES:
        line = lines[j]
        match = _PY_FRAME.match(line)
        if match and match["name"]:
            frames.append(
                Frame(
                    name=match["name"],
                    file=match["file"],
                    line=int(match["line"]),
                    raw=line.strip(),
                )
            )
        elif not (line[:1] in " \t" and line.strip()):
            break
        j -= 1
    return frames


def _chain_next(lines: list[str], i: int) -> int | None:
    """Index of the next chained ``Traceback`` line after a block ending at ``i``."""
    n = len(lines)
    for j in range(i, min(n, i + 6)):
        if lines[j].strip().startswith(_PY_CHAIN):
            for k in range(j + 1, min(n, j + 4)):
                if PY_START in lines[k]:
                    return k
                if lines[k].strip():
                    return None
            return None
    return None


def parse_python(lines: list[str], start: int) -> tuple[Failure | None, int]:
    offset = 0
    # A log prefix ("app-1  | ", a timestamp) repeated on every line of the traceback.
    view = strip_prefix(lines, start, PY_START)
    if view is not None:
        offset, lines, start = start, view, 0
    blocks: list[Block] = []
    i = start
    while True:
        block, i = _py_block(lines, i + 1)
        if block is None:
            break
        blocks.append(block)
        nxt = _chain_next(lines, i)
        if nxt is None:
            break
        i = nxt
    if not blocks:
        # Werkzeug's debugger page prints the exception above a header without its colon
        # (a colon means a console traceback; the line above is then another trace's end).
        page = not lines[start].rstrip().endswith(":")
        above = _exception_above(lines, start) if page else None
        frames = _frames_below(lines, start + 1) if above else []
        if above and frames:
            failure = Failure(exception=above[0], message=above[1], frames=frames)
            return failure.model_copy(update={"language": "python"}), i + offset
        return None, max(i, start + 1) + offset
    failure = chain_failure(blocks, "python")
    return failure, i + offset


def _exception_above(lines: list[str], start: int) -> tuple[str, str] | None:
    """``Name: message`` printed a few lines above a ``Traceback`` header."""
    for j in range(start - 1, max(-1, start - 5), -1):
        exc = _PY_EXC.match(lines[j].strip())
        if exc and exc["msg"] is not None and _looks_raised(exc):
            return exc["exc"], exc["msg"].strip()
    return None


def _frames_below(lines: list[str], i: int) -> list[Frame]:
    """The frames of a traceback that ends without its exception line, innermost first."""
    frames: list[Frame] = []
    after_frame = False
    while i < len(lines):
        line = lines[i]
        match = _PY_FRAME.match(line)
        if match:
            frames.append(_frame(match, line))
            after_frame = True
        elif not line.strip() or line[:1] in " \t" or after_frame:
            after_frame = False  # source lines, indented or not
        else:
            break
        i += 1
    return frames[::-1]


def parse_python_syntax(lines: list[str], start: int) -> tuple[Failure | None, int]:
    """A ``SyntaxError`` printed without a traceback (error in the main script)."""
    match = _PY_FRAME.match(lines[start])
    assert match is not None
    for j in range(start + 1, min(len(lines), start + 6)):
        text = lines[j].strip()
        if _PY_SYNTAX.match(text):
            exc = _PY_EXC.match(text)
            assert exc is not None
            frame = Frame(
                name=match["name"] or "<module>",
                file=match["file"],
                line=int(match["line"]),
                raw=lines[start].strip(),
            )
            failure = Failure(
                exception=exc["exc"],
                message=(exc["msg"] or "").strip(),
                frames=[frame, *_frames_above(lines, start)],
                language="python",
            )
            return failure, j + 1
    return None, start + 1


def is_syntax_location(line: str) -> bool:
    match = _PY_FRAME.match(line)
    return match is not None and not match["name"]


def parse_group(
    lines: list[str], start: int, scan: Callable[[list[str]], list[Failure]]
) -> tuple[Failure | None, int]:
    """The exception group whose header is ``lines[start]``; returns (failure, next index).

    The root is the first sub-exception that is not itself a group (in print order), its
    frames followed by the group's; the group's title is the outermost cause.  ``scan``
    parses the traces of one segment.
    """
    offset = 0
    # The header is "+ Exception Group ..."; a log prefix is whatever precedes the "+ ".
    view = strip_prefix(lines, start, "+ " + GROUP_START)
    if view is not None:
        offset, lines, start = start, view, 0
    segments, end = group_segments(lines, start)
    parsed: list[Failure] = []
    for segment in segments:
        found = scan(segment)
        if not found:  # a sub-exception raised without a traceback: "Name: message"
            last = next((t.strip() for t in reversed(segment) if t.strip()), "")
            exc = _PY_EXC.match(last)
            if exc:
                found = [Failure(exception=exc["exc"], message=(exc["msg"] or "").strip())]
        parsed += found[-1:]
    if not parsed:
        return None, end + offset
    group, leaves = parsed[0], [f for f in parsed[1:] if not is_group_name(f.exception)]
    if not leaves:
        return group.model_copy(update={"language": "python"}), end + offset
    leaf = leaves[0]
    title = f"{group.exception}: {group.message}" if group.message else group.exception
    failure = Failure(
        exception=leaf.exception,
        message=leaf.message,
        frames=[*leaf.frames, *group.frames],
        language="python",
        causes=[title, *leaf.causes],
    )
    return failure, end + offset
