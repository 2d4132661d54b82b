"""Rust panics and errors returned from ``main`` with a backtrace.

* ``thread 'main' panicked at 'MESSAGE', src/main.rs:7:5`` (before Rust 1.73) and
  ``thread 'main' panicked at src/main.rs:7:5:`` with the message on the next line (since).
* ``Error: MESSAGE`` followed by ``Stack backtrace:`` (anyhow, eyre).
* ``RUST_BACKTRACE=1`` frames: ``  12: crate::module::function::h0123abcd`` (an address may
  precede the name) with an optional ``at file:line:col`` line below.

The panic location becomes the innermost frame (``<panic>``) unless a backtrace frame already
points at the same place; symbol hashes (``::h0123…``) are dropped from names.
"""

from __future__ import annotations

import re

from console.explain.tracelines import Block, chain_failure
from console.model import Failure, Frame

PANIC = re.compile(r"^\s*thread '[^']*' panicked at ")
_OLD = re.compile(r"panicked at '(?P<msg>.*)', (?P<file>[^\s']+?):(?P<line>\d+)(?::\d+)?\s*$")
_NEW = re.compile(r"panicked at (?P<file>[^\s']+?):(?P<line>\d+):\d+:\s*$")
ERROR_MAIN = re.compile(r"^Error: (?P<msg>.+)$")
_BACKTRACE = re.compile(r"^\s*(?:stack backtrace|Stack backtrace):\s*$")
_FRAME = re.compile(r"^\s*\d+:\s+(?:0x[0-9a-f]+ - )?(?P<name>\S.*?)\s*$")
_AT = re.compile(r"^\s+at (?P<file>.+?):(?P<line>\d+)(?::\d+)?\s*$")
_HASH = re.compile(r"::h[0-9a-f]{4,16}$")
_NOTE = re.compile(r"^\s*note: ")


def is_error_with_backtrace(lines: list[str], i: int) -> bool:
    """Whether ``lines[i]`` is ``Error: …`` followed shortly by ``Stack backtrace:``."""
    if not ERROR_MAIN.match(lines[i]):
        return False
    return any(_BACKTRACE.match(line) for line in lines[i + 1 : i + 4])


def _frames(lines: list[str], i: int) -> tuple[list[Frame], int]:
    """Backtrace frames from ``lines[i]`` on; returns (frames, index after them)."""
    n = len(lines)
    frames: list[Frame] = []
    while i < n:
        match = _FRAME.match(lines[i])
        if not match:
            break
        name = _HASH.sub("", match["name"])
        file: str | None = None
        line: int | None = None
        below = lines[i + 1] if i + 1 < n else ""
        located = _AT.match(below)
        if located:
            file, line = located["file"], int(located["line"])
        frames.append(Frame(name=name, file=file, line=line, raw=lines[i].strip()))
        # A location line cut short ("at /rustc/…/ops/f") still belongs to this frame.
        i += 2 if located or below.lstrip().startswith("at ") else 1
    return frames, i


def _same_place(frame: Frame, file: str, line: int) -> bool:
    if frame.line != line or not frame.file:
        return False
    ours = frame.file.replace("\\", "/").removeprefix("./")
    theirs = file.replace("\\", "/").removeprefix("./")
    return ours.endswith(theirs) or theirs.endswith(ours)


def parse_rust(lines: list[str], start: int) -> tuple[Failure | None, int]:
    """The panic or ``Error:`` report starting at ``lines[start]``."""
    n = len(lines)
    head = lines[start]
    location: tuple[str, int] | None = None
    i = start + 1
    old = _OLD.search(head)
    new = _NEW.search(head) if old is None else None
    error = ERROR_MAIN.match(head) if old is None and new is None else None
    if old:
        block = Block("panic", old["msg"])
        location = (old["file"], int(old["line"]))
    elif new:
        message = lines[i].strip() if i < n and not _NOTE.match(lines[i]) else ""
        if message and not _BACKTRACE.match(lines[i]):
            i += 1
        else:
            message = ""
        block = Block("panic", message)
        location = (new["file"], int(new["line"]))
    elif error:
        block = Block("Error", error["msg"].strip())
    else:
        return None, start + 1
    # The backtrace follows within a few lines (notes and blank lines may come first).
    for j in range(i, min(n, i + 4)):
        if _BACKTRACE.match(lines[j]):
            block.frames, i = _frames(lines, j + 1)
            break
    if location and not any(_same_place(f, *location) for f in block.frames):
        block.frames.insert(0, Frame(name="<panic>", file=location[0], line=location[1]))
    return chain_failure([block], "rust"), i


def rust_crate(name: str) -> str | None:
    """The crate of a Rust symbol (``app::handlers::get`` -> ``app``); None when unnamed."""
    if name.startswith("<") or "::" not in name:
        return None
    return name.split("::", 1)[0]
