"""Find stack traces in log text and reduce them to the failure that matters.

These families are understood (the last five in their own modules: gotraces, rusttraces,
rubytraces, phptraces, dotnettraces):

* Python tracebacks, including chained ones ("During handling of the above exception…",
  "The above exception was the direct cause…"), a bare ``SyntaxError`` report and exception
  groups (:mod:`console.explain.pytraces`).  The exception reported is the last one
  printed; earlier ones go to ``causes``.
* Node.js errors: ``Name: message`` + ``at name (file:line:col)`` frames, the errno ``code``
  block (``EADDRINUSE``), ``[cause]:`` chains and unhandled promise rejections.
* JVM / Kotlin: ``Caused by:`` chains (the innermost cause is reported), ``... N more``,
  ``Suppressed:`` blocks (skipped), Reactor checkpoints, and frames glued onto one line.
* Go panics, Rust panics, Ruby backtraces, PHP fatal errors and .NET exceptions.

A log prefix repeated on every line of a trace (a timestamp, ``app-1  | ``) is cut
(:mod:`console.explain.tracelines`).  Frames are stored innermost first, the reported
exception's frames before those of the exceptions around it.  :func:`mark_app_frames`
decides which frames are the application's own, from a JVM package prefix, a project
path, or automatically.
"""

from __future__ import annotations

import re

from console.explain.appframes import is_library_path, is_proxy_frame, mark_app_frames
from console.explain.dotnettraces import INNER, is_dotnet_frame, parse_dotnet
from console.explain.gotraces import GOROUTINE, parse_go
from console.explain.phptraces import is_php_error, parse_php
from console.explain.pytraces import (
    is_syntax_location,
    parse_group,
    parse_python,
    parse_python_syntax,
)
from console.explain.rubytraces import FRAME as RUBY_FRAME
from console.explain.rubytraces import REVERSED as RUBY_REVERSED
from console.explain.rubytraces import parse_ruby
from console.explain.rusttraces import PANIC as RUST_PANIC
from console.explain.rusttraces import is_error_with_backtrace, parse_rust
from console.explain.tracelines import (
    GROUP_START,
    PY_START,
    Block,
    chain_failure,
    clean_lines,
    log_prefix,
)
from console.model import Failure, Frame

__all__ = [
    "extract_failure",
    "is_library_path",
    "is_proxy_frame",
    "mark_app_frames",
    "parse_traces",
]

# --- JVM ---------------------------------------------------------------------------------
# ``at pkg.Class.method(Source.kt:12)``; no space before "(", may be glued to the previous
# frame's ")".  Module prefixes (``java.base/``, ``app//``) precede the class name.
_JVM_FRAME = re.compile(
    r"(?<![\w$])at\s+(?P<loc>(?:[\w.$-]*/+)?[\w$<>-]+(?:\.[\w$<>-]+)+)\((?P<src>[^()]*)(?:\)|$)"
)
_JVM_HEADER = re.compile(
    r"^(?P<cls>(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*|[A-Z][\w$]*(?:Exception|Error|Throwable))"
    r"(?::\s?(?P<msg>.*))?$"
)
_JVM_THREAD = re.compile(r'^Exception in thread "[^"]*"\s+')
_JVM_MORE = re.compile(r"^\s*\.\.\. \d+ (?:more|common frames omitted)")
_JVM_CAUSED = re.compile(r"^\s*Caused by:\s*(?P<rest>.*)$")
_JVM_SUPPRESSED = re.compile(r"^(?P<indent>\s*)Suppressed:\s")
_JVM_CUT_FRAME = re.compile(r"^at (?:[\w$]+\.){2,}[\w$]*$")
_JVM_LAMBDA_ID = re.compile(r"(\$\$Lambda(?:\$\d+)?)/(?:0x)?[0-9a-f]+")

