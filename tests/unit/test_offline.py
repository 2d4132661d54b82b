"""Offline triage: known patterns give deterministic explanations in the model's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.explain.offline import TriageInput, triage
from console.explain.traces import extract_failure
from console.model import Failure, Frame

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
    assert f"rule '{rule}'" in explanation.inference
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
