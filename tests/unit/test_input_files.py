"""Files the user names are read with caps: regular files, bounded size and nesting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.files import InputFileError, nesting_depth, read_text_file
from console.matrix import MatrixError, load_matrix


def test_special_files_are_refused_without_reading_or_waiting(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # no writer: a plain open() would wait forever
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(InputFileError, match="not a regular file"):
            read_text_file(path)


def test_a_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * 2048)
    with pytest.raises(InputFileError, match="larger than 1 KB"):
        read_text_file(big, limit=1024)
    assert read_text_file(big, limit=4096) == "#" * 2048


def test_nesting_is_measured_without_recursion() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert nesting_depth(deep, 32) == 33  # counted only just past the cap
    assert nesting_depth({"a": [1, {"b": 2}]}, 32) == 3


def test_a_matrix_nested_past_the_cap_is_one_line(tmp_path: Path) -> None:
    matrix = tmp_path / "deep.toml"
    matrix.write_text("x = " + "[" * 40 + "]" * 40 + "\n")  # within the parser's stack
    with pytest.raises(MatrixError, match="nested more than 32 levels"):
        load_matrix(matrix)
