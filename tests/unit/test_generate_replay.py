"""Replay: recorded generations are copied as the project, with their verdict.toml."""

from __future__ import annotations

import os
from pathlib import Path

from console.generate.replay import ReplayGenerator
from console.generate.result import Generator
from console.model import Combination, Job


def job(spec: str = "api", prompt: str = "v1", model: str = "alpha") -> Job:
    return Job(job_id="j1", combination=Combination(spec=spec, prompt=prompt, model=model))


def record(root: Path, rel: str, files: dict[str, str]) -> Path:
    directory = root / rel
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    return directory


async def test_copies_the_recorded_project_and_reads_verdict_toml(tmp_path: Path) -> None:
    root = tmp_path / "recorded"
    record(
        root,
        "v1/alpha",
        {
            "app.py": "print('hi')\n",
            "lib/util.py": "X = 1\n",
            "verdict.toml": 'run = "python3 app.py"\nhealth = "/healthz"\nport_env = "APP_PORT"\n',
        },
    )
    generator = ReplayGenerator(root)
    assert isinstance(generator, Generator)
    dest = tmp_path / "out"
    result = await generator.generate(job(), dest)
    assert result.ok, result.reason
    assert result.project_dir == dest
    assert (result.run, result.install, result.health, result.port_env) == (
        "python3 app.py",
        None,
        "/healthz",
        "APP_PORT",
    )
    assert result.files == ["app.py", "verdict.toml", "lib/util.py"]
    assert (dest / "lib" / "util.py").read_text() == "X = 1\n"
    assert (dest / "verdict.toml").is_file()  # kept: checking the project alone reads it too


async def test_spec_placeholder_and_model_names_with_a_vendor(tmp_path: Path) -> None:
    record(tmp_path / "rec" / "page", "v2/vendor/gamma", {"server.js": "//\n"})
    generator = ReplayGenerator(tmp_path / "rec" / "{spec}")
    result = await generator.generate(job("page", "v2", "vendor/gamma"), tmp_path / "out")
    assert result.ok and result.files == ["server.js"] and result.run is None
    other = await generator.generate(job("api", "v2", "vendor/gamma"), tmp_path / "out2")
    assert not other.ok
    assert other.reason == f"replay: no recorded generation v2/vendor/gamma/ in {tmp_path}/rec/api"


async def test_missing_empty_unsafe_and_invalid_recordings_fail_with_a_reason(
    tmp_path: Path,
) -> None:
    root = tmp_path / "rec"
    generator = ReplayGenerator(root)
    missing = await generator.generate(job(model="beta"), tmp_path / "o1")
    assert not missing.ok and "no recorded generation v1/beta/" in missing.reason
    assert not (tmp_path / "o1").exists()

    (root / "v1" / "empty").mkdir(parents=True)
    empty = await generator.generate(job(model="empty"), tmp_path / "o2")
    assert not empty.ok and "is empty" in empty.reason

    linked = record(root, "v1/linked", {"app.py": "x = 1\n"})
    os.symlink("/etc/hostname", linked / "secret")
    unsafe = await generator.generate(job(model="linked"), tmp_path / "o3")
    assert not unsafe.ok and "link in project: 'secret'" in unsafe.reason

    record(root, "v1/badtoml", {"app.py": "", "verdict.toml": "run = 3\n"})
    bad = await generator.generate(job(model="badtoml"), tmp_path / "o4")
    assert not bad.ok and "verdict.toml: run: must be a non-empty string" in bad.reason

    escape = await generator.generate(job(model=".."), tmp_path / "o5")
    assert not escape.ok and "unusable" in escape.reason
