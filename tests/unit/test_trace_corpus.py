"""The explainer on real traces copied from public issue threads (``tests/fixtures/traces``).

Each case names its file; its JSON holds the source URL and the expected root exception,
message and application frames.  Exception and message must be right for every case; exact
app frames for all but the few listed in ``KNOWN_FRAME_MISSES`` (each with the reason), and
for at least 95% overall.
"""

from __future__ import annotations

import pytest

from tests.support.trace_corpus import app_labels, load_cases, parse, score

CASES = load_cases()

#: Cases whose app frames the parser does not get exactly right, and why that is hard.
KNOWN_FRAME_MISSES: dict[str, str] = {
    "python/flask_debugger_page_app_in_venv_folder": (
        "the project itself lives in a folder named venv, where virtualenvs keep libraries; "
        "telling it from one needs the filesystem, which a pasted trace does not come with"
    ),
}


def test_corpus_is_large_and_covers_every_runtime() -> None:
    runtimes = {case.expected["runtime"] for case in CASES}
    assert len(CASES) >= 60
    assert runtimes == {"python", "node", "jvm", "go", "ruby", "php", "dotnet", "rust"}
    for case in CASES:
        assert case.expected["source"].startswith("https://"), case.id


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_corpus_trace(case) -> None:  # type: ignore[no-untyped-def]
    failure = parse(case, with_app=True)
    assert failure is not None, f"{case.path}: no trace found"
    assert (failure.exception, failure.message) == (
        case.expected["exception"],
        case.expected["message"],
    ), case.path
    assert failure.language == case.expected["runtime"], case.path
    frames = app_labels(failure)
    if case.id in KNOWN_FRAME_MISSES:
        assert frames != case.expected["app_frames"], f"{case.id} is fixed: drop it from the list"
    else:
        assert frames == case.expected["app_frames"], case.path


def test_corpus_app_frames_score() -> None:
    result = score(CASES, with_app=True)
    assert result["frames"] / result["total"] >= 0.95, result["frame_misses"]
