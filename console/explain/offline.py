"""Offline triage: a deterministic explanation from the exception and known patterns.

Used when no LLM is configured or ``--offline`` is given.  The answer has the same shape as
the model's (action, reason, guide, inference, confidence); the first rule that matches
wins, and a generic rule always matches last.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from console.model import Explanation, Failure, Frame


@dataclass
class TriageInput:
    """What the triage looks at."""

    failure: Failure | None
    log: str = ""
    exit_class: str | None = None
    verdict: str | None = None
    operation: str | None = None  # "GET /users/{id} (Find user)"
    service: str | None = None

    @property
    def text(self) -> str:
        """Exception, message and causes in one searchable string."""
        if self.failure is None:
            return ""
        head = f"{self.failure.exception}: {self.failure.message}"
        return "\n".join([head, *self.failure.causes])

    def first_app_frame(self) -> Frame | None:
        """The innermost application frame, if any."""
        frames = self.failure.app_frames() if self.failure else []
        return frames[0] if frames else None

    def where(self) -> str:
        """``name (file:line)`` of the innermost app frame, or a neutral phrase."""
        frame = self.first_app_frame()
        if frame is None:
            return "outside the application's own code"
        location = f"{frame.file}:{frame.line}" if frame.line else (frame.file or "")
        return f"in {frame.name} ({location})" if location else f"in {frame.name}"


@dataclass(frozen=True)
class Rule:
    """A known failure pattern and the explanation it gives."""

    name: str
    matches: Callable[[TriageInput], re.Match[str] | bool | None]  # see Matcher
    reason: Callable[[TriageInput, re.Match[str] | None], str]
    guide: Callable[[TriageInput, re.Match[str] | None], str]
    confidence: float


Matcher = Callable[[TriageInput], "re.Match[str] | bool | None"]


def _search(pattern: str, *, log: bool = True, flags: int = re.I) -> Matcher:
    regex = re.compile(pattern, flags)

    def matches(data: TriageInput) -> re.Match[str] | None:
        return regex.search(data.text) or (regex.search(data.log) if log else None)

    return matches


def _group(match: re.Match[str] | None, default: str = "it") -> str:
    if match is None:
        return default
    for value in match.groups():
        if value:
            return value
    return default


def _null_in_app(data: TriageInput) -> re.Match[str] | None:
    if data.first_app_frame() is None:
        return None
    return re.search(
        r"NullPointerException|KotlinNullPointerException|'NoneType' object (?:has no attribute|is "
        r"not subscriptable|is not iterable|is not callable)|Cannot read propert(?:y|ies) of "
        r"(?:undefined|null)|(?:undefined|null) is not an object|Cannot destructure",
        data.text,
    )


RULES: list[Rule] = [
    Rule(
        "port-in-use",
        _search(
            r"EADDRINUSE|Address already in use|BindException|Port (\d+) (?:was|is) already in use"
            r"|\[Errno 98\]|\[Errno 48\]"
        ),
        lambda d, m: (
            "The app tried to listen on a network port that another process already "
            "uses, so it could not start its server."
        ),
        lambda d, m: (
            "Stop the other process using the port, or start the app on a free port: "
            "read the port from the PORT environment variable instead of hard-coding it."
        ),
        0.9,
    ),
    Rule(
        "out-of-memory",
        lambda d: (
            re.search(
                r"MemoryError|OutOfMemoryError|heap out of memory|Cannot allocate memory"
                r"|Killed\s*$",
                d.text + "\n" + d.log[-2000:],
                re.I | re.M,
            )
            or d.exit_class == "oom"
        ),
        lambda d, m: "The app used more memory than it is allowed and was stopped.",
        lambda d, m: (
            "Look for data loaded all at once (large files, unbounded lists, caches) "
            "and process it in smaller pieces, or raise the memory limit if the need is real."
        ),
        0.8,
    ),
    Rule(
        "missing-module",
        _search(
            r"No module named '?([\w.]+)'?|Cannot find (?:module|package) '([^']+)'"
            r"|ClassNotFoundException:? ?([\w.$]+)?|NoClassDefFoundError:? ?([\w/$.]+)?"
            r"|MODULE_NOT_FOUND|ERR_MODULE_NOT_FOUND"
        ),
        lambda d, m: (
            f"A library the app imports ({_group(m, 'a dependency')}) is not installed "
            "where the app runs, so the app stopped while loading."
        ),
        lambda d, m: (
            f"Add {_group(m, 'the missing package')} to the project's dependencies "
            "(requirements.txt, pyproject.toml, package.json or the build file) and make sure the "
            "install step runs before the app starts; check the name for typos."
        ),
        0.85,
    ),
    Rule(
        "command-not-found",
        lambda d: (
            re.search(
                r"(?:^|[\s:])([\w.+-]+): (?:command )?not found|spawn (\S+) ENOENT"
                r"|No such file or directory.*exec",
                d.text + "\n" + d.log[-4000:],
                re.M,
            )
            or d.exit_class == "command_not_found"
        ),
        lambda d, m: (
            f"The start command ran a program ({_group(m, 'a program')}) that is not "
            "installed or not on the PATH."
        ),
        lambda d, m: (
            "Install the program in the environment, use the right command name, or "
            "call it through the package manager (npx, python -m, ./gradlew)."
        ),
        0.85,
    ),
    Rule(
        "syntax-error",
        _search(
            r"\b(SyntaxError|IndentationError|TabError)\b|Unexpected token|"
            r"error: expecting|compilation error",
            log=False,
        ),
        lambda d, m: f"The code has a syntax error {d.where()}, so it cannot be loaded at all.",
        lambda d, m: (
            "Open the file at the line shown and fix the syntax (unclosed brackets or "
            "quotes, wrong indentation, a stray character); running a linter catches these early."
        ),
        0.9,
    ),
    Rule(
        "null-access",
        _null_in_app,
        lambda d, m: (
            f"The code used a value that was empty (null/None/undefined) {d.where()}: "
            "something it expected to be there was missing."
        ),
        lambda d, m: (
            "Find where that value should come from (request data, database row, "
            "configuration) and handle the missing case: validate the input or return a clear "
            "error instead of crashing."
        ),
        0.7,
    ),
    Rule(
        "missing-env",
        _search(
            r"KeyError: '([A-Z][A-Z0-9_]{2,})'|environ(?:ment)?\W+.*?'([A-Z][A-Z0-9_]{2,})'"
            r"|([A-Z][A-Z0-9_]{2,}) (?:is not set|must be set|is required)",
            log=False,
            flags=0,
        ),
        lambda d, m: (
            f"The setting {_group(m, 'an environment variable')} is missing, so the "
            "app could not read its configuration."
        ),
        lambda d, m: (
            f"Set {_group(m, 'the variable')} in the environment the app runs in "
            "(or give it a sensible default in the code)."
        ),
        0.75,
    ),
    Rule(
        "key-error",
        _search(r"\bKeyError\b:?\s*(.*)|NoSuchElementException|Missing key", log=False),
        lambda d, m: (
            f"The code looked up a key ({_group(m, 'a key')}) that is not in the data {d.where()}."
        ),
        lambda d, m: (
            "Check what the request or data actually contains; use a lookup with a "
            "default or validate the input and answer with a clear error when the key is absent."
        ),
        0.7,
    ),
    Rule(
        "connection-refused",
        _search(
            r"ECONNREFUSED|Connection refused|ConnectionRefusedError|ConnectException"
            r"|could not connect to server"
        ),
        lambda d, m: (
            "The app tried to reach another service (database, cache, API) and nothing "
            "was listening at that address."
        ),
        lambda d, m: (
            "Start the service it depends on, or fix its host and port in the "
            "configuration; when it runs in a container, localhost means the container itself."
        ),
        0.8,
    ),
    Rule(
        "host-not-found",
        _search(r"ENOTFOUND|UnknownHostException|gaierror|Name or service not known"),
        lambda d, m: "The app tried to reach a host name that could not be resolved.",
        lambda d, m: (
            "Check the host name in the configuration and the network/DNS available "
            "where the app runs."
        ),
        0.75,
    ),
    Rule(
        "file-not-found",
        _search(
            r"FileNotFoundError|NoSuchFileException|ENOENT|No such file or directory"
            r"(?:[:,]\s*'?([^'\s]+))?",
            log=False,
        ),
        lambda d, m: f"The app tried to open a file that does not exist {d.where()}.",
        lambda d, m: (
            "Make sure the file is part of the project (not ignored or generated "
            "elsewhere) and the path is relative to the right directory."
        ),
        0.75,
    ),
    Rule(
        "permission-denied",
        _search(r"PermissionError|EACCES|Permission denied|AccessDeniedException", log=False),
        lambda d, m: "The app was not allowed to use a file, directory or port it needed.",
        lambda d, m: (
            "Write only inside the project or a temporary directory and use ports "
            "above 1024; check file permissions."
        ),
        0.7,
    ),
    Rule(
        "index-out-of-range",
        _search(
            r"IndexError|IndexOutOfBounds|ArrayIndexOutOfBounds|RangeError"
            r"|index out of range",
            log=False,
        ),
        lambda d, m: (
            f"The code read past the end of a list or string {d.where()}: the data "
            "was shorter than it assumed (often empty)."
        ),
        lambda d, m: (
            "Check the length before reading by position, and reject input that is "
            "too short (for example an empty code or id) with a clear error."
        ),
        0.7,
    ),
    Rule(
        "not-found",
        _search(r"(\w*NotFound\w*)|DoesNotExist|EntityNotFound|NoResultFound|404", log=False),
        lambda d, m: (
            "The request asked for something that does not exist (for example a "
            "wrong or deleted id)."
        ),
        lambda d, m: (
            "Check the id or path the client sends; show a 'not found' message to the "
            "user for this error instead of a generic failure."
        ),
        0.65,
    ),
    Rule(
        "invalid-value",
        _search(
            r"ValueError|NumberFormatException|IllegalArgumentException|TypeError"
            r"|ValidationError|InvalidFormat|JSONDecodeError|SyntaxError: Unexpected",
            log=False,
        ),
        lambda d, m: f"A value had the wrong type or format {d.where()}.",
        lambda d, m: (
            "Check the request's fields and types against the API documentation and "
            "validate input before using it."
        ),
        0.55,
    ),
    Rule(
        "timeout",
        lambda d: (
            re.search(r"TimeoutError|ETIMEDOUT|SocketTimeoutException|timed out", d.text, re.I)
            or d.exit_class == "timeout"
        ),
        lambda d, m: (
            "Something took longer than allowed: a call to another service or the "
            "app's own start-up."
        ),
        lambda d, m: (
            "Find the slow step (a dependency that does not answer, a blocking loop) "
            "and make it faster or give it a timeout."
        ),
        0.5,
    ),
]

_GENERIC = Rule(
    "generic",
    lambda d: True,
    lambda d, m: (
        f"The app stopped with {d.failure.exception} {d.where()}"
        + (f": {d.failure.message}" if d.failure.message else ".")
        if d.failure
        else f"The app ended with '{d.verdict or 'an error'}'"
        + (f" (exit: {d.exit_class})" if d.exit_class else "")
        + " without a stack trace."
    ),
    lambda d, m: (
        "Read the error message and the first application frame listed; an "
        "explanation from a language model (without --offline) can say more."
    ),
    0.2,
)


def _action(data: TriageInput) -> str:
    if data.operation:
        return f"Calling {data.operation}."
    frame = data.first_app_frame()
    if data.verdict:
        return f"Starting and checking {data.service or 'the project'} (verdict: {data.verdict})."
    if frame is not None:
        return f"Running {frame.name}."
    return "Running the application."


def triage(data: TriageInput) -> tuple[Explanation, str]:
    """The explanation and the name of the rule that produced it."""
    for rule in [*RULES, _GENERIC]:
        found = rule.matches(data)
        if not found:
            continue
        match = found if isinstance(found, re.Match) else None
        signal = match.group(0).strip() if match else (data.exit_class or "the exit")
        inference = (
            f"Offline triage, rule '{rule.name}': matched {signal[:120]!r}"
            + (f"; first application frame {data.where()}" if data.first_app_frame() else "")
            + "."
        )
        explanation = Explanation(
            action=_action(data),
            reason=rule.reason(data, match),
            guide=rule.guide(data, match),
            inference=inference,
            confidence=rule.confidence,
        )
        return explanation, rule.name
    raise AssertionError("the generic rule always matches")  # pragma: no cover
