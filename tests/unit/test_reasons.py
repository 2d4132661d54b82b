"""The line of a failed install that names the real error, not the package manager's
boilerplate."""

from __future__ import annotations

from console.reasons import real_error_line, relative_to_project

NPM_404 = """\
npm error code E404
npm error 404 Not Found - GET https://registry.npmjs.org/expresss - Not found
npm error 404
npm error 404  'expresss@^4.0.0' is not in this registry.
npm error 404
npm error 404 Note that you can also install from a
npm error 404 tarball, folder, http url, or git url.
npm notice New major version of npm available! 10.8.2 -> 11.0.0
npm error A complete log of this run can be found in: /tmp/x/.npm/_logs/2026-debug-0.log
"""

PIP_MISSING = """\
ERROR: Could not find a version that satisfies the requirement flaskk==9 (from versions: none)
ERROR: No matching distribution found for flaskk==9

[notice] A new release of pip is available: 23.2.1 -> 26.3
[notice] To update, run: pip install --upgrade pip
"""


def test_npm_quotes_the_first_real_error_line() -> None:
    assert real_error_line(NPM_404.splitlines()) == (
        "npm error 404 Not Found - GET https://registry.npmjs.org/expresss - Not found"
    )


def test_pip_quotes_its_most_specific_error_not_the_upgrade_notice() -> None:
    assert real_error_line(PIP_MISSING.splitlines()) == (
        "ERROR: No matching distribution found for flaskk==9"
    )


def test_other_tools_fall_back_to_the_last_error_looking_line() -> None:
    lines = ["Resolving deps", "fatal: error: cannot open lib.so", "done with 1 problem"]
    assert real_error_line(lines) == "fatal: error: cannot open lib.so"
    assert real_error_line(["building", "step 2"]) == "step 2"
    assert real_error_line(["npm notice hi", ""]) == ""


def test_sandbox_paths_are_shown_relative_to_the_project() -> None:
    text = "No such file: /data/runs/abc/project/src/app.py (cwd /data/runs/abc/project)"
    assert relative_to_project(text, "/data/runs/abc/project") == (
        "No such file: src/app.py (cwd .)"
    )