# --- Node --------------------------------------------------------------------------------
# Matched against the stripped line without a trailing "{" (see _node_frame_match); each
# part ends on a non-space character, so matching is linear (a lazy name followed by
# ``\s*\{?\s*$`` backtracked for minutes on a long run of spaces).
# The name may hold parentheses (``app.(anonymous function) [as get]``): the location is
# the last parenthesised group, without parentheses of its own.
_NODE_FRAME = re.compile(
    r"at\s+(?:(?P<name>\S.*?)\s?\((?P<loc>[^()]*)\)|(?P<bare>[^()\s](?:[^()]*[^()\s])?))"
)
_NODE_LOC = re.compile(r"^(?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?$")
_NODE_HEADER = re.compile(
    r"^(?:Uncaught\s+)?(?P<name>[A-Za-z_$][\w$.]*(?:Error|Exception)|Error)"
    r"(?:\s+\[(?P<code>[A-Z][A-Z0-9_]*)\])?(?::\s?(?P<msg>.*))?$"
)
# The message is greedy and trimmed of "] {" afterwards (linear on long lines).
_NODE_REJECTION = re.compile(r"^\[(?P<name>UnhandledPromiseRejection\w*):\s?(?P<msg>.*)$")
# Warnings printed before the error line by Node 6-14 and by some process managers.
# Next.js marks server errors with "⨯ ".
_NODE_WARNING = re.compile(
    r"^(?:\(node:\d+\) \w*Warning: |Unhandled promise rejection \(rejection id: \d+\): |⨯ )"
)
_NODE_CODE = re.compile(r"^\s*code:\s*['\"](?P<code>[\w.-]+)['\"]")
_NODE_CAUSE = re.compile(r"^\s*\[cause\]:\s*(?P<rest>.*)$")
_ERRNO = re.compile(r"^(?:\w+ )?(?P<code>E[A-Z]{2,})\b")

_HEADER_LOOKBACK = 8


# --- JVM ---------------------------------------------------------------------------------


def _jvm_frame(loc: str, src: str, raw: str) -> Frame:
    # "Foo$$Lambda$120/1093110206.get" names a lambda class; the "/…" is its id, not a module.
    loc = _JVM_LAMBDA_ID.sub(r"\1", loc)
    qualified = loc.rsplit("/", 1)[-1]  # drop "java.base/" or "app//"
    cls, _, method = qualified.rpartition(".")
    simple = cls.rsplit(".", 1)[-1]
    file: str | None = None
    line: int | None = None
    if src and src not in ("Native Method", "Unknown Source"):
        name, sep, number = src.rpartition(":")
        if sep and number.isdigit():
            file, line = name, int(number)
        else:
            file = src
    return Frame(name=f"{simple}.{method}", file=file, line=line, module=cls, raw=raw)


def _jvm_header(text: str) -> tuple[str, str] | None:
    text = _JVM_THREAD.sub("", text.strip())
    match = _JVM_HEADER.match(text)
    if not match:
        return None
    cls = match["cls"]
    if not cls.rsplit(".", 1)[-1][:1].isupper() and "." in cls:
        return None
    return cls, (match["msg"] or "").strip()


def _jvm_find_header(lines: list[str], first: int, floor: int) -> Block:
    """The exception line above the first frame (messages may span lines)."""
    # The header may share the line with the first frame (glued output).
    head = lines[first]
    glued = _JVM_FRAME.search(head)
    prefix = head[: glued.start()].strip() if glued else ""
    if prefix:
        found = _jvm_header(prefix)
        if found:
            return Block(*found)
    for j in range(first - 1, max(floor, first - _HEADER_LOOKBACK) - 1, -1):
        found = _jvm_header(lines[j])
        if found:
            return Block(*found)
    for j in range(first - 1, max(floor, first - 2) - 1, -1):
        # A log prefix before the exception: take the last qualified *Exception/*Error name.
        names = re.findall(
            r"((?:[a-z_$][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error|Throwable)\b)(?::\s?(.*))?",
            lines[j],
        )
        if names:
            cls, msg = names[0]
            return Block(cls, msg.strip())
    return Block("UnknownException")


