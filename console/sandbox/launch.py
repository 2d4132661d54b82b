"""Tiny launcher: apply resource limits to itself, then exec the sandboxed command.

Run as ``python -I -S launch.py --nofile N --fsize BYTES --data BYTES -- CMD...``.  Limits are
set in the child after ``fork``/``exec`` rather than through ``preexec_fn`` (which is unsafe
while the parent has threads).  The script uses only the standard library and is started
with ``-S`` so it costs a few milliseconds.  Address-space limits are deliberately not used:
Node and the JVM reserve huge virtual ranges and fail to start under ``RLIMIT_AS``.
"""

from __future__ import annotations

import os
import resource
import sys

_LIMITS = {
    "--nofile": resource.RLIMIT_NOFILE,
    "--fsize": resource.RLIMIT_FSIZE,
    "--data": resource.RLIMIT_DATA,
}


def apply_limits(argv: list[str]) -> list[str]:
    """Set the limits named in ``argv`` and return the command after ``--``."""
    args = list(argv)
    while args and args[0] != "--":
        name, value = args[0], args[1]
        args = args[2:]
        limit = _LIMITS[name]
        wanted = int(value)
        _soft, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        resource.setrlimit(limit, (wanted, wanted))
    return args[1:]


def main() -> None:
    """Entry point: limits, then ``execvp`` (the process keeps its pid)."""
    command = apply_limits(sys.argv[1:])
    if not command:
        sys.stderr.write("launch: no command\n")
        sys.exit(2)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
