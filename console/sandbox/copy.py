"""Copying a project into a run's directory so that the copy never leads outside itself.

``shutil.copytree`` is not enough: a named pipe or a socket file in the project makes it
fail (and a pipe could block), an absolute symlink into the project would let the app
write into the original, and a symlink to ``~/.ssh`` or ``/etc`` would put the host's
files in reach of the app as if they were the project's.  Here symlinks whose target lies
in the project are re-pointed at the copy (relative, so they never lead back), links to
system locations (``/usr``, ``/opt`` …) or to executable files (a virtualenv's
interpreter) are kept, and every other link, special file or unreadable file is skipped
and listed in the report.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

SKIPPED_NAMES = frozenset({".git", "__pycache__"})  # VCS data and bytecode: never needed
SYSTEM_PREFIXES = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/opt/", "/nix/")
SLOW_COPY_SECONDS = 1.0  # a copy this slow is worth a line in the run's log


@dataclass
class CopyReport:
    """What :func:`copy_project` copied, what it left out, and how long it took."""

    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)  # "relative/path (why)"

    def note(self) -> str | None:
        """A log line for the run when something was left out or the copy was slow."""
        if not self.skipped and self.seconds < SLOW_COPY_SECONDS:
            return None
        text = (
            f"[project copied in {self.seconds * 1000:.0f} ms: {self.files} files,"
            f" {self.bytes / 1e6:.1f} MB"
        )
        if self.skipped:
            shown = "; ".join(self.skipped[:20])
            more = f"; and {len(self.skipped) - 20} more" if len(self.skipped) > 20 else ""
            text += f"; skipped {len(self.skipped)}: {shown}{more}"
        return text + "]"


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _program(path: str) -> bool:
    """An executable file (an interpreter a virtualenv links to), not data or a directory."""
    return os.path.isfile(path) and os.access(path, os.X_OK)


def copy_project(source: Path, dest: Path, *, exclude: Path | None = None) -> CopyReport:
    """Copy ``source`` to ``dest`` (which must not exist); ``exclude`` is a directory never
    entered (the runs directory, should the project contain it)."""
    started = time.monotonic()
    report = CopyReport()
    root = os.path.realpath(source)
    excluded = os.path.realpath(exclude) if exclude is not None else None
    _copy_dir(root, str(dest), root, excluded, report)
    report.seconds = time.monotonic() - started
    return report


def _copy_dir(src: str, dst: str, root: str, excluded: str | None, report: CopyReport) -> None:
    os.makedirs(dst)
    try:
        entries = sorted(os.scandir(src), key=lambda entry: entry.name)
    except OSError as exc:
        report.skipped.append(f"{os.path.relpath(src, root)}/ (unreadable: {exc.strerror})")
        return
    for entry in entries:
        if entry.name in SKIPPED_NAMES:
            continue
        rel = os.path.relpath(entry.path, root)
        target = os.path.join(dst, entry.name)
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                _copy_link(entry.path, target, rel, root, report)
            elif stat.S_ISDIR(mode):
                if excluded is not None and entry.path == excluded:
                    continue
                _copy_dir(entry.path, target, root, excluded, report)
            elif stat.S_ISREG(mode):
                shutil.copy2(entry.path, target, follow_symlinks=False)
                report.files += 1
                report.bytes += entry.stat(follow_symlinks=False).st_size
            else:  # named pipe, socket, device: nothing an app can be shipped with
                report.skipped.append(f"{rel} (special file)")
        except OSError as exc:
            report.skipped.append(f"{rel} (unreadable: {exc.strerror or exc})")


def _copy_link(path: str, target: str, rel: str, root: str, report: CopyReport) -> None:
    raw = os.readlink(path)
    here = os.path.dirname(path)
    resolved = os.path.realpath(path)  # every link on the way followed; loops end it
    lexical = os.path.normpath(os.path.join(here, raw))
    if _within(resolved, root):
        if not os.path.isabs(raw) and _within(lexical, root):
            os.symlink(raw, target)  # already relative and inside: kept as it is
        else:  # absolute (would lead into the original) or a detour: re-pointed
            os.symlink(os.path.relpath(resolved, here), target)
    elif resolved.startswith(SYSTEM_PREFIXES) or _program(resolved):
        os.symlink(raw, target)  # e.g. .venv/bin/python -> /usr/bin/python3 or ~/.pyenv/…
    else:
        report.skipped.append(f"{rel} (symlink to {raw}, outside the project)")
