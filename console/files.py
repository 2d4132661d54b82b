"""Reading files the user names (a matrix, a template, a trace): regular files only, and
only up to a size, so ``/dev/zero`` cannot eat the memory and a FIFO cannot hang us."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from console.errors import UsageError, one_line

MAX_INPUT_BYTES = 16 * 1024 * 1024


class InputFileError(UsageError):
    """A named file cannot be used; ``problem`` says why without naming the file."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{one_line(str(path), 300)}: {problem}")
        self.problem = problem


def _too_large(limit: int) -> str:
    return (
        f"larger than {limit // 1024} KB"
        if limit < 1024 * 1024
        else (f"larger than {limit // (1024 * 1024)} MB")
    )


def read_text_file(path: Path | str, *, limit: int = MAX_INPUT_BYTES) -> str:
    """The text of the regular file ``path`` (a BOM dropped), at most ``limit`` bytes.

    Raises:
        InputFileError: missing, not a regular file (directory, FIFO, device), too large,
            or unreadable.
    """
    try:
        # O_NONBLOCK: opening a FIFO with no writer must not wait for one.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
        os.close(fd)
        raise InputFileError(
            path, "not a regular file" if not stat.S_ISREG(info.st_mode) else _too_large(limit)
        )
    with os.fdopen(fd, "rb") as handle:
        os.set_blocking(handle.fileno(), True)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputFileError(path, _too_large(limit))
    return data.decode("utf-8-sig", errors="replace")


def read_stdin(*, limit: int = MAX_INPUT_BYTES) -> str:
    """Standard input as text, at most ``limit`` bytes (an endless stream is refused)."""
    stream = getattr(sys.stdin, "buffer", None)  # a text stand-in (tests, embedding) has none
    data = stream.read(limit + 1) if stream is not None else sys.stdin.read(limit + 1)
    if len(data) > limit:
        raise InputFileError("standard input", _too_large(limit))
    return data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data


def nesting_depth(value: object, cap: int) -> int:
    """How deeply dicts and lists nest in ``value``, counted up to ``cap + 1`` (iterative:
    a document nested thousands deep cannot exhaust the stack)."""
    deepest = 0
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if level <= cap:
            pending.extend((child, level + 1) for child in children)
    return deepest
