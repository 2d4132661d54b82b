"""Shared fixtures.  Every test runs with its own XDG dirs so nothing touches $HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.db import Database

pytest_plugins = ["tests.support.openai_server", "tests.support.kafka_broker"]

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for name in (
        "VERDICT_DB",
        "VERDICT_CONFIG",
        "VERDICT_LLM_BASE_URL",
        "VERDICT_LLM_MODEL",
        "VERDICT_LLM_API_KEY",
        "OPENAI_API_KEY",
        "VERDICT_QUEUE_URL",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "verdict.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = Database(db_path)
    yield database
    database.close()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
