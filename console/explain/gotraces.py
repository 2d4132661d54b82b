"""Go panics: ``panic: …`` (or ``fatal error: …``) and the ``goroutine N [running]:`` stack.

Only the first goroutine after the panic is read: it is the one that panicked; the others
(``goroutine 17 [syscall]:``) are bystanders.  Each frame is a function line
(``pkg.(*T).Method(0xc000…)``, or ``created by pkg.fn``) followed by an indented
``file:line +0x…`` line.  A panic raised while handling another (``panic: A [recovered]``
then ``panic: B``) reports the last one printed, and the ``http: panic serving ADDR: …``
line that net/http logs counts as a panic header too.
"""

from __future__ import annotations

import re

from console.explain.tracelines import Block, chain_failure
from console.model import Failure, Frame

GOROUTINE = re.compile(r"^\s*goroutine \d+ \[[^\]]*\]:\s*$")
_PANIC = re.compile(
    r"(?:^|\s)(?:http: panic serving \S+: |(?P<kind>panic|fatal error): )(?P<msg>.*?)\s*$"
)
# The name may hold parenthesised receivers (``pkg.(*T).M``): the argument list is the last
# parenthesised group, without nested parentheses.
_FUNC = re.compile(
    r"^\s*(?:created by )?(?P<func>\S+?)(?:\((?P<args>[^()]*)\))?(?: in goroutine \d+)?\s*$"
)
_FILE = re.compile(r"^\s+(?P<file>\S.*?):(?P<line>\d+)(?: \+0x[0-9a-f]+)?\s*$")
_HEADER_LOOKBACK = 12


def _header(lines: list[str], start: int, floor: int) -> Block:
    """The panic line closest above ``start`` (the last one printed is the one reported)."""
    for j in range(start - 1, max(floor, start - _HEADER_LOOKBACK) - 1, -1):
        match = _PANIC.search(lines[j])
        if match:
            message = match["msg"].removesuffix("[recovered]").rstrip()
            kind = match["kind"] or "panic"
            return Block(kind, message)
    return Block("panic")


def parse_go(lines: list[str], start: int, floor: int) -> tuple[Failure, int]:
    """The panic whose ``goroutine N [running]:`` line is ``lines[start]``."""
    block = _header(lines, start, floor)
    block.frames, i = _goroutine_frames(lines, start + 1)
    # The other goroutines' stacks follow; they are read past, not reported.
    n = len(lines)
    while i < n:
        j = i
        while j < n and not lines[j].strip():
            j += 1
        if j >= n or not GOROUTINE.match(lines[j]):
            break
        _, i = _goroutine_frames(lines, j + 1)
    return chain_failure([block], "go"), i


def _goroutine_frames(lines: list[str], i: int) -> tuple[list[Frame], int]:
    """The frames of one goroutine from ``lines[i]`` on; returns (frames, next index)."""
    n = len(lines)
    frames: list[Frame] = []
    while i < n:
        func = _FUNC.match(lines[i])
        text = lines[i].strip()
        if not text or func is None or _FILE.match(lines[i]) or GOROUTINE.match(lines[i]):
            break
        file: str | None = None
        line: int | None = None
        located = _FILE.match(lines[i + 1]) if i + 1 < n else None
        if located:
            file, line = located["file"], int(located["line"])
        frames.append(Frame(name=func["func"].strip(), file=file, line=line, raw=text))
        i += 2 if located else 1
    return frames, i


def go_package(name: str) -> str:
    """The import path of the package a Go function belongs to.

    ``github.com/org/app/cmd.glob..func1`` -> ``github.com/org/app/cmd``;
    ``main.(*Server).Run`` -> ``main``; ``net/http.(*conn).serve`` -> ``net/http``.
    """
    head, slash, tail = name.rpartition("/")
    package = tail.split(".", 1)[0]
    return f"{head}{slash}{package}"
