"""Python web entries found by reading files (never importing them)."""

from __future__ import annotations

from pathlib import Path

from console.detect import detect_run
from console.detect_python import detect_python_entry


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_flask_factory_in_a_package_is_served_by_gunicorn(tmp_path: Path) -> None:
    make(tmp_path, {"shop/__init__.py": "from flask import Flask\n\ndef create_app():\n    ...\n"})
    entry, _ = detect_python_entry(tmp_path)
    assert entry is not None
    assert entry.run == "gunicorn --bind \"0.0.0.0:$PORT\" 'shop:create_app()'"
    assert (entry.source, entry.server_package) == ("shop/__init__.py", "gunicorn")


def test_annotated_fastapi_app_and_factory(tmp_path: Path) -> None:
    make(
        tmp_path,
        {"api.py": "import fastapi\nfrom fastapi import FastAPI\napi: FastAPI = FastAPI()\n"},
    )
    entry, _ = detect_python_entry(tmp_path / "nothing")
    assert entry is None
    make(tmp_path, {"main.py": "from fastapi import FastAPI\napplication: FastAPI = FastAPI()\n"})
    entry, _ = detect_python_entry(tmp_path)
    assert entry is not None and entry.run.startswith("uvicorn main:application ")


def test_a_module_that_starts_its_own_server_runs_as_a_script(tmp_path: Path) -> None:
    text = (
        "import uvicorn\nfrom fastapi import FastAPI\napp = FastAPI()\n"
        "if __name__ == '__main__':\n    uvicorn.run(app, port=8000)\n"
    )
    make(tmp_path, {"main.py": text})
    entry, _ = detect_python_entry(tmp_path)
    assert entry is not None and (entry.run, entry.server_package) == ("python3 main.py", None)


def test_src_layout_serves_from_src(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "src/blog/__init__.py": "",
            "src/blog/app.py": "from flask import Flask\nweb = Flask(__name__)\n",
        },
    )
    entry, looked = detect_python_entry(tmp_path)
    assert entry is not None
    assert entry.run == 'gunicorn --chdir src --bind "0.0.0.0:$PORT" blog.app:web'
    assert entry.source == "src/blog/app.py" and "src/blog/app.py" in looked


def test_a_server_package_already_listed_is_not_added_twice(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "requirements.txt": "Flask\nGunicorn==23.0\n",
            "app.py": "from flask import Flask\napp = Flask(__name__)\n",
        },
    )
    found = detect_run(tmp_path)
    assert found is not None and found.plans[0].added == ()
    assert found.install is not None and found.install.endswith("-r requirements.txt")


def test_requirements_with_options_or_urls_install_in_the_sandbox_only(tmp_path: Path) -> None:
    make(tmp_path, {"requirements.txt": "-e .\nflask\n", "app.py": "print('x')\n"})
    found = detect_run(tmp_path)
    assert found is not None and not found.plans[0].cacheable
    (tmp_path / "requirements.txt").write_text("flask @ https://example.invalid/f.whl\n")
    assert not detect_run(tmp_path).plans[0].cacheable  # type: ignore[union-attr]
    (tmp_path / "requirements.txt").write_text("flask[async]>=3 ; python_version >= '3.9'\n")
    assert detect_run(tmp_path).plans[0].cacheable  # type: ignore[union-attr]


def test_poetry_pyproject_and_no_dependency_file(tmp_path: Path) -> None:
    make(
        tmp_path,
        {
            "pyproject.toml": '[tool.poetry.dependencies]\npython = "^3.11"\nflask = "^3.0"\n',
            "app.py": "from flask import Flask\napp = Flask(__name__)\n",
        },
    )
    found = detect_run(tmp_path)
    assert found is not None
    assert found.plans[0].requirements == ("flask>=3.0", "gunicorn")
    (tmp_path / "pyproject.toml").unlink()
    found = detect_run(tmp_path)
    assert found is not None and found.plans[0].requirements == ("gunicorn",)
    assert found.plans[0].source == "(detected start)"
