"""Start commands read from what projects declare for platforms; malformed files are hints
that are not used, never errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console import detect_declared as declared
from console.detect import detect_run


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_procfile_web_process_only(tmp_path: Path) -> None:
    path = write(tmp_path, "Procfile", "release: python migrate.py\nweb: gunicorn app:app -w 2\n")
    assert declared.from_procfile(path) == "gunicorn app:app -w 2"
    assert declared.from_procfile(write(tmp_path, "Procfile", "worker: celery\n")) is None


def test_render_yaml_first_web_service(tmp_path: Path) -> None:
    text = (
        "services:\n  - type: worker\n    startCommand: celery worker\n"
        "  - type: web\n    startCommand: uvicorn main:app --port $PORT\n"
    )
    assert declared.from_render_yaml(write(tmp_path, "render.yaml", text)) == (
        "uvicorn main:app --port $PORT"
    )
    assert declared.from_render_yaml(write(tmp_path, "render.yaml", "services: [")) is None


def test_railway_toml_and_json_nixpacks_and_app_json(tmp_path: Path) -> None:
    toml = write(tmp_path, "railway.toml", '[deploy]\nstartCommand = "npm run serve"\n')
    assert declared.from_railway(toml) == "npm run serve"
    railway_json = write(tmp_path, "railway.json", json.dumps({"deploy": {"startCommand": "x"}}))
    assert declared.from_railway(railway_json) == "x"
    nixpacks = write(tmp_path, "nixpacks.toml", '[start]\ncmd = "python3 serve.py"\n')
    assert declared.from_nixpacks(nixpacks) == "python3 serve.py"
    app_json = write(tmp_path, "app.json", json.dumps({"scripts": {"web": "node web.js"}}))
    assert declared.from_app_json(app_json) == "node web.js"
    assert declared.from_app_json(write(tmp_path, "app.json", "[1, 2]")) is None
    assert declared.from_railway(write(tmp_path, "railway.toml", "deploy = [")) is None


@pytest.mark.parametrize(
    ("dockerfile", "command"),
    [
        ('WORKDIR /app\nCMD ["python", "/app/server.py"]\n', "python server.py"),
        ('ENTRYPOINT ["node"]\nCMD ["index.js"]\n', "node index.js"),
        ("CMD gunicorn -b 0.0.0.0:$PORT app:app\n", "gunicorn -b 0.0.0.0:$PORT app:app"),
        ('CMD ["uvicorn", "main:app", \\\n  "--port", "80"]\n', "uvicorn main:app --port 80"),
        ("FROM python:3.12\nRUN pip install flask\n", None),
    ],
)
def test_dockerfile_cmd_and_entrypoint_as_a_hint(
    tmp_path: Path, dockerfile: str, command: str | None
) -> None:
    assert declared.from_dockerfile(write(tmp_path, "Dockerfile", dockerfile)) == command


def test_declared_order_procfile_before_dockerfile_before_package_json(tmp_path: Path) -> None:
    write(tmp_path, "package.json", json.dumps({"scripts": {"start": "node a.js"}}))
    write(tmp_path, "Dockerfile", 'CMD ["node", "b.js"]\n')
    write(tmp_path, "Procfile", "web: node c.js\n")
    found = detect_run(tmp_path)
    assert found is not None and (found.run, found.source) == ("node c.js", "Procfile")
    (tmp_path / "Procfile").unlink()
    found = detect_run(tmp_path)
    assert found is not None and (found.run, found.source) == ("node b.js", "Dockerfile")
    assert "hint" in found.why


def test_explain_lists_what_was_looked_at_in_order(tmp_path: Path) -> None:
    write(tmp_path, "requirements.txt", "flask\n")
    write(tmp_path, "main.py", "from flask import Flask\napp = Flask(__name__)\n")
    found = detect_run(tmp_path)
    assert found is not None
    text = "\n".join(found.explain())
    assert "from main.py: defines the Flask app 'app' but never starts a server" in text
    assert "looked at, in order: verdict.toml, Procfile" in text
    assert text.index("package.json") < text.index("manage.py") < text.index(", main.py")
    assert "added gunicorn" in text
    assert found.to_json()["install_steps"][0]["added"] == ["gunicorn"]  # type: ignore[index]
