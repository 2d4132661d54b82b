"""Offline triage: a deterministic explanation from the exception and known patterns.

Used when no LLM is configured or ``--offline`` is given.  The answer has the same shape as
the model's (action, reason, guide, inference, confidence) and is written in the requested
language (``en`` or ``ko``).  Each pattern is matched once, language-independently; only its
wording is per language, and lives in :mod:`console.explain.offline_text`.  The first rule
that matches wins, and a generic rule always matches last.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from console.explain.dependencies import COMMON_LIBRARIES, declared_in
from console.explain.offline_text import LANGS, Text, words_for
from console.explain.offline_text import RULE_TEXTS as _BASE_TEXTS
from console.explain.offline_text_start import START_RULE_TEXTS
from console.model import Explanation, Failure, Frame

RULE_TEXTS = {**_BASE_TEXTS, **START_RULE_TEXTS}

__all__ = ["LANGS", "RULES", "TRIAGE_VERSION", "Rule", "Text", "TriageInput", "triage"]

#: Stored as the ``prompt_version`` of offline explanations.  Bump it whenever the wording
#: or the rules change, so cached answers from an older triage are not reused (v1 answered
#: in English whatever language was asked for; v2 showed rule names and said "stopped" for
#: apps that kept running; v3 called a module the project forgot to write a library to install).
TRIAGE_VERSION = "triage-v4"


@dataclass
class TriageInput:
    """What the triage looks at."""

    failure: Failure | None
    log: str = ""
    exit_class: str | None = None
    verdict: str | None = None
    operation: str | None = None  # "GET /users/{id} (Find user)"
    service: str | None = None
    reason: str | None = None  # the verdict's own reason ("GET / on port 8080 answered 500.")
    project_root: Path | None = None  # where dependency files are looked up
    # The project's files (relative paths) when known: the recorded generation's, or the
    # project directory's.  None: unknown, so no rule may say a file is missing.
    project_files: tuple[str, ...] | None = None

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

    def where(self, lang: str = "en") -> str:
        """``name (file:line)`` of the innermost app frame, or a neutral phrase, in ``lang``.

        English reads "in name (file:line)"; Korean gives the bare noun phrase, to which the
        sentence adds its own particle.
        """
        words = words_for(lang)
        frame = self.first_app_frame()
        if frame is None:
            return words.outside
        location = f"{frame.file}:{frame.line}" if frame.line else (frame.file or "")
        if location and frame.name in _PLACE_ONLY:
            return words.at_location.format(location=location)
        if location:
            return words.at.format(name=frame.name, location=location)
        return words.at_name.format(name=frame.name)


Matcher = Callable[[TriageInput], "re.Match[str] | bool | None"]

#: Frame names that stand for a place, not a function (a Rust panic location, a PHP error
#: printed without a stack): shown by their location alone.
_PLACE_ONLY = frozenset(("<panic>", "<unknown>"))


@dataclass(frozen=True)
class Rule:
    """A known failure pattern; its wording is ``RULE_TEXTS[name]``, in each language."""

    name: str
    matches: Matcher
    confidence: float

    @property
    def text(self) -> Mapping[str, Text]:
        """The rule's wording per language."""
        return RULE_TEXTS[self.name]

    def explain(self, data: TriageInput, match: re.Match[str] | None, lang: str) -> Text:
        """``reason`` and ``guide`` filled in for ``data`` in ``lang``."""
        text = self.text[lang]
        name = _group(match)
        where = data.where(lang)
        file = declared_in(data.project_root, name) if self.name == "module-not-installed" else ""
        return Text(
            reason=text.reason.format(where=where, what=name or text.what[0], file=file or ""),
            guide=text.guide.format(where=where, what=name or text.what[1], file=file or ""),
        )


def _search(pattern: str, *, log: bool = True, flags: int = re.I) -> Matcher:
    regex = re.compile(pattern, flags)

    def matches(data: TriageInput) -> re.Match[str] | None:
        return regex.search(data.text) or (regex.search(data.log) if log else None)

    return matches


def _first_of(*matchers: Matcher) -> Matcher:
    """The first matcher that matches, in order of preference."""

    def matches(data: TriageInput) -> re.Match[str] | bool | None:
        for matcher in matchers:
            match = matcher(data)
            if match:
                return match
        return None

    return matches


def _group(match: re.Match[str] | None) -> str:
    """The first non-empty group of ``match``, or ``""``."""
    if match is None:
        return ""
    for value in match.groups():
        if value:
            return value
    return ""


def _null_in_app(data: TriageInput) -> re.Match[str] | None:
    if data.first_app_frame() is None:
        return None
    return re.search(
        r"NullPointerException|KotlinNullPointerException|'NoneType' object (?:has no attribute|is "
        r"not subscriptable|is not iterable|is not callable)|Cannot read propert(?:y|ies) "
        r"(?:'[^']*' )?of (?:undefined|null)|(?:undefined|null) is not an object"
        r"|Cannot destructure|nil pointer dereference|entry in nil map"
        r"|undefined method `?[^`' ]*'? for nil\b|on null\b|NullReferenceException"
        r"|Object reference not set to an instance|ArgumentNullException",
        data.text,
    )


