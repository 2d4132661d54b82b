"""Run detection on malformed project files: a one-line usage error, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.detect import detect_run
from console.errors import UsageError


@pytest.mark.parametrize("text", ['check = "python3 app.py"', "check = 5", "check = [1, 2]"])
def test_a_check_key_that_is_not_a_table_is_a_usage_error(tmp_path: Path, text: str) -> None:
    (tmp_path / "verdict.toml").write_text(text + "\n")
    with pytest.raises(UsageError, match="verdict.toml.*check"):
        detect_run(tmp_path)


def test_a_package_json_main_with_a_space_is_quoted(tmp_path: Path) -> None:
    (tmp_path / "my server.js").write_text("")
    (tmp_path / "package.json").write_text('{"main": "my server.js"}')
    found = detect_run(tmp_path)
    assert found is not None and found.run == "node 'my server.js'"
