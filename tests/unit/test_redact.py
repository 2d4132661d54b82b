"""Redaction: known values, common key formats, detect-secrets, control characters, budget."""

from __future__ import annotations

import pytest

from console.explain.redact import (
    PLACEHOLDER,
    Redactor,
    cap,
    known_secret_values,
    strip_control,
)
from console.settings import Settings

# Planted canaries: each line holds one secret in a format seen in real logs.
FORMATS = {
    "aws-access-key": "using credentials AKIAIOSFODNN7CANARY1 for s3",
    "github-token": "clone with ghp_CanaryCanaryCanaryCanaryCanary1234567",
    "gitlab-token": "GITLAB glpat-CanaryCanary12345678ab in header",
    "openai-key": "client created with sk-proj-CanaryCanaryCanaryCanary99",
    "slack-token": "posting with xoxb-1234567890-CanaryCanaryXy",
    "stripe-key": "charge via sk_live_CanaryCanaryCanary42",
    "google-api-key": "maps key AIzaSyCanaryCanaryCanaryCanaryCanary123",
    "jwt": "auth eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.CanarySignatureValue123",
    "bearer-token": "GET /me Authorization: Bearer CanaryBearerToken0123456789",
    "url-credentials": "connecting to postgres://shop:CanaryPass99@db:5432/shop",
    "assignment": "DB_PASSWORD=CanaryPw2024 loaded",
    "npm-token": "//registry.npmjs.org/:_authToken=npm_CanaryCanaryCanaryCanaryCanary123456",
}
CANARY_VALUES = {
    "aws-access-key": "AKIAIOSFODNN7CANARY1",
    "github-token": "ghp_CanaryCanaryCanaryCanaryCanary1234567",
    "gitlab-token": "glpat-CanaryCanary12345678ab",
    "openai-key": "sk-proj-CanaryCanaryCanaryCanary99",
    "slack-token": "xoxb-1234567890-CanaryCanaryXy",
    "stripe-key": "sk_live_CanaryCanaryCanary42",
    "google-api-key": "AIzaSyCanaryCanaryCanaryCanaryCanary123",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnkifQ.CanarySignatureValue123",
    "bearer-token": "CanaryBearerToken0123456789",
    "url-credentials": "CanaryPass99",
    "assignment": "CanaryPw2024",
    "npm-token": "npm_CanaryCanaryCanaryCanaryCanary123456",
}
BENIGN = [
    "2026-11-21 08:00:01 INFO GET /api/orders/42 200 12ms",
    '  File "/srv/app/shop/settings.py", line 14, in load_settings',
    "\tat im.toss.teens.api.controller.imagecard.web.ImageCardController.getImageCard("
    "ImageCardController.kt:29)",
    "    at Object.<anonymous> (/srv/shop/server.js:14:5)",
    "KeyError: 'DATABASE_URL'",
    "token: please log in again",
    "Error: listen EADDRINUSE: address already in use :::3000",
]


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_common_key_formats(kind: str) -> None:
    result = Redactor().redact(FORMATS[kind])
    assert CANARY_VALUES[kind] not in result.text
    assert PLACEHOLDER in result.text
    assert result.count >= 1


def test_known_values_are_all_redacted_everywhere() -> None:
    environ = {
        "SHOP_API_KEY": "k3y-canary-one",
        "PAYMENT_SECRET": "s3cret canary two",  # spaces: only an exact match finds it
        "SESSION_TOKEN": "tok-canary-3",
        "ADMIN_PASSWORD": "pw-canary-4",
        "HOME": "/home/dev",
        "DEBUG_KEY_ENABLED": "true",  # trivial values are not secrets
    }
    known = known_secret_values(environ, ["cfg-canary-5"])
    assert set(known) == {
        "k3y-canary-one",
        "s3cret canary two",
        "tok-canary-3",
        "pw-canary-4",
        "cfg-canary-5",
    }
    corpus = "\n".join(
        f"line {i}: value={v!r} and again {v} ({v})" for i, v in enumerate(known * 20)
    )
    result = Redactor(known).redact(corpus)
    for value in known:
        assert value not in result.text
    assert result.kinds["known-value"] == len(known) * 20 * 3
    assert result.count >= result.kinds["known-value"]


def test_benign_log_lines_are_left_alone() -> None:
    text = "\n".join(BENIGN)
    result = Redactor(["k3y-canary-one"]).redact(text)
    assert result.text == text
    assert result.count == 0


def test_detect_secrets_catches_high_entropy_strings_the_patterns_miss() -> None:
    line = 'cfg = {"blob": "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A="}'
    without = Redactor(use_detect_secrets=False).redact(line)
    assert "Zm9vYmFy" in without.text
    result = Redactor().redact(line)
    assert "Zm9vYmFy" not in result.text
    assert any(k.startswith("detect-secrets:") for k in result.kinds)


def test_private_key_block_is_removed_whole() -> None:
    text = (
        "loading key\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAcanary\n"
        "abcdefCANARYLINE\n-----END RSA PRIVATE KEY-----\ndone"
    )
    result = Redactor().redact(text)
    assert "CANARYLINE" not in result.text and "canary" not in result.text
    assert result.text.startswith("loading key\n") and result.text.endswith("\ndone")


def test_control_characters_and_budget() -> None:
    assert strip_control("\x1b[31mred\x1b[0m\x00 bell\x07\r\nnext\ttab") == "red bell\nnext\ttab"
    text, cut = cap("a" * 100 + "TAIL", 10)
    assert cut and text.endswith("aaaaaaTAIL") and "characters cut" in text
    result = Redactor(max_chars=50).redact("x" * 500 + " AKIAIOSFODNN7CANARY1")
    assert result.truncated and "AKIA" not in result.text


def test_from_settings_uses_env_config_and_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "env-canary-123")
    settings = Settings()
    settings.explain.secrets = ["cfg-canary-456"]
    settings.llm.api_key = "sk-test-canary-789"
    redactor = Redactor.from_settings(settings)
    out = redactor.redact("a env-canary-123 b cfg-canary-456 c sk-test-canary-789").text
    assert "canary" not in out
    assert redactor.max_chars == settings.explain.max_input_chars


def test_candidate_gating_loses_nothing_detect_secrets_finds() -> None:
    lines = [*FORMATS.values(), *BENIGN]
    lines += [
        'cfg = {"blob": "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1ub3A="}',
        "secret_key = 'a1b2c3d4e5f6a7b8c9d0'",
        "hex id '8f2c1d9e7a6b5c4d3e2f1a0b9c8d7e6f'",
        'login(user="admin", password="hunter2hunter2")',
    ]
    text = "\n".join(lines * 3)
    gated = Redactor().redact(text)
    full = Redactor(every_line=True).redact(text)
    assert gated.text == full.text
    assert gated.count == full.count
