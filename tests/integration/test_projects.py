"""``verdict check DIR`` with no options on every project of the corpus.

Each project's ``expected.toml`` gives its verdict (and a piece of its reason).  Projects
that install packages from PyPI or npm are marked ``slow_install``; they share one
dependency cache for the whole session (``$VERDICT_DEP_CACHE``, by default under the
user's cache directory), so only the first session on a machine pays for the downloads.
The checks run a few at a time in one session fixture; each test asserts on one project.
"""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.cli import VERDICT, run_verdict

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "projects"
PROJECTS = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.toml").is_file())
PARALLEL = 3
INSTALL_FAILURES = ("npm-stale-lock", "pip-typo")


def expected(name: str) -> dict[str, object]:
    return tomllib.loads((CORPUS / name / "expected.toml").read_text(encoding="utf-8"))


def shared_cache() -> Path:
    """One cache for every session on this machine, so warm runs stay fast."""
    configured = os.environ.get("VERDICT_DEP_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "verdict-tests" / "deps"


def _check(name: str, db: Path, cache: Path) -> dict[str, object]:
    env = dict(os.environ, VERDICT_DEP_CACHE=str(cache), VERDICT_SANDBOX_STOP_GRACE="0.5")
    done = subprocess.run(
        [*VERDICT, "--db", str(db), "check", str(CORPUS / name), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    if done.returncode not in (0, 1):
        return {"verdict": f"exit {done.returncode}", "reason": done.stderr.strip()}
    out: dict[str, object] = json.loads(done.stdout)
    out["exit_status"] = done.returncode
    return out


def _selected(session: pytest.Session) -> list[str]:
    """The projects the selected tests ask about (``-m "not slow_install"`` runs fewer)."""
    names: set[str] = set()
    for item in session.items:
        if "corpus_results" not in getattr(item, "fixturenames", ()):
            continue
        callspec = getattr(item, "callspec", None)
        names.update([callspec.params["name"]] if callspec else INSTALL_FAILURES)
    return sorted(names)


@pytest.fixture(scope="session")
def corpus_results(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, object]]:
    """Every selected project checked once, a few at a time."""
    cache = shared_cache()
    cache.mkdir(parents=True, exist_ok=True)
    root = tmp_path_factory.mktemp("corpus")
    names = _selected(request.session)
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {name: pool.submit(_check, name, root / f"{name}.db", cache) for name in names}
    return {name: future.result() for name, future in futures.items()}


def _marks(name: str) -> list[pytest.MarkDecorator]:
    return [] if expected(name).get("offline") else [pytest.mark.slow_install]


@pytest.mark.timeout(900)  # a cold dependency cache downloads every package once
@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in PROJECTS])
def test_verdict_with_no_options(name: str, corpus_results: dict[str, dict[str, object]]) -> None:
    want = expected(name)
    got = corpus_results[name]
    assert got["verdict"] == want["verdict"], got["reason"]
    assert got["exit_status"] == (0 if want["verdict"] == "pass" else 1)
    if "reason_contains" in want:
        assert str(want["reason_contains"]) in str(got["reason"])
    # Every dependency set that qualifies is served by the shared cache (built on the first
    # session, then mounted or copied), not installed again in the sandbox.
    steps = got["detection"]["install_steps"]  # type: ignore[index]
    if any(step["cacheable"] for step in steps) and want["verdict"] != "install_failed":
        restore = next(s for s in got["stages"] if s["name"] == "restore")  # type: ignore[union-attr]
        assert restore["detail"] != "not used", got["log_tail"]
    # A warning said in the reason is also its own JSON field.
    logged = [w for w in got["warnings"] if w.startswith("the log")]  # type: ignore[union-attr]
    assert len(logged) == str(got["reason"]).count("Warning: the log")
    assert got["command"] == want["run"]
    assert got["from"] == {"run": want["source"], "install": got["detection"]["install_source"]}  # type: ignore[index]
    assert got["started"] <= got["finished"]  # type: ignore[operator]
    assert "/runs/" not in str(got["reason"])  # sandbox paths are shown relative


@pytest.mark.slow_install
@pytest.mark.timeout(900)
def test_install_failed_quotes_the_package_managers_error_not_its_boilerplate(
    corpus_results: dict[str, dict[str, object]],
) -> None:
    for name in INSTALL_FAILURES:
        reason = str(corpus_results[name]["reason"])
        assert "A complete log of this run" not in reason
        assert "[notice]" not in reason


def test_explain_detect_says_what_from_which_file_and_why_and_runs_nothing(tmp_path: Path) -> None:
    done = run_verdict(
        "check", str(CORPUS / "flaskr-no-table"), "--explain-detect", db=tmp_path / "d.db"
    )
    assert done.returncode == 0, done.stderr
    assert "start:   gunicorn --bind \"0.0.0.0:$PORT\" 'flaskr:create_app()'" in done.stdout
    assert "from flaskr/__init__.py: defines the Flask app factory create_app()" in done.stdout
    assert "from requirements.txt: Python dependencies into a per-run virtual environment" in (
        done.stdout
    )
    assert "added gunicorn: the detected start needs it" in done.stdout
    assert not (tmp_path / "d.db").exists()  # nothing ran, nothing recorded
    as_json = run_verdict(
        "check", str(CORPUS / "monorepo-node"), "--explain-detect", "--json", db=tmp_path / "d.db"
    )
    detection = json.loads(as_json.stdout)
    assert detection["from"] == {"run": "apps/api/server.js", "install": "package-lock.json"}
    assert detection["detection"]["install_steps"][0]["command"] == "npm ci --no-audit --no-fund"


def test_nothing_to_run_is_one_line_listing_what_was_looked_for(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# docs only\n")
    done = run_verdict("check", str(tmp_path), db=tmp_path / "d.db")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "looked for verdict.toml, Procfile, render.yaml" in done.stderr
    assert "manage.py" in done.stderr and "packages/*" in done.stderr