def _parse_jvm(lines: list[str], start: int, floor: int) -> tuple[Failure, int]:
    blocks = [_jvm_find_header(lines, start, floor)]
    n = len(lines)
    i = start
    suppressed: int | None = None  # indentation of an open "Suppressed:" block
    checkpoint = False
    pending_header = False
    continuation = 0
    first = _JVM_FRAME.search(lines[start])
    # A log prefix on every line ("<timestamp> app | \tat ..."): cut it before reading
    # "Caused by:" and "... N more" lines.
    prefix = log_prefix(lines[start], first.group(0), spaces=False) if first else None
    while i < n:
        line = lines[i]
        cut = prefix.match(line) if prefix is not None else None
        if cut is not None:
            line = line[cut.end() :]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if checkpoint:
            if stripped.startswith("Original Stack Trace"):
                checkpoint = False
            i += 1
            continue
        if suppressed is not None:
            if stripped and indent > suppressed:
                i += 1
                continue
            suppressed = None
        glued = list(_JVM_FRAME.finditer(line))
        if glued:
            for m in glued:
                blocks[-1].frames.append(_jvm_frame(m["loc"], m["src"], m.group(0).strip()))
            pending_header = False
            i += 1
            continue
        if (
            _JVM_MORE.match(line)
            or stripped.startswith("at (Coroutine boundary")
            or (stripped and stripped.strip(".") == "")  # "...." where frames were cut
        ):
            i += 1  # kotlinx.coroutines' debug marker between the resumed and the caller frames
            continue
        caused = _JVM_CAUSED.match(line)
        if caused:
            found = _jvm_header(caused["rest"]) or (caused["rest"].split(":", 1)[0].strip(), "")
            blocks.append(Block(*found))
            pending_header = True
            continuation = 0
            i += 1
            continue
        sup = _JVM_SUPPRESSED.match(line)
        if sup:
            suppressed = len(sup["indent"])
            i += 1
            continue
        if "Error has been observed at the following site" in line:
            checkpoint = True
            i += 1
            continue
        if _JVM_CUT_FRAME.match(stripped):
            i += 1  # the last frame of a pasted trace, cut short: "at org.example.Serv"
            break
        if pending_header and stripped and continuation < 5:
            # Continuation of a multi-line "Caused by:" message.
            continuation += 1
            i += 1
            continue
        break
    failure = chain_failure(blocks, "jvm")
    return failure, i


# --- Node --------------------------------------------------------------------------------


def _node_frame_match(line: str) -> re.Match[str] | None:
    """The ``at ...`` frame on ``line`` (a trailing "{" opens a property block)."""
    text = line.strip()
    if not text.startswith("at"):
        return None
    if text.endswith("{"):
        text = text[:-1].rstrip()
    return _NODE_FRAME.fullmatch(text)


def _node_frame(match: re.Match[str]) -> Frame:
    name = (match["name"] or "").strip()
    loc = (match["loc"] if match["loc"] is not None else match["bare"] or "").strip()
    if match["loc"] is None and loc.startswith("async "):
        loc = loc[len("async ") :]  # "at async file:///x.mjs:14:1": a nameless async frame
    if loc.endswith("{"):
        loc = loc[:-1].rstrip()
    if loc.startswith("file://"):
        loc = loc[len("file://") :]
        if re.match(r"^/[A-Za-z]:/", loc):  # file:///C:/proj/x.js
            loc = loc[1:]
    file: str | None = loc or None
    line: int | None = None
    located = _NODE_LOC.match(loc)
    if located:
        file, line = located["file"], int(located["line"])
    if not name:
        name = "<anonymous>"
    return Frame(name=name, file=file, line=line, raw=match.group(0).strip())


def _node_header(text: str) -> Block | None:
    text = _NODE_WARNING.sub("", text.strip(), count=1)
    rejection = _NODE_REJECTION.match(text)
    if rejection:
        message = rejection["msg"].rstrip().removesuffix("{").rstrip().removesuffix("]")
        return Block(rejection["name"], message.strip())
    match = _NODE_HEADER.match(text)
    if not match:
        return None
    block = Block(match["name"], (match["msg"] or "").strip())
    block.code = match["code"]
    return block


def _node_find_header(lines: list[str], first: int, floor: int) -> Block:
    for j in range(first - 1, max(floor, first - _HEADER_LOOKBACK) - 1, -1):
        if j < floor:
            break
        block = _node_header(lines[j])
        if block:
            return block
    return Block("Error")


