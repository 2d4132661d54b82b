"""Offline triage: known patterns give deterministic explanations in the model's shape."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from console.cli import main
from console.errors import UsageError
from console.explain.explainer import explain_failure
from console.explain.inputs import FailureInput, from_trace
from console.explain.offline import LANGS, RULES, TRIAGE_VERSION, TriageInput, triage
from console.explain.prompt import PROMPT_VERSION
from console.explain.traces import extract_failure
from console.model import Failure, Frame
from console.settings import Settings
from storage.db import Database
from storage.explanations import StoredExplanation, get_explanation, insert_explanation

TRACES = Path(__file__).parent.parent / "fixtures" / "explain" / "traces"


def _from_trace(name: str) -> TriageInput:
    return TriageInput(failure=extract_failure((TRACES / name).read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    ("trace", "rule"),
    [
        ("node_eaddrinuse.txt", "port-in-use"),
        ("python_windows.txt", "missing-module"),
        ("python_syntax.txt", "syntax-error"),
        ("python_during_handling.txt", "null-access"),
        ("spring_caused_by.txt", "null-access"),
        ("node_express_undefined.txt", "null-access"),
        ("fastapi_uvicorn.txt", "key-error"),
        ("kotlin_coroutine_suppressed.txt", "connection-refused"),
        ("node_cause.txt", "connection-refused"),
        ("kotlin_seed2.txt", "index-out-of-range"),
        ("kotlin_seed1.txt", "not-found"),
    ],
)
def test_traces_map_to_known_patterns(trace: str, rule: str) -> None:
    explanation, name = triage(_from_trace(trace))
    assert name == rule
    assert explanation.action and explanation.reason and explanation.guide
    assert rule not in explanation.inference  # rule names are for records, not for people
    assert 0 < explanation.confidence <= 1


def test_null_access_names_the_app_frame() -> None:
    explanation, _ = triage(_from_trace("python_during_handling.txt"))
    assert "order_detail (/home/dev/shop/orders/views.py:34)" in explanation.reason


def test_null_access_outside_app_code_is_not_blamed_on_the_app() -> None:
    failure = Failure(
        exception="TypeError",
        message="Cannot read properties of undefined (reading 'x')",
        frames=[Frame(name="f", file="/srv/app/node_modules/lib/a.js", line=1, app=False)],
    )
    _, name = triage(TriageInput(failure=failure))
    assert name == "invalid-value"


def test_missing_environment_variable() -> None:
    failure = Failure(exception="KeyError", message="'SHOP_DATABASE_URL'")
    explanation, name = triage(TriageInput(failure=failure))
    assert name == "missing-env"
    assert "SHOP_DATABASE_URL" in explanation.reason and "SHOP_DATABASE_URL" in explanation.guide


def test_runs_without_a_trace_use_exit_class_and_log() -> None:
    explanation, name = triage(
        TriageInput(
            failure=None,
            log="sh: 1: flask: not found",
            exit_class="command_not_found",
            verdict="crashed",
        )
    )
    assert name == "command-not-found"
    assert "flask" in explanation.reason
    assert "verdict: crashed" in explanation.action
    _, oom = triage(TriageInput(failure=None, exit_class="oom", verdict="crashed"))
    assert oom == "out-of-memory"
    _, heap = triage(
        TriageInput(
            failure=None,
            log="FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
        )
    )
    assert heap == "out-of-memory"


def test_unknown_failures_get_the_generic_answer_deterministically() -> None:
    failure = Failure(
        exception="com.acme.WeirdThing",
        message="zzz",
        frames=[Frame(name="A.b", file="A.kt", line=3, app=True)],
    )
    first = triage(TriageInput(failure=failure))
    second = triage(TriageInput(failure=failure))
    assert first == second
    explanation, name = first
    assert name == "generic" and explanation.confidence <= 0.3
    assert "com.acme.WeirdThing" in explanation.reason and "A.b (A.kt:3)" in explanation.reason


def test_operation_becomes_the_action() -> None:
    explanation, _ = triage(
        TriageInput(
            failure=Failure(exception="KeyError", message="7"),
            operation="GET /users/{id} (Find user)",
        )
    )
    assert explanation.action == "Calling GET /users/{id} (Find user)."


# --- languages ---------------------------------------------------------------------------

HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _app(name: str, file: str, line: int | None) -> Frame:
    return Frame(name=name, file=file, line=line, app=True)


def _fail(exception: str, message: str, frame: Frame | None = None) -> Failure:
    return Failure(exception=exception, message=message, frames=[frame] if frame else [])


# (rule, input, identifiers that must appear verbatim in the answer in every language)
DEPS = Path(__file__).parent.parent / "fixtures" / "explain" / "deps"

LANG_CASES: list[tuple[str, TriageInput, list[str]]] = [
    (
        "install-failed",
        TriageInput(None, exit_class="error", verdict="install_failed", service="shop-api"),
        ["'error'", "shop-api"],
    ),
    (
        "exited-without-serving",
        TriageInput(None, exit_class="ok", verdict="exited_early", service="shop-api"),
        ["'ok'", "app.listen()"],
    ),
    (
        "module-not-installed",
        TriageInput(
            _fail(
                "ModuleNotFoundError",
                "No module named 'flask_cors'",
                _app("create_app", "/srv/app/app.py", 3),
            ),
            project_root=DEPS,
        ),
        ["flask_cors", "requirements.txt", "pip install -r requirements.txt"],
    ),
    (
        "missing-own-module",
        TriageInput(
            _fail(
                "ModuleNotFoundError",
                "No module named 'order_store'",
                _app("<module>", "app.py", 5),
            ),
            project_files=("app.py", "verdict.toml"),
        ),
        ["order_store", "order_store.py", "app.py:5", "requirements.txt"],
    ),
    (
        "missing-own-file",
        TriageInput(
            _fail(
                "ERR_MODULE_NOT_FOUND",
                "Cannot find module '/app/dist/index.js' imported from /app/",
                _app("main", "/app/server.js", 1),
            )
        ),
        ["/app/dist/index.js", "npm run build"],
    ),
    (
        "unwrap-failed",
        TriageInput(
            _fail(
                "panic",
                "called `Option::unwrap()` on a `None` value",
                _app("shop::handlers::get_order", "src/handlers.rs", 41),
            )
        ),
        ["unwrap()", "shop::handlers::get_order (src/handlers.rs:41)", "panic"],
    ),
    (
        "port-in-use",
        TriageInput(
            _fail(
                "Error",
                "listen EADDRINUSE: address already in use :::3000",
                _app("Object.<anonymous>", "/srv/shop/server.js", 14),
            )
        ),
        ["EADDRINUSE", "Object.<anonymous> (/srv/shop/server.js:14)"],
    ),
    (
        "out-of-memory",
        TriageInput(None, exit_class="oom", verdict="crashed", service="shop-api"),
        ["'oom'", "verdict: crashed", "shop-api"],
    ),
    (
        "missing-module",
        TriageInput(
            _fail(
                "ModuleNotFoundError",
                "No module named 'flask_cors'",
                _app("create_app", "/srv/app/app.py", 3),
            )
        ),
        ["flask_cors", "create_app (/srv/app/app.py:3)"],
    ),
    (
        "command-not-found",
        TriageInput(None, log="sh: 1: gunicorn: not found", exit_class="command_not_found"),
        ["gunicorn"],
    ),
    (
        "syntax-error",
        TriageInput(
            _fail("SyntaxError", "invalid syntax", _app("<module>", "/srv/app/server.py", 12))
        ),
        ["SyntaxError", "<module> (/srv/app/server.py:12)"],
    ),
    (
        "null-access",
        TriageInput(
            _fail(
                "TypeError",
                "Cannot read properties of undefined (reading 'id')",
                _app("getUser", "/srv/shop/routes/users.js", 12),
            )
        ),
        ["Cannot read properties of undefined", "getUser (/srv/shop/routes/users.js:12)"],
    ),
    (
        "missing-env",
        TriageInput(
            _fail("KeyError", "'SHOP_DATABASE_URL'", _app("load", "/srv/app/settings.py", 16))
        ),
        ["SHOP_DATABASE_URL", "load (/srv/app/settings.py:16)"],
    ),
    (
        "key-error",
        TriageInput(_fail("KeyError", "'user_id'", _app("detail", "/srv/app/views.py", 20))),
        ["'user_id'", "detail (/srv/app/views.py:20)"],
    ),
    (
        "connection-refused",
        TriageInput(_fail("ConnectionRefusedError", "[Errno 111] Connection refused")),
        ["ConnectionRefusedError"],
    ),
    (
        "host-not-found",
        TriageInput(_fail("java.net.UnknownHostException", "db.internal")),
        ["UnknownHostException"],
    ),
    (
        "file-not-found",
        TriageInput(
            _fail(
                "FileNotFoundError",
                "[Errno 2] No such file or directory: 'config.yaml'",
                _app("read_config", "/srv/app/config.py", 8),
            )
        ),
        ["FileNotFoundError", "read_config (/srv/app/config.py:8)"],
    ),
    (
        "permission-denied",
        TriageInput(_fail("PermissionError", "[Errno 13] Permission denied: '/var/log/a.log'")),
        ["PermissionError"],
    ),
    (
        "index-out-of-range",
        TriageInput(
            _fail(
                "IndexError",
                "list index out of range",
                _app("Decoder.decode", "Decoder.kt", 35),
            )
        ),
        ["IndexError", "Decoder.decode (Decoder.kt:35)"],
    ),
    (
        "not-found",
        TriageInput(
            _fail(
                "com.shop.UserNotFoundException",
                "user 7",
                _app("UserService.find", "UserService.kt", 40),
            )
        ),
        ["UserNotFoundException", "UserService.find (UserService.kt:40)"],
    ),
    (
        "invalid-value",
        TriageInput(
            _fail(
                "ValueError",
                "invalid literal for int() with base 10: 'abc'",
                _app("parse_page", "/srv/app/paging.py", 5),
            )
        ),
        ["ValueError", "parse_page (/srv/app/paging.py:5)"],
    ),
    (
        "timeout",
        TriageInput(
            _fail("TimeoutError", "upstream did not answer"),
            operation="GET /users/{id} (Find user)",
        ),
        ["TimeoutError", "GET /users/{id} (Find user)"],
    ),
    (
        "generic",
        TriageInput(_fail("com.acme.WeirdThing", "zzz", _app("A.b", "A.kt", 3))),
        ["com.acme.WeirdThing", "zzz", "A.b (A.kt:3)"],
    ),
]


def test_every_rule_has_a_language_case_and_every_language() -> None:
    assert {case[0] for case in LANG_CASES} == {r.name for r in RULES} | {"generic"}
    assert all(set(rule.text) == set(LANGS) for rule in RULES)


@pytest.mark.parametrize(
    ("rule", "data", "identifiers"), LANG_CASES, ids=[c[0] for c in LANG_CASES]
)
def test_each_pattern_answers_in_the_requested_language(
    rule: str, data: TriageInput, identifiers: list[str]
) -> None:
    en, en_rule = triage(data, "en")
    ko, ko_rule = triage(data, "ko")
    assert en_rule == ko_rule == rule
    assert en == triage(data)[0]  # English is the default
    assert en.confidence == ko.confidence
    fields = ("action", "reason", "guide", "inference")
    for field in fields:
        assert HANGUL.search(getattr(ko, field)), (field, getattr(ko, field))
        assert not HANGUL.search(getattr(en, field)), (field, getattr(en, field))
    assert f"'{rule}'" not in ko.inference and f"'{rule}'" not in en.inference
    for answer in (en, ko):
        text = " ".join(getattr(answer, field) for field in fields)
        for identifier in identifiers:
            assert identifier in text, (identifier, text)


def test_korean_names_the_missing_thing_in_reason_and_guide() -> None:
    env, _ = triage(TriageInput(_fail("KeyError", "'SHOP_DATABASE_URL'")), "ko")
    assert "SHOP_DATABASE_URL" in env.reason and "SHOP_DATABASE_URL" in env.guide
    module, _ = triage(TriageInput(_fail("ModuleNotFoundError", "No module named 'yaml'")), "ko")
    assert "(yaml)" in module.reason and "yaml" in module.guide
    null, _ = triage(_from_trace("python_during_handling.txt"), "ko")
    assert "order_detail (/home/dev/shop/orders/views.py:34)에서" in null.reason


def test_unknown_language_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown language 'fr'"):
        triage(TriageInput(_fail("KeyError", "x")), "fr")


class _Untouchable:
    """Fails the test when read: an unsupported language must be refused before any work."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name!r} was used before the language was checked")


