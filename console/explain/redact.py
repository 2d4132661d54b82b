"""Remove secrets from text before it leaves the machine.

Three layers, cheapest first:

1. exact values of known secrets: environment variables whose names contain KEY, SECRET,
   TOKEN or PASSWORD, plus ``settings.explain.secrets``;
2. a maintained pattern set for common key formats (cloud keys, tokens, JWTs, private key
   blocks, credentials in URLs, ``password=...`` assignments);
3. ``detect-secrets`` plugins, line by line, on the lines that could hold a secret at all
   (a long token-like run or a quoted string) — the plugins cost far more per line than
   the patterns, and most log lines have nothing for them.

ANSI escapes and control characters are stripped and the input is capped to a budget.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from console.explain.tracelines import strip_control

PLACEHOLDER = "[REDACTED]"
SECRET_NAME_PARTS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL")
_TRIVIAL_VALUES = {"true", "false", "none", "null", "yes", "no", "on", "off", "test"}
# Known values shorter than this are not redacted: a 3-character value ("abc", "dev")
# would blank every occurrence of common words and identifiers in the log.
_MIN_KNOWN_LEN = 4


_SECRET_WORDS = (
    r"password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|"
    r"client[_-]?secret|credentials?"
)


@dataclass(frozen=True)
class Pattern:
    """One maintained secret format.

    ``group`` holds the secret (0: the whole match; -1: the first group that matched).
    ``needles`` are literal strings one of which every match contains: lines without any
    are never given to the regular expression (``lower``: compare in lower case).
    """

    kind: str
    regex: re.Pattern[str]
    group: int
    needles: tuple[str, ...]
    lower: bool = False


# A value in quotes, in JSON-escaped quotes (a JSON document logged inside a string:
# ``{\"password\":\"...\"}``), or bare.
_ESCAPED = r"\\\"([^\"\s\\]{4,})\\\""
_VALUE = r"(?:" + _ESCAPED + r"|\"([^\"\s]{4,})\"|'([^'\s]{4,})'|([^\s\"',;&}\]]{4,}))"
_VALUE_WITH_DIGIT = (
    r"(?:" + _ESCAPED + r"|\"([^\"\s]{4,})\"|'([^'\s]{4,})'|([^\s\"',;&}\]]*\d[^\s\"',;&}\]]*))"
)
_KEY_END = r"[\w.-]*(?:\\?[\"'])?\s*"  # the rest of the key, its closing quote (maybe escaped)
_WORD_NEEDLES = ("password", "passwd", "pwd", "secret", "token", "key", "credential")

PATTERNS: list[Pattern] = [
    Pattern(
        "aws-access-key",
        re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b"),
        0,
        ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA"),
    ),
    Pattern(
        "github-token",
        re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{22,})"),
        0,
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    Pattern("gitlab-token", re.compile(r"\bglpat-[\w-]{20,}"), 0, ("glpat-",)),
    Pattern(
        "openai-key", re.compile(r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}"), 0, ("sk-",)
    ),
    Pattern("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), 0, ("xox",)),
    Pattern(
        "stripe-key",
        re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[0-9A-Za-z]{16,}"),
        0,
        ("_live_", "_test_"),
    ),
    Pattern("google-api-key", re.compile(r"\bAIza[0-9A-Za-z_-]{35}"), 0, ("AIza",)),
    Pattern("npm-token", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b"), 0, ("npm_",)),
    Pattern("huggingface-token", re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"), 0, ("hf_",)),
    Pattern("sendgrid-key", re.compile(r"\bSG\.[\w-]{16,}\.[\w-]{16,}"), 0, ("SG.",)),
    Pattern("twilio-key", re.compile(r"\bSK[0-9a-f]{32}\b"), 0, ("SK",)),
    Pattern("jwt", re.compile(r"\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"), 0, ("eyJ",)),
    Pattern(
        "bearer-token",
        re.compile(r"(?i)\b(?:bearer|token)\s+([A-Za-z0-9._~+/-]{16,}=*)"),
        1,
        ("bearer", "token"),
        lower=True,
    ),
    Pattern(
        "basic-auth",
        re.compile(r"(?i)\bauthorization:\s*basic\s+([A-Za-z0-9+/]{8,}=*)"),
        1,
        ("basic",),
        lower=True,
    ),
    # A cookie is a credential: the whole header value goes.
    Pattern("cookie", re.compile(r"(?i)\b(?:set-)?cookie:\s*(\S.*)$"), 1, ("cookie:",), lower=True),
    Pattern(
        "url-credentials", re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]*:([^/\s@]+)@"), 1, ("://",)
    ),
    Pattern(
        "azure-key",
        re.compile(r"(?i)\b(?:AccountKey|SharedAccessKey|sig)=([A-Za-z0-9+/%]{16,}=*)"),
        1,
        ("accountkey=", "sharedaccesskey=", "sig="),
        lower=True,
    ),
    Pattern(
        "assignment",
        re.compile(r"(?i)(?:" + _SECRET_WORDS + r")" + _KEY_END + r"=\s*" + _VALUE),
        -1,
        _WORD_NEEDLES,
        lower=True,
    ),
    # "password": "x" / password: s3cret; prose ("token: please log in") is left alone.
    Pattern(
        "assignment",
        re.compile(r"(?i)(?:" + _SECRET_WORDS + r")" + _KEY_END + r":\s*" + _VALUE_WITH_DIGIT),
        -1,
        _WORD_NEEDLES,
        lower=True,
    ),
]
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.S,
)

# detect-secrets finds secrets in quoted strings, in long random-looking tokens, and next
# to secret-sounding words; a line with none of these is not given to its plugins.
_DS_WORDS = re.compile(r"(?i)pass|secret|token|api.?key|auth|cred|private")
_DS_RUN = re.compile(r"[A-Za-z0-9+=_-]{20,}")
_DS_QUOTED = re.compile(r"[\"']([^\"'\s]{8,})[\"']")
_PATH_START = re.compile(r"^(?:[/\\<.~]|[A-Za-z]:[/\\])")


def _ds_candidate(line: str) -> bool:
    """Whether a detect-secrets plugin could find anything in ``line``."""
    quoted = '"' in line or "'" in line
    if quoted and _DS_WORDS.search(line):  # the keyword plugin needs a quoted value
        return True
    for match in _DS_RUN.finditer(line):
        run = match.group(0)
        if any(c.isdigit() for c in run) and any(c.isalpha() for c in run):
            return True
    return quoted and any(not _PATH_START.match(m.group(1)) for m in _DS_QUOTED.finditer(line))


@dataclass
class Redaction:
    """Redacted text and what was removed."""

    text: str
    count: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    truncated: bool = False


def cap(text: str, limit: int) -> tuple[str, bool]:
    """Keep at most ``limit`` characters: the tail (the failure is near the end of a log)."""
    if limit <= 0 or len(text) <= limit:
        return text, False
    marker = f"[... {len(text) - limit} characters cut ...]\n"
    return marker + text[len(text) - limit :], True


def known_secret_values(
    environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()
) -> list[str]:
    """Values worth redacting exactly: secret-named env vars plus a configured list."""
    environ = os.environ if environ is None else environ
    values = {v for k, v in environ.items() if any(p in k.upper() for p in SECRET_NAME_PARTS)}
    values.update(extra)
    kept = {
        v.strip()
        for v in values
        if v
        and len(v.strip()) >= _MIN_KNOWN_LEN
        and v.strip().lower() not in _TRIVIAL_VALUES
        and not (v.strip().isdigit() and len(v.strip()) < 8)
        and not v.strip().startswith("/")  # paths ("SSH_KEY_PATH") are not the secret
    }
    return sorted(kept, key=len, reverse=True)


@lru_cache(maxsize=1)
def _detect_secrets_plugins() -> tuple[Any, ...]:
    """detect-secrets plugin instances (public IPs are not secrets)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    plugins = []
    mapping: dict[str, Any] = get_mapping_from_secret_type_to_class()
    for kind, cls in mapping.items():
        if kind == "Public IP (ipv4)":
            continue
        try:
            plugins.append(cls())
        except TypeError:
            continue
    return tuple(plugins)


