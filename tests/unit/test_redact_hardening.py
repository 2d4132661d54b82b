"""Redaction of secret shapes seen in real logs: JSON logged inside strings, URL
credentials without a user, Basic auth, cookies, and known values in escaped spellings."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from console.explain.redact import PLACEHOLDER, Redactor, known_secret_values

SECRET = "hunter2xyzQ"


@pytest.mark.parametrize(
    "line",
    [
        # a JSON request body logged as a JSON string: the quotes are escaped
        'payload="{\\"user\\":\\"kim\\",\\"password\\":\\"' + SECRET + '\\"}"',
        '{"msg": "{\\"db_password\\": \\"' + SECRET + '\\"}"}',
        # redis and others put no user before the password
        "redis://:" + SECRET + "@cache:6379/0",
        "Authorization: Basic " + "dXNlcjo" + SECRET + "==",
        "Set-Cookie: session=" + SECRET + "; Path=/; HttpOnly",
        "Cookie: sid=" + SECRET,
        "요청 실패: password=" + SECRET + " 사용자 김철수",
    ],
)
def test_secret_shapes_are_redacted(line: str) -> None:
    result = Redactor(use_detect_secrets=False).redact(line)
    assert SECRET not in result.text, result.text
    assert PLACEHOLDER in result.text
    assert result.count >= 1


def test_basic_in_prose_is_not_taken_for_a_credential() -> None:
    line = "falling back to basic configuration_settings for the worker pool"
    assert Redactor(use_detect_secrets=False).redact(line).text == line


KNOWN = 'Pa$$:w0rd/"x\\y'


@pytest.mark.parametrize(
    "text",
    [
        f"db url postgres://app@db/x?password={quote(KNOWN, safe='')}",
        "config " + json.dumps({"note": KNOWN}),
        f"login with {quote(KNOWN, safe='/')} failed",
    ],
)
def test_known_value_is_redacted_in_escaped_and_encoded_spellings(text: str) -> None:
    result = Redactor([KNOWN], use_detect_secrets=False).redact(text)
    for spelling in (KNOWN, quote(KNOWN, safe=""), json.dumps(KNOWN)[1:-1]):
        assert spelling not in result.text, result.text
    assert result.kinds["known-value"] >= 1


def test_short_known_values_are_not_redacted_everywhere() -> None:
    # Three characters would blank every "abc" of the log: the minimum is four.
    assert known_secret_values({"API_KEY": "abc", "DB_PASSWORD": "abcd"}) == ["abcd"]
    text = "abc abcd"
    redactor = Redactor(known_secret_values({"API_KEY": "abc", "DB_PASSWORD": "abcd"}))
    assert redactor.redact(text).text == f"abc {PLACEHOLDER}"
