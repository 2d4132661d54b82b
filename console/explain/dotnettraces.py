""".NET exceptions: ``Unhandled exception. Ns.FooException: message`` and ``   at`` frames.

* Frames: ``at Ns.Class.Method(Type arg) in /src/File.cs:line 42`` (the location is
  optional; ``in Asm.dll:token 0x…`` for builds without line numbers).  Async state machines
  (``Class.<Method>d__16.MoveNext()``) read as ``Class.Method``.
* Inner exceptions: ``Outer: m ---> Inner: m2`` on one line or ``' ---> Inner: m2'`` on the
  next ones; the innermost is reported and its frames come first.  Frames listed before
  ``--- End of inner exception stack trace ---`` belong to the inner exception.
* ``SocketException (98): …`` drops the error number from the type name.
"""

from __future__ import annotations

import re

from console.explain.tracelines import Block, chain_failure
from console.model import Failure, Frame

FRAME = re.compile(
    r"^\s*at (?P<loc>[^\s(]+)\((?P<params>[^()]*)\)"
    r"(?: in (?:(?P<file>.+?):line (?P<line>\d+)|(?P<asm>[^:]+):token \S+))?\s*$"
)
INNER = re.compile(r"^\s*---> ")
_END_INNER = "--- End of inner exception stack trace ---"
_EXCEPTION = re.compile(
    r"(?P<exc>\b(?:[A-Z]\w*\.)+[A-Z]\w*(?:Exception|Error)\b|\b[A-Z]\w*Exception\b)"
    r"(?: \(-?\d+\))?: ?(?P<msg>.*)$"
)
_ASYNC = re.compile(r"^(?P<cls>.+)\.<(?P<method>\w+)>d__\d+\.MoveNext$")
_HEADER_LOOKBACK = 8
# What a JVM frame holds in its parentheses when it has a space (not .NET parameters).
_JVM_SOURCE = re.compile(r"^(?:Unknown Source|Native Method|Compiled Code)(?::\d+)?$")


def is_dotnet_frame(line: str) -> bool:
    """A .NET frame, not a JVM one: parameters are typed (or none), or a location follows."""
    match = FRAME.match(line)
    if not match:
        return False
    params = match["params"]
    if match["file"] or match["asm"]:
        return True
    return params == "" or (" " in params and not _JVM_SOURCE.match(params))


def _blocks(text: str) -> list[Block]:
    """``Outer: m ---> Inner: m2`` as blocks, outermost first."""
    blocks = []
    for part in text.split(" ---> "):
        match = _EXCEPTION.search(part)
        if match:
            blocks.append(Block(match["exc"], match["msg"].strip()))
    return blocks


def _frame(match: re.Match[str], raw: str) -> Frame:
    loc = match["loc"]
    is_async = _ASYNC.match(loc)
    if is_async:
        cls, method = is_async["cls"], is_async["method"]
    else:
        cls, _, method = loc.rpartition(".")
    simple = cls.rsplit(".", 1)[-1] if cls else ""
    file = match["file"] or match["asm"]
    line = int(match["line"]) if match["line"] else None
    name = f"{simple}.{method}" if simple else method
    return Frame(name=name, file=file, line=line, module=cls or None, raw=raw)


def _header(lines: list[str], start: int, floor: int) -> tuple[list[Block], int]:
    """The exception line(s) above ``start`` and the index where they begin."""
    for j in range(start - 1, max(floor, start - _HEADER_LOOKBACK) - 1, -1):
        if INNER.match(lines[j]):
            continue
        blocks = _blocks(lines[j])
        if blocks:
            return blocks, j
    return [], start


def parse_dotnet(lines: list[str], start: int, floor: int) -> tuple[Failure, int]:
    """The exception whose first frame (or first ``--->`` line) is ``lines[start]``."""
    blocks, _ = _header(lines, start, floor)
    if not blocks:
        blocks = [Block("Exception")]
    n = len(lines)
    i = start
    current = len(blocks) - 1
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if INNER.match(line):
            blocks.extend(_blocks(stripped.removeprefix("--->").strip()))
            current = len(blocks) - 1
        elif stripped == _END_INNER:
            current = max(0, current - 1)
        elif stripped.startswith("--- End of stack trace"):
            pass
        else:
            match = FRAME.match(line)
            if not match or not is_dotnet_frame(line):
                break
            blocks[current].frames.append(_frame(match, stripped))
        i += 1
    return chain_failure(blocks, "dotnet"), i
