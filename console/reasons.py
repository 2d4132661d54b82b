"""Pick the line of a failed command's output that names the real error.

Package managers end a failure with boilerplate (``npm error A complete log of this run can
be found in: …``, ``npm notice``, pip's upgrade notice); the reason of an ``install_failed``
verdict quotes the line that says what went wrong instead.
"""

from __future__ import annotations

import re

_BOILERPLATE = re.compile(
    r"^\s*(npm (error|ERR!) A complete log of this run|npm (notice|warn|WARN)\b"
    r"|\[notice\]|npm (error|ERR!) (code|errno|syscall|path|command|cwd)\b"
    r"|npm (error|ERR!)\s*(\d{3})?\s*$|npm (error|ERR!) (Log files|\s*/.*_logs/)"
    r"|WARNING: |DEPRECATION: )",
    re.I,
)
_PIP_ERROR = re.compile(r"^\s*ERROR: ")
_NPM_ERROR = re.compile(r"^\s*npm (error|ERR!) ")
_GENERIC_ERROR = re.compile(r"\b(error|Error|ERROR|failed|not found|No such file)\b")


def real_error_line(lines: list[str]) -> str:
    """The most telling line of a failed install's output ("" when there is none).

    pip: its last ``ERROR:`` line (the most specific); npm: its first ``npm error`` line
    that is not a code, a path or the pointer to the debug log; otherwise the last line that
    looks like an error, else the last line that is not boilerplate.
    """
    useful = [line.strip() for line in lines if line.strip() and not _BOILERPLATE.match(line)]
    pip = [line for line in useful if _PIP_ERROR.match(line)]
    if pip:
        return pip[-1]
    npm = [line for line in useful if _NPM_ERROR.match(line)]
    if npm:
        return npm[0]
    errors = [line for line in useful if _GENERIC_ERROR.search(line)]
    if errors:
        return errors[-1]
    return useful[-1] if useful else ""


def relative_to_project(text: str, project_dir: str) -> str:
    """``text`` with the sandbox's copy of the project shown as paths relative to it."""
    prefix = project_dir.rstrip("/") + "/"
    return text.replace(prefix, "").replace(project_dir.rstrip("/"), ".")


__all__ = ["real_error_line", "relative_to_project"]
