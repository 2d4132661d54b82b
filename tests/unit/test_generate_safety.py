"""Generated file paths stay inside the project; counts and sizes are capped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from console.generate.safety import (
    Limits,
    UnsafeProjectError,
    check_files,
    check_relative_path,
    check_tree,
    write_files,
)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/etc/passwd", "absolute"),
        ("~/.bashrc", "absolute"),
        ("../escape.py", "'..'"),
        ("src/../../escape.py", "'..'"),
        ("src/..", "'..'"),
        ("C:/Windows/x.py", "drive letter"),
        ("c:app.py", "drive letter"),
        ("src\\app.py", "backslash"),
        ("", "empty"),
        ("   ", "empty"),
        ("a\x00b", "control character"),
        ("dir/", "not a file path"),
        (".", "not a file path"),
        ("x" * 300, "too long"),
    ],
)
def test_unsafe_paths_are_refused(path: str, problem: str) -> None:
    with pytest.raises(UnsafeProjectError, match=problem):
        check_relative_path(path)


def test_safe_paths_are_normalised() -> None:
    assert check_relative_path("./src/./app.py") == "src/app.py"
    assert check_relative_path("a//b.txt") == "a/b.txt"
    assert check_relative_path("..hidden/x..y") == "..hidden/x..y"


def test_file_rules() -> None:
    limits = Limits(max_files=3, max_file_bytes=10, max_total_bytes=15)
    assert check_files([("a.py", "print(1)")], limits) == [("a.py", b"print(1)")]
    cases = [
        ([], "no files"),
        ([("a", ""), ("b", ""), ("c", ""), ("d", "")], "too many files"),
        ([("a", "x" * 11)], "file too large"),
        ([("a", "x" * 8), ("b", "y" * 8)], "project too large"),
        ([("a.py", ""), ("./a.py", "")], "duplicate file path"),
        ([("a", ""), ("a/b", "")], "both a file and a directory"),
        ([("verdict.toml", "run = 'x'")], "reserved"),
    ]
    for files, problem in cases:
        with pytest.raises(UnsafeProjectError, match=problem):
            check_files(files, limits)


def test_write_files_creates_directories_and_refuses_links(tmp_path: Path) -> None:
    dest = tmp_path / "project"
    written = write_files(dest, [("src/app.py", b"x = 1\n"), ("README.md", b"hi\n")])
    assert written == ["src/app.py", "README.md"]
    assert (dest / "src" / "app.py").read_bytes() == b"x = 1\n"
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, dest / "linked")
    with pytest.raises(UnsafeProjectError, match="link"):
        write_files(dest, [("linked/evil.py", b"boom")])
    os.symlink(outside / "target.txt", dest / "file-link")
    with pytest.raises(OSError):
        write_files(dest, [("file-link", b"boom")])
    assert list(outside.iterdir()) == []


def test_check_tree_lists_files_and_refuses_links(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "app.py").write_text("import pkg.mod\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "app.pyc").write_bytes(b"\0")
    assert check_tree(tmp_path, Limits()) == ["app.py", "pkg/mod.py"]
    with pytest.raises(UnsafeProjectError, match="too many files"):
        check_tree(tmp_path, Limits(max_files=1))
    os.symlink("/etc/passwd", tmp_path / "pkg" / "passwd")
    with pytest.raises(UnsafeProjectError, match="link in project: 'pkg/passwd'"):
        check_tree(tmp_path, Limits())
