"""Every project of the corpus is detected as its ``expected.toml`` says (no network)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from console.detect import detect_run

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "projects"
PROJECTS = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.toml").is_file())


def expected(name: str) -> dict[str, object]:
    return tomllib.loads((CORPUS / name / "expected.toml").read_text(encoding="utf-8"))


def test_the_corpus_has_twenty_projects_each_naming_what_it_imitates() -> None:
    assert len(PROJECTS) >= 20
    for name in PROJECTS:
        assert str(expected(name)["imitates"]).strip(), name


@pytest.mark.parametrize("name", PROJECTS)
def test_detected_start_and_install(name: str) -> None:
    want = expected(name)
    found = detect_run(CORPUS / name)
    assert found is not None
    assert (found.run, found.source) == (want["run"], want["source"])
    assert [plan.kind for plan in found.plans] == want["install"]
    added = [p for plan in found.plans for p in plan.added]
    assert added == want.get("added", [])
    if "install_command" in want:
        assert found.install is not None and found.install.endswith(str(want["install_command"]))
    if want["install"] == ["python"]:
        assert found.path_prepend == (".verdict-venv/bin",)
    else:
        assert found.path_prepend == ()