# A missing library, captured by name: Python, Node, JVM, Ruby, Go, Rust, PHP and .NET.
_PYTHON_MODULE_NAMED = r"No module named '?([\w.]+)'?"
_MODULE_NAMED = (
    _PYTHON_MODULE_NAMED + r"|Cannot find (?:module|package) '([^']+)'"
    r"|ClassNotFoundException:? ?([\w.$]+)|NoClassDefFoundError:? ?([\w/$.]+)"
    r"|cannot load such file -- ([\w./-]+)|Could not find gem '([^'\s]+)"
    r"|cannot find package \"([^\"]+)\"|no required module provides package ([\w./-]+)"
    r"|unresolved import `(\w+)|can't find crate for `(\w+)`"
    r"|Class ['\"]([\w\\]+)['\"] not found|Could not load file or assembly '([\w.]+)"
)


def _not_installed(data: TriageInput) -> re.Match[str] | None:
    """A missing module that the project's dependency file already lists."""
    if data.project_root is None:
        return None
    match = re.search(_MODULE_NAMED, data.text) or re.search(_MODULE_NAMED, data.log)
    if match and declared_in(data.project_root, _group(match)):
        return match
    return None


_PYTHON_MISSING = re.compile(_PYTHON_MODULE_NAMED)


def _missing_own_module(data: TriageInput) -> re.Match[str] | None:
    """A Python module imported by the app's own code that is not among the project's
    files, not a dependency it declares, not the standard library's and not a library apps
    commonly use: most likely a module of the project that was never written."""
    if data.project_files is None or data.first_app_frame() is None:
        return None
    match = _PYTHON_MISSING.search(data.text)
    if match is None:
        return None
    top = match.group(1).split(".")[0]
    if top in sys.stdlib_module_names or top.lower() in COMMON_LIBRARIES:
        return None
    if declared_in(data.project_root, top):
        return None
    present: set[str] = set()
    for name in data.project_files:
        parts = PurePosixPath(name).parts
        present.update(parts[:-1])
        present.add(PurePosixPath(name).stem)
    return None if top in present else match


def _exited_without_serving(data: TriageInput) -> bool:
    return data.verdict == "exited_early"