class Redactor:
    """Applies the three layers; reusable across texts (patterns and plugins are built once).

    Args:
        known: exact secret values to remove wherever they appear.
        max_chars: input budget per text (0: unlimited).
        use_detect_secrets: run the detect-secrets plugins after the pattern set.
        every_line: give every line to detect-secrets, not only candidate lines
            (slower; for measurements).
    """

    def __init__(
        self,
        known: Iterable[str] = (),
        *,
        max_chars: int = 0,
        use_detect_secrets: bool = True,
        every_line: bool = False,
    ) -> None:
        self.known = sorted({v for k in known if k for v in _spellings(k)}, key=len, reverse=True)
        self._known_re = (
            re.compile("|".join(re.escape(k) for k in self.known)) if self.known else None
        )
        self.max_chars = max_chars
        self.use_detect_secrets = use_detect_secrets
        self.every_line = every_line

    @classmethod
    def from_settings(cls, settings: Any, environ: Mapping[str, str] | None = None) -> Redactor:
        """A redactor for the environment and ``settings.explain`` (secrets, budget)."""
        explain = settings.explain
        api_key = getattr(settings.llm, "api_key", None)
        # The configured key passes the same filter: a one-letter key redacts nothing.
        known = known_secret_values(environ, [*explain.secrets, *([api_key] if api_key else [])])
        return cls(known, max_chars=explain.max_input_chars)

    def redact(self, text: str) -> Redaction:
        """Redact one text (control characters stripped, capped to the budget)."""
        text = strip_control(text or "")
        text, truncated = cap(text, self.max_chars)
        kinds: Counter[str] = Counter()
        if self._known_re is not None:
            text, n = self._known_re.subn(PLACEHOLDER, text)
            kinds["known-value"] += n
        if "PRIVATE KEY" in text:
            text, n = _PRIVATE_KEY.subn(PLACEHOLDER, text)
            kinds["private-key"] += n
        text = _apply_patterns(text, kinds)
        if self.use_detect_secrets:
            text = self._detect_secrets(text, kinds)
        kinds = +kinds
        return Redaction(text=text, count=sum(kinds.values()), kinds=kinds, truncated=truncated)

    def _detect_secrets(self, text: str, kinds: Counter[str]) -> str:
        plugins = _detect_secrets_plugins()
        lines = text.split("\n")
        for index, line in enumerate(lines):
            if not self.every_line and not _ds_candidate(line):
                continue
            found: list[tuple[str, str]] = []
            for plugin in plugins:
                for secret in plugin.analyze_line(filename="log", line=line, line_number=index):
                    value = secret.secret_value
                    if value and PLACEHOLDER not in value and len(value) >= _MIN_KNOWN_LEN:
                        found.append((value, secret.type))
            for value, kind in sorted(found, key=lambda f: len(f[0]), reverse=True):
                n = line.count(value)
                if n:
                    line = line.replace(value, PLACEHOLDER)
                    kinds["detect-secrets:" + kind] += n
            lines[index] = line
        return "\n".join(lines)


