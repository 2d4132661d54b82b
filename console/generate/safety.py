"""Checks on generated file paths and sizes, and writing files without escaping ``dest``.

A model's answer is untrusted input: a path must stay inside the project directory, so
absolute paths, drive letters, ``..``, backslashes and links are refused, and the number
and size of files are capped.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

_DRIVE = re.compile(r"^[A-Za-z]:")
_RESERVED = {"verdict.toml"}  # written by the generator itself from the structured answer


class UnsafeProjectError(ValueError):
    """A generated project breaks a path or size rule (one-line message)."""


@dataclass(frozen=True)
class Limits:
    """Caps on one generated project."""

    max_files: int = 64
    max_file_bytes: int = 256 * 1024
    max_total_bytes: int = 1024 * 1024
    max_path_chars: int = 200


def check_relative_path(path: str, *, max_chars: int = 200) -> str:
    """Return ``path`` normalised (``a/./b`` -> ``a/b``) or raise UnsafeProjectError."""
    if not path or not path.strip():
        raise UnsafeProjectError("empty file path")
    shown = repr(path[:80])
    if len(path) > max_chars:
        raise UnsafeProjectError(f"file path too long ({len(path)} > {max_chars}): {shown}")
    if "\x00" in path or any(ord(c) < 32 for c in path):
        raise UnsafeProjectError(f"control character in file path: {shown}")
    if not _is_utf8(path):
        raise UnsafeProjectError(f"file path is not valid UTF-8 text: {shown}")
    if "\\" in path:
        raise UnsafeProjectError(f"backslash in file path (use '/'): {shown}")
    if path.startswith("/") or path.startswith("~"):
        raise UnsafeProjectError(f"absolute file path: {shown}")
    if _DRIVE.match(path):
        raise UnsafeProjectError(f"drive letter in file path: {shown}")
    parts = [p for p in PurePosixPath(path).parts if p != "."]
    if any(p == ".." for p in path.split("/")):
        raise UnsafeProjectError(f"'..' in file path: {shown}")
    if not parts or path.endswith("/"):
        raise UnsafeProjectError(f"not a file path: {shown}")
    return "/".join(parts)


def check_files(files: list[tuple[str, str]], limits: Limits) -> list[tuple[str, bytes]]:
    """Validate (path, text) pairs; return normalised paths with their encoded content."""
    if not files:
        raise UnsafeProjectError("no files in the project")
    if len(files) > limits.max_files:
        raise UnsafeProjectError(f"too many files ({len(files)} > {limits.max_files})")
    checked: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    total = 0
    for raw_path, text in files:
        path = check_relative_path(raw_path, max_chars=limits.max_path_chars)
        if path.lower() in _RESERVED:
            raise UnsafeProjectError(
                f"{path!r} is reserved (give run/install/health in the answer's fields)"
            )
        if path in seen:
            raise UnsafeProjectError(f"duplicate file path: {path!r}")
        if not _is_utf8(text):
            raise UnsafeProjectError(f"content of {path!r} is not valid UTF-8 text")
        data = text.encode("utf-8")
        if len(data) > limits.max_file_bytes:
            raise UnsafeProjectError(
                f"file too large: {path!r} ({len(data)} > {limits.max_file_bytes} bytes)"
            )
        total += len(data)
        if total > limits.max_total_bytes:
            raise UnsafeProjectError(
                f"project too large (over {limits.max_total_bytes} bytes in total)"
            )
        seen.add(path)
        checked.append((path, data))
    # ``a`` as a file and ``a/b`` as another file cannot both exist.
    for path in seen:
        parent = PurePosixPath(path).parent
        while str(parent) != ".":
            if str(parent) in seen:
                raise UnsafeProjectError(f"{str(parent)!r} is both a file and a directory")
            parent = parent.parent
    return checked


def _is_utf8(text: str) -> bool:
    # JSON may carry lone surrogates ("\\ud800"), which no file name or file can hold.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_files(dest: Path, files: list[tuple[str, bytes]]) -> list[str]:
    """Write checked files under ``dest`` refusing to follow any link; return the paths."""
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written: list[str] = []
    for path, data in files:
        _make_parents(root, PurePosixPath(path).parent.parts)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(root / path, flags, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        written.append(path)
    return written


def _make_parents(root: Path, parts: tuple[str, ...]) -> None:
    """Create the directories ``parts`` below ``root``, refusing links on the way."""
    current = root
    for part in parts:
        current = current / part
        if current.is_symlink():
            raise UnsafeProjectError(f"link in the way of a generated file: {part!r}")
        current.mkdir(exist_ok=True)


def check_tree(root: Path, limits: Limits) -> list[str]:
    """Validate an existing project tree (replay): no links, caps respected; list files."""
    paths: list[str] = []
    total = 0
    for current, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted([*dirs, *names]):
            full = Path(current) / name
            if full.is_symlink():
                raise UnsafeProjectError(f"link in project: {str(full.relative_to(root))!r}")
        for name in sorted(names):
            full = Path(current) / name
            rel = full.relative_to(root).as_posix()
            if not full.is_file():
                raise UnsafeProjectError(f"not a regular file: {rel!r}")
            size = full.stat().st_size
            if size > limits.max_file_bytes:
                raise UnsafeProjectError(
                    f"file too large: {rel!r} ({size} > {limits.max_file_bytes} bytes)"
                )
            total += size
            paths.append(rel)
    if len(paths) > limits.max_files:
        raise UnsafeProjectError(f"too many files ({len(paths)} > {limits.max_files})")
    if total > limits.max_total_bytes:
        raise UnsafeProjectError(f"project too large (over {limits.max_total_bytes} bytes)")
    return paths
