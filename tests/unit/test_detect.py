"""Run-command detection, in its documented order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.detect import detect_run
from console.errors import UsageError


def make(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / name.replace("__", ".")).write_text(text)
    return tmp_path


def test_verdict_toml_wins(tmp_path: Path) -> None:
    project = make(
        tmp_path,
        verdict__toml='run = "python3 serve.py"\ninstall = "true"\nhealth = "/ping"\n',
        app__py="",
        package__json=json.dumps({"scripts": {"start": "node x.js"}}),
    )
    found = detect_run(project)
    assert found is not None
    assert (found.run, found.source, found.install, found.health) == (
        "python3 serve.py",
        "verdict.toml",
        "true",
        "/ping",
    )


def test_verdict_toml_check_section_and_bad_toml(tmp_path: Path) -> None:
    make(tmp_path, verdict__toml='[check]\nrun = "node a.js"\n')
    found = detect_run(tmp_path)
    assert found is not None and found.run == "node a.js"
    (tmp_path / "verdict.toml").write_text("run = [")
    with pytest.raises(UsageError, match="verdict.toml"):
        detect_run(tmp_path)


def test_package_json_start_then_manage_then_entries(tmp_path: Path) -> None:
    make(tmp_path, package__json=json.dumps({"scripts": {"start": "node s.js"}}), manage__py="")
    assert detect_run(tmp_path).run == "npm start"  # type: ignore[union-attr]
    (tmp_path / "package.json").unlink()
    assert detect_run(tmp_path).source == "manage.py"  # type: ignore[union-attr]
    (tmp_path / "manage.py").unlink()
    make(tmp_path, main__py="", server__py="", index__js="")
    assert detect_run(tmp_path).run == "python3 main.py"  # type: ignore[union-attr]
    (tmp_path / "main.py").unlink()
    (tmp_path / "server.py").unlink()
    assert detect_run(tmp_path).run == "node index.js"  # type: ignore[union-attr]


def test_nothing_to_run(tmp_path: Path) -> None:
    make(tmp_path, README__md="# nothing")
    assert detect_run(tmp_path) is None
