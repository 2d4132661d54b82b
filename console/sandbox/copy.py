"""Copying a project into a run's directory so that the copy never leads outside itself.

``shutil.copytree`` is not enough: a named pipe or a socket file in the project makes it
fail (and a pipe could block), an absolute symlink into the project would let the app
write into the original, and a symlink to ``~/.ssh`` or ``/etc`` would put the host's
files in reach of the app as if they were the project's.  Here symlinks whose target lies
in the project are re-pointed at the copy (relative, so they never lead back), links to
system locations (``/usr``, ``/opt`` …) or to executable files (a virtualenv's
interpreter) are kept, and every other link, special file or unreadable file is skipped
and listed in the report.

A copy has limits (total bytes, file count), checked by a quick walk before anything is
copied, so ``verdict check /usr`` is refused in a fraction of a second; system directories
(``/``, ``/proc``, ``/sys``, ``/dev``) and Verdict's own data directory are refused
outright; and a copy told to stop (Ctrl-C) stops at its next file.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from console.errors import UsageError

SKIPPED_NAMES = frozenset({".git", "__pycache__"})  # VCS data and bytecode: never needed
SYSTEM_PREFIXES = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib32/", "/lib64/", "/opt/", "/nix/")
SLOW_COPY_SECONDS = 1.0  # a copy this slow is worth a line in the run's log
REFUSED_ROOTS = ("/proc", "/sys", "/dev")  # never a project; reading them can hang or explode


class CopyRefused(UsageError):
    """The project cannot be copied: a system directory, or larger than the limits."""


class CopyStopped(Exception):
    """The copy was told to stop (Ctrl-C, a cancelled run)."""


@dataclass(frozen=True)
class CopyLimits:
    """How much of a project a run may copy."""

    max_bytes: int = 1024 * 1024 * 1024
    max_files: int = 100_000

    def check(self, files: int, size: int, source: Path | str) -> None:
        """Raise :class:`CopyRefused` once ``files`` or ``size`` is past a limit."""
        if files > self.max_files:
            raise CopyRefused(
                f"{source} has more than {self.max_files} files to copy"
                " (sandbox.max_copy_files); pass a project directory"
            )
        if size > self.max_bytes:
            raise CopyRefused(
                f"{source} holds more than {self.max_bytes // (1024 * 1024)} MB to copy"
                " (sandbox.max_copy_mb); pass a project directory"
            )


def refuse_source(source: Path, data_dir: Path | None = None) -> None:
    """Refuse a project that is a system directory or inside Verdict's data directory.

    Raises:
        CopyRefused: ``/``, ``/proc``, ``/sys``, ``/dev`` (or inside them), or the data dir.
    """
    real = os.path.realpath(source)
    if real == "/" or any(_within(real, root) for root in REFUSED_ROOTS):
        raise CopyRefused(f"refusing to copy {real} as a project: it is a system directory")
    if data_dir is not None:
        data = os.path.realpath(data_dir)
        if _within(real, data):
            raise CopyRefused(
                f"refusing to copy {real} as a project: it is Verdict's data directory"
            )


def measure(source: Path | str, limits: CopyLimits, stop: threading.Event | None = None) -> None:
    """Walk ``source`` as the copy would (stat only), raising as soon as a limit is passed."""
    files = size = 0
    pending = [os.fspath(source)]
    while pending:
        if stop is not None and stop.is_set():
            raise CopyStopped
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue  # the copy reports it
        for entry in entries:
            if entry.name in SKIPPED_NAMES:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                pending.append(entry.path)
            elif stat.S_ISREG(info.st_mode):
                files += 1
                size += info.st_size
                limits.check(files, size, source)


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


@dataclass
class _Copy:
    root: str
    excluded: str | None
    report: CopyReport
    limits: CopyLimits
    stop: threading.Event | None


def copy_project(
    source: Path,
    dest: Path,
    *,
    exclude: Path | None = None,
    limits: CopyLimits | None = None,
    stop: threading.Event | None = None,
) -> CopyReport:
    """Copy ``source`` to ``dest`` (which must not exist); ``exclude`` is a directory never
    entered (the runs directory, should the project contain it).

    Raises:
        CopyRefused: a system directory, or more than ``limits`` allow (nothing copied).
        CopyStopped: ``stop`` was set; the partial copy is the caller's to remove.
    """
    started = time.monotonic()
    limits = limits or CopyLimits()
    refuse_source(source)
    root = os.path.realpath(source)
    excluded = os.path.realpath(exclude) if exclude is not None else None
    measure(root, limits, stop)
    job = _Copy(root, excluded, CopyReport(), limits, stop)
    _copy_dir(root, str(dest), job)
    job.report.seconds = time.monotonic() - started
    return job.report


def _copy_dir(src: str, dst: str, job: _Copy) -> None:
    root, excluded, report = job.root, job.excluded, job.report
    os.makedirs(dst)
    try:
        entries = sorted(os.scandir(src), key=lambda entry: entry.name)
    except OSError as exc:
        report.skipped.append(f"{os.path.relpath(src, root)}/ (unreadable: {exc.strerror})")
        return
    for entry in entries:
        if entry.name in SKIPPED_NAMES:
            continue
        if job.stop is not None and job.stop.is_set():
            raise CopyStopped
        rel = os.path.relpath(entry.path, root)
        target = os.path.join(dst, entry.name)
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                _copy_link(entry.path, target, rel, root, report)
            elif stat.S_ISDIR(mode):
                if excluded is not None and entry.path == excluded:
                    continue
                _copy_dir(entry.path, target, job)
            elif stat.S_ISREG(mode):
                # Checked again as it goes: the tree may grow after it was measured.
                job.limits.check(
                    report.files + 1, report.bytes + entry.stat(follow_symlinks=False).st_size, root
                )
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
