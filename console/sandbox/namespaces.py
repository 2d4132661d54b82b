"""Whether runs can be isolated in Linux namespaces here, and what a run's isolation needs.

The launcher (``launch.py``) does the namespace work; this module decides, once per process,
whether it can: it runs the launcher itself with ``--isolate`` on ``true``, so the answer
comes from the very code path the runs take (no user namespaces, a seccomp profile that
forbids ``unshare``, not Linux …).  Where it cannot, runs fall back to the plain
process-group sandbox and say so in one line: the isolation is recorded with every run.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import zlib
from functools import lru_cache
from pathlib import Path

LAUNCHER = Path(__file__).with_name("launch.py")
ISOLATED = "namespaces"
PROBE_TIMEOUT = 10.0
# Per-run user ids when the harness is root: far above any real account, one per run, so
# two runs can neither signal each other's processes nor open each other's files.
RUN_UID_BASE = 2_000_000_000
RUN_UID_SPAN = 100_000_000
_PR_SET_DUMPABLE = 4


@lru_cache(maxsize=4)
def unavailable(network_none: bool = False) -> str:
    """Why namespaces cannot be used here ("" when they can)."""
    if not sys.platform.startswith("linux"):
        return f"not Linux ({sys.platform})"
    if network_none and os.geteuid() != 0:
        # The prober enters the app's network namespace, which takes CAP_SYS_ADMIN.
        return "network none needs a harness running as root"
    argv = [sys.executable, "-I", "-S", str(LAUNCHER), "--isolate"]
    if network_none:
        argv.append("--network-none")
    try:
        done = subprocess.run(
            [*argv, "--", "true"],
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the namespace probe failed: {exc}"
    if done.returncode == 0:
        return ""
    said = done.stderr.decode(errors="replace").strip().splitlines()
    reason = said[-1].removeprefix("launch: ") if said else f"exit status {done.returncode}"
    return f"namespaces not permitted ({reason})"


def describe(reason: str) -> str:
    """The isolation recorded with a run: ``namespaces`` or ``none: <why>``."""
    return ISOLATED if not reason else f"none: {reason}"


def run_uid(run_id: str) -> int | None:
    """The unprivileged user a run's processes become when the harness is root, else None."""
    if os.geteuid() != 0:
        return None
    return RUN_UID_BASE + zlib.crc32(run_id.encode()) % RUN_UID_SPAN


def hand_over(workdir: Path, uid: int) -> None:
    """Give the run's directory to ``uid`` (and to nobody else: mode 0700)."""
    os.chown(workdir, uid, uid)
    os.chmod(workdir, 0o700)
    for root, dirs, files in os.walk(workdir):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, uid)


def protect_harness() -> bool:
    """Make this process non-dumpable: its ``/proc/<pid>/environ`` (API keys) and memory
    are then readable by root only, not by the projects it runs under the same user."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False