def _spellings(value: str) -> set[str]:
    """``value`` as it may appear in a log: as is, JSON-escaped, percent-encoded (in URLs)."""
    return {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value, safe="/"),
    }


def _apply_patterns(text: str, kinds: Counter[str]) -> str:
    """Run the pattern set, each pattern only on the lines holding one of its needles."""
    lowered = text.lower()
    active = [p for p in PATTERNS if any(n in (lowered if p.lower else text) for n in p.needles)]
    if not active:
        return text
    lines = text.split("\n")
    for index, line in enumerate(lines):
        low = line.lower()
        for pattern in active:
            hay = low if pattern.lower else line
            if any(n in hay for n in pattern.needles):
                line, n = _sub_group(pattern.regex, pattern.group, line)
                if n:
                    kinds[pattern.kind] += n
                    low = line.lower()
        lines[index] = line
    return "\n".join(lines)


def _sub_group(pattern: re.Pattern[str], group: int, text: str) -> tuple[str, int]:
    """Replace the secret part of each match of ``pattern``; returns (text, count)."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if group == 0:
            count += 1
            return PLACEHOLDER
        index = (
            group
            if group > 0
            else next((i for i in range(1, (match.lastindex or 0) + 1) if match.group(i)), 0)
        )
        value = match.group(index)
        if not value or "REDACTED" in value or len(value) < _MIN_KNOWN_LEN:
            return match.group(0)
        count += 1
        start, end = match.span(index)
        whole_start = match.start()
        whole = match.group(0)
        return whole[: start - whole_start] + PLACEHOLDER + whole[end - whole_start :]

    return pattern.sub(replace, text), count


def redact_text(text: str, known: Iterable[str] = (), *, max_chars: int = 0) -> Redaction:
    """One-off redaction of ``text`` (see :class:`Redactor`)."""
    return Redactor(known, max_chars=max_chars).redact(text)