def _parse_node(lines: list[str], start: int, floor: int) -> tuple[Failure, int]:
    blocks = [_node_find_header(lines, start, floor)]
    n = len(lines)
    i = start
    emitted = False  # frames after "Emitted 'error' event ... at:" are event plumbing
    # "[UnhandledPromiseRejection: ...] {" opens its property block on the header line.
    in_props = start > floor and lines[start - 1].rstrip().endswith("{")
    while i < n:
        line = lines[i]
        stripped = line.strip()
        at = _node_frame_match(line)
        if at:
            if not emitted:
                blocks[-1].frames.append(_node_frame(at))
            if stripped.endswith("{"):
                in_props = True
            i += 1
            continue
        if stripped.startswith("Emitted 'error' event"):
            emitted = True
            i += 1
            continue
        if in_props or stripped.startswith("{"):
            in_props = True
            coded = _NODE_CODE.match(line)
            if coded and blocks[-1].code is None:
                blocks[-1].code = coded["code"]
            cause = _NODE_CAUSE.match(line)
            if cause:
                block = _node_header(cause["rest"].rstrip("{ ").rstrip())
                if block is None:
                    block = Block("Error", cause["rest"].strip())
                blocks.append(block)
                emitted = False
            if line.startswith("}"):
                in_props = False
                i += 1
                break
            i += 1
            continue
        break
    for block in blocks:
        errno = _ERRNO.match(block.message)
        code = block.code or (errno["code"] if errno else None)
        if code and block.exception == "Error":
            block.exception = code
    failure = chain_failure(blocks, "node")
    return failure, i


# --- scanning ----------------------------------------------------------------------------


def _scan(lines: list[str]) -> list[Failure]:
    failures: list[Failure] = []
    n = len(lines)
    i = 0
    floor = 0  # headers are never searched above the end of the previous trace
    while i < n:
        line = lines[i]
        if GROUP_START in line:
            failure, nxt = parse_group(lines, i, _scan)
        elif PY_START in line and i + 1 < n and RUBY_REVERSED.match(lines[i + 1]):
            failure, nxt = parse_ruby(lines, i + 1, floor)  # Ruby 2.5-2.7, outermost first
        elif PY_START in line:
            failure, nxt = parse_python(lines, i)
        elif 'File "' in line and is_syntax_location(line):
            failure, nxt = parse_python_syntax(lines, i)
        elif line.startswith("[UnhandledPromiseRejection"):
            failure, nxt = _parse_node(lines, i + 1, i)
        elif "goroutine " in line and GOROUTINE.match(line):
            failure, nxt = parse_go(lines, i, floor)
        elif ("panicked at" in line and RUST_PANIC.match(line)) or (
            line.startswith("Error: ") and is_error_with_backtrace(lines, i)
        ):
            failure, nxt = parse_rust(lines, i)
        elif ("rror" in line or "Uncaught" in line) and is_php_error(line):
            failure, nxt = parse_php(lines, i)
        elif ":in " in line and RUBY_FRAME.match(line):
            failure, nxt = parse_ruby(lines, i, floor)
        elif ("at " in line and is_dotnet_frame(line)) or ("--->" in line and INNER.match(line)):
            failure, nxt = parse_dotnet(lines, i, floor)
        elif "at " in line and _JVM_FRAME.search(line):
            failure, nxt = _parse_jvm(lines, i, floor)
        elif _node_frame_match(line):
            failure, nxt = _parse_node(lines, i, floor)
        else:
            i += 1
            continue
        if failure is not None:
            failures.append(failure)
            floor = nxt
        i = max(nxt, i + 1)
    return failures


# --- public API --------------------------------------------------------------------------


def parse_traces(text: str) -> list[Failure]:
    """Every stack trace found in ``text``, in order, app frames detected automatically.

    Each chained trace is one :class:`Failure` whose ``exception``/``message`` are the
    reported (root) exception, ``causes`` the others, outermost first.
    """
    if not text:
        return []
    failures = _scan(clean_lines(text))
    for failure in failures:
        mark_app_frames(failure)
    return failures


def extract_failure(text: str, *, app: str | None = None) -> Failure | None:
    """The last trace in ``text`` reduced to its root cause, frames marked app or not.

    Args:
        text: log or trace text (ANSI colours are ignored).
        app: a JVM package prefix or a project path; detected automatically when None.

    Returns:
        The failure, or None when the text holds no recognisable trace.
    """
    if not text:
        return None
    failures = _scan(clean_lines(text))
    if not failures:
        return None
    return mark_app_frames(failures[-1], app)
