"""PHP fatal errors and uncaught exceptions.

* ``PHP Fatal error:  Uncaught PDOException: MESSAGE in /app/db.php:12`` then
  ``Stack trace:``, ``#0 /app/db.php(12): PDO->query('…')`` … ``#3 {main}`` and
  ``thrown in /app/db.php on line 12`` — also printed on one line, as PHP does in HTML
  output and some log collectors do;
* ``Uncaught exception 'PDOException' with message '…' in /app/x.php:35`` (PHP 5);
* ``PHP Fatal error:  Call to a member function x() on null in /app/x.php on line 9``.

PHP lists, in each ``#N file(line): call()`` entry, the call made *at* that line, so the
frames are re-paired: the function running at ``#N``'s location is the one called by
``#N+1`` (``{main}`` at the end), and the innermost frame is the throw location, named by
``#0``'s call (left out when ``#0`` points at the throw location itself: an internal
function such as ``PDO->query`` threw there).
"""

from __future__ import annotations

import re

from console.explain.tracelines import Block, chain_failure
from console.model import Failure, Frame

_UNCAUGHT = re.compile(
    r"Uncaught (?P<exc>[A-Za-z_\\][\w\\]*)(?::\s*(?P<msg>.*))? in (?P<file>\S+?):(?P<line>\d+)"
    r"(?=\s|,|$)"
)
_UNCAUGHT_OLD = re.compile(
    r"Uncaught exception '(?P<exc>[\w\\]+)' with message '(?P<msg>.*)' in (?P<file>\S+?):"
    r"(?P<line>\d+)"
)
_FATAL = re.compile(
    r"(?:PHP )?(?P<kind>Fatal error|Parse error): +(?P<msg>.*) in (?P<file>\S+) on line "
    r"(?P<line>\d+)"
)
_ENTRY = re.compile(
    r"^\s*#(?P<n>\d+) (?:(?P<file>\S.*?)\((?P<line>\d+)\)|\[internal function\]): ?(?P<call>.*)$"
)
_MAIN = re.compile(r"^\s*#\d+ \{main\}\s*$")
_ONE_LINE_SPLIT = re.compile(r" (?=Stack trace:)|(?<=Stack trace:) | (?=#\d+ )| (?=thrown in )")


def is_php_error(line: str) -> bool:
    """Whether ``line`` opens a PHP fatal error or uncaught exception."""
    if "Uncaught " in line:
        match = _UNCAUGHT.search(line) or _UNCAUGHT_OLD.search(line)
        return match is not None and (
            "PHP " in line
            or "Fatal error" in line
            or ".php" in match["file"].lower()
            or "Stack trace:" in line
            or line.lstrip().startswith("Uncaught ")
        )
    return "error:" in line and _FATAL.search(line) is not None


def _call_name(call: str) -> str:
    call = call.strip()
    return call.split("(", 1)[0].strip() or call


def parse_php(lines: list[str], start: int) -> tuple[Failure | None, int]:
    """The PHP error whose header is ``lines[start]``; returns (failure, next index)."""
    head = lines[start]
    body = lines[start + 1 : start + 400]
    if "Stack trace:" in head and "#0" in head:
        parts = _ONE_LINE_SPLIT.split(head)
        head, body = parts[0], parts[1:]
    match = _UNCAUGHT.search(head) or _UNCAUGHT_OLD.search(head)
    fatal = _FATAL.search(head) if match is None else None
    if match:
        block = Block(match["exc"].lstrip("\\"), (match["msg"] or "").strip())
        thrown = (match["file"], int(match["line"]))
    elif fatal:
        block = Block(fatal["kind"], fatal["msg"].strip())
        thrown = (fatal["file"], int(fatal["line"]))
    else:
        return None, start + 1
    entries: list[tuple[str | None, int | None, str]] = []
    saw_main = False
    used = 0
    for k, text in enumerate(body):
        if text.strip() == "Stack trace:":
            continue
        if _MAIN.match(text):
            saw_main = True
            used = k + 1
            break
        entry = _ENTRY.match(text)
        if not entry:
            break
        line = int(entry["line"]) if entry["line"] else None
        entries.append((entry["file"], line, _call_name(entry["call"])))
        used = k + 1
    block.frames = _pair(thrown, entries, saw_main)
    consumed = start + 1 if lines[start] != head else start + 1 + used
    return chain_failure([block], "php"), consumed


def _pair(
    thrown: tuple[str, int], entries: list[tuple[str | None, int | None, str]], saw_main: bool
) -> list[Frame]:
    if not entries:
        return [Frame(name="<unknown>", file=thrown[0], line=thrown[1])]
    calls = [call for _, _, call in entries]
    frames: list[Frame] = []
    first_file, first_line, _ = entries[0]
    if (first_file, first_line) != thrown:
        frames.append(Frame(name=calls[0], file=thrown[0], line=thrown[1]))
    for k, (file, line, _) in enumerate(entries):
        caller = calls[k + 1] if k + 1 < len(calls) else ("{main}" if saw_main else "<unknown>")
        frames.append(Frame(name=caller, file=file, line=line))
    return frames
