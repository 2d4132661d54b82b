"""Input checks of the engine against values that would break the sandbox itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.checker import validate_spec
from console.errors import UsageError
from console.model import CheckSpec


@pytest.mark.parametrize("name", ["PATH", "HOME", "VERDICT_RUN", "LD_PRELOAD", "1PORT", "A-B"])
def test_a_port_variable_the_sandbox_owns_is_refused(tmp_path: Path, name: str) -> None:
    spec = CheckSpec(project=tmp_path, run="true", port_env=name)
    with pytest.raises(UsageError, match="port"):
        validate_spec(spec)


def test_a_port_variable_from_verdict_toml_is_checked_too(tmp_path: Path) -> None:
    (tmp_path / "verdict.toml").write_text('run = "python3 app.py"\nport_env = "PATH"\n')
    with pytest.raises(UsageError, match="PATH"):
        validate_spec(CheckSpec(project=tmp_path))


def test_an_ordinary_port_variable_is_accepted(tmp_path: Path) -> None:
    spec = validate_spec(CheckSpec(project=tmp_path, run="true", port_env="SERVER_PORT"))
    assert spec.port_env == "SERVER_PORT"