RULES: list[Rule] = [
    Rule(
        "port-in-use",
        _search(
            r"EADDRINUSE|Address already in use|BindException|Port (\d+) (?:was|is) already in use"
            r"|\[Errno 98\]|\[Errno 48\]"
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
        0.8,
    ),
    Rule(
        "missing-own-file",
        _search(r"Cannot find module '((?:\.{1,2}[/\\]|/|[A-Za-z]:\\)[^']+)'", log=False),
        0.8,
    ),
    Rule("module-not-installed", _not_installed, 0.85),
    Rule("missing-own-module", _missing_own_module, 0.7),
    Rule(
        "missing-module",
        _first_of(
            # Patterns that name the module come first: Node prints the bare code
            # ("MODULE_NOT_FOUND: Cannot find module 'x'") before the name.
            _search(_MODULE_NAMED),
            _search(
                r"ClassNotFoundException|NoClassDefFoundError|(?:ERR_)?MODULE_NOT_FOUND"
                r"|Bundler::GemNotFound"
            ),
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
        0.85,
    ),
    Rule("install-failed", lambda d: d.verdict == "install_failed", 0.7),
    Rule("exited-without-serving", _exited_without_serving, 0.75),
    Rule(
        "syntax-error",
        _search(
            r"\b(SyntaxError|IndentationError|TabError)\b|Unexpected token|"
            r"error: expecting|compilation error",
            log=False,
        ),
        0.9,
    ),
    Rule(
        "unwrap-failed",
        _search(
            r"called [`'](?:Option|Result)::(?:unwrap|expect)\(\)[`'] on an? [`'](None|Err)[`']",
            log=False,
        ),
        0.75,
    ),
    Rule(
        "null-access",
        _null_in_app,
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
        0.75,
    ),
    Rule(
        "key-error",
        _search(r"\bKeyError\b:?\s*(.*)|NoSuchElementException|Missing key", log=False),
        0.7,
    ),
    Rule(
        "connection-refused",
        _search(
            r"ECONNREFUSED|Connection refused|ConnectionRefusedError|ConnectException"
            r"|could not connect to server"
        ),
        0.8,
    ),
    Rule(
        "host-not-found",
        _search(r"\bENOTFOUND\b|UnknownHostException|gaierror|Name or service not known"),
        0.75,
    ),
    Rule(
        "file-not-found",
        _search(
            r"FileNotFoundError|NoSuchFileException|ENOENT|No such file or directory"
            r"(?:[:,]\s*'?([^'\s]+))?",
            log=False,
        ),
        0.75,
    ),
    Rule(
        "permission-denied",
        _search(r"PermissionError|EACCES|Permission denied|AccessDeniedException", log=False),
        0.7,
    ),
    Rule(
        "index-out-of-range",
        _search(
            r"IndexError|IndexOutOfBounds|ArrayIndexOutOfBounds|RangeError|IndexOutOfRange"
            r"|ArgumentOutOfRange|index out of (?:range|bounds)|Undefined (?:offset|array key)",
            log=False,
        ),
        0.7,
    ),
    Rule(
        "not-found",
        _search(r"\b(\w*NotFound\w*)|DoesNotExist|EntityNotFound|NoResultFound|404", log=False),
        0.65,
    ),
    Rule(
        "invalid-value",
        _search(
            r"ValueError|NumberFormatException|IllegalArgumentException|TypeError"
            r"|ValidationError|InvalidFormat|JSONDecodeError|SyntaxError: Unexpected",
            log=False,
        ),
        0.55,
    ),
    Rule(
        "timeout",
        lambda d: (
            re.search(r"TimeoutError|ETIMEDOUT|SocketTimeoutException|timed out", d.text, re.I)
            or d.exit_class == "timeout"
        ),
        0.5,
    ),
]

# The generic rule's reason depends on whether there is a trace; see _generic_reason.
_GENERIC = Rule("generic", lambda d: True, 0.2)

# Every rule is worded in every language, and no wording is left without its rule.
_worded = {rule.name: set(RULE_TEXTS.get(rule.name, ())) for rule in [*RULES, _GENERIC]}
if set(RULE_TEXTS) != set(_worded) or any(langs != set(LANGS) for langs in _worded.values()):
    raise RuntimeError(f"offline_text.RULE_TEXTS does not match the rules: {_worded}")


#: Verdicts reached while the app was still running: it did not stop, it answered badly.
KEPT_RUNNING = ("no_port", "http_error", "unhealthy", "log_error", "timeout")


def _generic_reason(data: TriageInput, lang: str) -> str:
    words = words_for(lang)
    how = words.how.get(data.verdict or "", "")
    if data.failure is not None:
        failure = data.failure
        if data.verdict in KEPT_RUNNING:
            template = words.kept_running_message if failure.message else words.kept_running
        elif data.verdict is None:
            template = words.raised_message if failure.message else words.raised
        else:
            template = words.stopped_message if failure.message else words.stopped
        return template.format(
            exception=failure.exception, where=data.where(lang), message=failure.message, how=how
        )
    if data.verdict in KEPT_RUNNING:
        detail = f" ({data.reason.rstrip('.')})" if data.reason else ""
        return words.kept_running_no_trace.format(how=how, detail=detail)
    exit_part = words.exit.format(exit_class=data.exit_class) if data.exit_class else ""
    if data.verdict:
        return words.ended.format(verdict=data.verdict, exit=exit_part)
    return words.ended_no_verdict.format(exit=exit_part)


def _action(data: TriageInput, lang: str) -> str:
    words = words_for(lang)
    if data.operation:
        return words.calling.format(operation=data.operation)
    if data.verdict:
        service = words.service.format(name=data.service) if data.service else words.the_project
        return words.checking.format(service=service, verdict=data.verdict)
    frame = data.first_app_frame()
    if frame is not None and frame.name not in _PLACE_ONLY:
        return words.running.format(name=frame.name)
    return words.running_app


def triage(data: TriageInput, lang: str = "en") -> tuple[Explanation, str]:
    """The explanation in ``lang`` (``en`` or ``ko``) and the name of the rule behind it.

    The rule's name is for records and tests; the explanation itself never shows it.

    Raises:
        ValueError: ``lang`` is not one of :data:`LANGS`.
    """
    words = words_for(lang)
    for rule in [*RULES, _GENERIC]:
        found = rule.matches(data)
        if not found:
            continue
        match = found if isinstance(found, re.Match) else None
        if match is not None:
            template, signal = words.inference, match.group(0).strip()
        elif rule is not _GENERIC and data.verdict and not data.exit_class:
            template, signal = words.inference_verdict, data.verdict
        elif rule is _GENERIC or not data.exit_class:
            template, signal = words.inference_none, ""
        else:
            template, signal = words.inference_exit, data.exit_class
        frame = words.frame.format(where=data.where(lang)) if data.first_app_frame() else ""
        subject = data.failure.exception if data.failure else words.the_failure
        text = rule.explain(data, match, lang)
        explanation = Explanation(
            action=_action(data, lang),
            reason=text.reason if rule is not _GENERIC else _generic_reason(data, lang),
            guide=text.guide,
            inference=template.format(subject=subject, signal=repr(signal[:120]), frame=frame),
            confidence=rule.confidence,
        )
        return explanation, rule.name
    raise AssertionError("the generic rule always matches")  # pragma: no cover