@pytest.mark.parametrize("lang", ["fr", "", "EN", "korean"])
async def test_explain_failure_rejects_an_unsupported_language_before_any_work(lang: str) -> None:
    untouchable: Any = _Untouchable()  # input, settings, db and factory alike
    with pytest.raises(UsageError) as raised:
        await explain_failure(
            untouchable, settings=untouchable, db=untouchable, lang=lang, factory=untouchable
        )
    message = str(raised.value)
    assert repr(lang) in message and "en, ko" in message and "\n" not in message


def test_cli_rejects_unknown_lang_with_one_line(
    db_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = str(TRACES / "node_eaddrinuse.txt")
    with pytest.raises(SystemExit) as exited:
        main(["--db", str(db_path), "explain", "--trace", trace, "--offline", "--lang", "fr"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--lang" in err and err.count("\n") == 1


def test_cli_offline_korean(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = str(TRACES / "node_eaddrinuse.txt")
    argv = ["--db", str(db_path), "explain", "--trace", trace, "--offline", "--json"]
    assert main([*argv, "--lang", "ko"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "offline" and HANGUL.search(out["explanation"]["reason"])
    assert "Object.<anonymous> (/srv/shop/server.js:14)" in out["explanation"]["inference"]


# --- the cache keeps languages apart -----------------------------------------------------


def _trace_input() -> FailureInput:
    return from_trace((TRACES / "python_during_handling.txt").read_text(encoding="utf-8"))


async def test_cache_never_answers_one_language_with_the_other(db: Database) -> None:
    settings = Settings(db=db.path)
    en = await explain_failure(_trace_input(), settings=settings, db=db, lang="en")
    ko = await explain_failure(_trace_input(), settings=settings, db=db, lang="ko")
    assert en.source == ko.source == "offline"  # the English answer was not reused for ko
    assert en.explanation and not HANGUL.search(en.explanation.reason)
    assert ko.explanation and HANGUL.search(ko.explanation.reason)
    for lang, first in (("en", en), ("ko", ko), ("en", en)):
        again = await explain_failure(_trace_input(), settings=settings, db=db, lang=lang)
        assert again.source == "cached" and again.explanation_id == first.explanation_id
        assert again.explanation == first.explanation
    stored = get_explanation(db, ko.explanation_id or 0)
    assert stored and stored.lang == "ko" and stored.prompt_version == TRIAGE_VERSION


async def test_english_answers_of_an_older_triage_stored_under_ko_are_not_reused(
    db: Database,
) -> None:
    settings = Settings(db=db.path)
    en = await explain_failure(_trace_input(), settings=settings, db=db, lang="en")
    legacy = insert_explanation(
        db,
        StoredExplanation(
            fingerprint=en.fingerprint,
            source="offline",
            prompt_version="explain-v1",  # what the English-only triage stored
            lang="ko",
            action="Running order_detail.",
            reason="The code used a value that was empty.",
            guide="Handle the missing case.",
            inference="Offline triage, rule 'null-access'.",
            confidence=0.7,
        ),
    )
    ko = await explain_failure(_trace_input(), settings=settings, db=db, lang="ko")
    assert ko.source == "offline" and ko.explanation_id != legacy
    assert ko.explanation and HANGUL.search(ko.explanation.reason)
    again = await explain_failure(_trace_input(), settings=settings, db=db, lang="ko")
    assert again.source == "cached" and again.explanation_id == ko.explanation_id


async def test_a_stored_korean_model_answer_still_wins_over_a_stale_offline_one(
    db: Database,
) -> None:
    settings = Settings(db=db.path)
    key = (await explain_failure(_trace_input(), settings=settings, db=db)).fingerprint
    common: dict[str, Any] = {
        "fingerprint": key,
        "lang": "ko",
        "inference": "x",
        "guide": "x",
        "action": "x",
    }
    llm = insert_explanation(
        db,
        StoredExplanation(
            source="llm", prompt_version=PROMPT_VERSION, reason="모델의 설명", created=1.0, **common
        ),
    )
    insert_explanation(
        db,
        StoredExplanation(
            source="offline", prompt_version=PROMPT_VERSION, reason="English", created=2.0, **common
        ),
    )
    ko = await explain_failure(_trace_input(), settings=settings, db=db, lang="ko")
    assert ko.source == "cached" and ko.explanation_id == llm
    assert ko.explanation and ko.explanation.reason == "모델의 설명"


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_node_missing_module_names_the_module_not_the_code(lang: str) -> None:
    data = TriageInput(
        _fail(
            "MODULE_NOT_FOUND",
            "Cannot find module 'express'",
            _app("Object.<anonymous>", "/srv/shop/app.js", 1),
        )
    )
    explanation, rule = triage(data, lang=lang)
    assert rule == "missing-module"
    assert "express" in explanation.reason and "express" in explanation.guide
