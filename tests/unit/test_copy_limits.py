"""The project copy has limits, refuses system directories, and stops on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from console.sandbox import copy as copy_module
from console.sandbox.copy import CopyLimits, CopyRefused, CopyStopped, copy_project, refuse_source
from console.sandbox.local import LocalSandbox
from console.settings import SandboxSettings


def _tree(root: Path, files: int) -> Path:
    for number in range(files):
        folder = root / f"d{number // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{number}.txt").write_text("x")
    return root


def test_too_many_files_is_refused_at_once_and_nothing_is_copied(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src", 1500)
    started = time.monotonic()
    with pytest.raises(CopyRefused, match="more than 1000 files"):
        copy_project(source, tmp_path / "dest", limits=CopyLimits(max_files=1000))
    assert time.monotonic() - started < 1.0
    assert not (tmp_path / "dest").exists()


def test_too_many_bytes_is_refused_in_under_a_second(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("a.bin", "b.bin", "c.bin"):  # 3 × 8 GB, sparse: nothing is written
        with open(source / name, "wb") as handle:
            handle.truncate(8 * 1024**3)
    started = time.monotonic()
    with pytest.raises(CopyRefused, match="more than 1024 MB"):
        copy_project(source, tmp_path / "dest")
    assert time.monotonic() - started < 1.0
    assert not (tmp_path / "dest").exists()


def test_within_the_limits_everything_is_copied(tmp_path: Path) -> None:
    source = _tree(tmp_path / "src", 300)
    report = copy_project(source, tmp_path / "dest", limits=CopyLimits(max_files=300))
    assert report.files == 300


@pytest.mark.parametrize("path", ["/", "/proc", "/proc/self", "/sys", "/dev", "/dev/shm"])
def test_system_directories_are_refused(path: str) -> None:
    with pytest.raises(CopyRefused, match="system directory"):
        refuse_source(Path(path))


def test_the_data_directory_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "runs").mkdir(parents=True)
    with pytest.raises(CopyRefused, match="data directory"):
        refuse_source(data / "runs", data)
    refuse_source(tmp_path, data)  # a project that merely contains it is measured instead


def test_a_stop_request_ends_the_copy(tmp_path: Path) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(CopyStopped):
        copy_project(_tree(tmp_path / "src", 10), tmp_path / "dest", stop=stop)


async def test_ctrl_c_during_the_copy_stops_it_and_removes_the_partial_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _tree(tmp_path / "src", 200)
    reached, release = threading.Event(), threading.Event()
    real_copy = copy_module.shutil.copy2
    copied = 0

    def held_copy(src: str, dst: str, **kwargs: object) -> object:
        nonlocal copied
        copied += 1
        if copied == 5:  # hold the copy mid-way until the test has cancelled it
            reached.set()
            release.wait(10)
        return real_copy(src, dst, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(copy_module.shutil, "copy2", held_copy)
    box = LocalSandbox("ctrl-c", base_dir=tmp_path / "runs", settings=SandboxSettings())
    task = asyncio.create_task(box.prepare(source))
    assert await asyncio.to_thread(reached.wait, 10)
    assert (box.project_dir).exists()
    task.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not box.workdir.exists()
    assert copied < 200  # it stopped rather than finishing the copy
    assert os.listdir(tmp_path / "runs") == []
