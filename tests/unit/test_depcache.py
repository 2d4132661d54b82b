"""The shared dependency cache: copies (never links) into a run that cannot mount it, every
byte checked against the digest recorded when the harness built the set, and a changed set
is never used (mounting is in tests/integration/test_depcache_mount.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from console import depcache
from console.install import VENV_DIR, InstallPlan
from console.sandbox.local import LocalSandbox


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "store"
    monkeypatch.setenv("VERDICT_DEP_CACHE", str(root))
    return root


PLAN = InstallPlan("python", "false", "requirements.txt", requirements=("flask",), cacheable=True)


def plant(store: Path, project: Path) -> Path:
    """A stored set as the harness leaves it after a build (built somewhere else)."""
    built_at = "/scratch/build/venv"
    key = depcache._key(PLAN, project)
    final = store / "python" / key
    (final / "bin").mkdir(parents=True)
    (final / "lib" / "site").mkdir(parents=True)
    (final / "bin" / "serve").write_text(f"#!{built_at}/bin/python\nprint('serve')\n")
    (final / "lib" / "site" / "flask.py").write_text("VERSION = '3'\n")
    os.utime(final / "lib" / "site" / "flask.py", (1_600_000_000, 1_600_000_000))
    (final / "pyvenv.cfg").write_text(f"home = /usr/bin\ncommand = python3 -m venv {built_at}\n")
    (final / "bin" / "python3").symlink_to("/usr/bin/python3")
    manifest = depcache._manifest(final, lambda rel: False)
    manifest["built_at"] = built_at
    (final / "manifest.json").write_text(json.dumps(manifest))
    return final


def test_a_stored_set_is_copied_into_the_run_with_paths_rewritten(
    store: Path, tmp_path: Path
) -> None:
    project = tmp_path / "run" / "project"
    project.mkdir(parents=True)
    stored = plant(store, project)
    notes: list[str] = []
    restored = depcache.restore(PLAN, project, notes.append)
    assert restored is not None and (restored.files, restored.built) == (3, False)
    venv = project / VENV_DIR
    assert (venv / "lib" / "site" / "flask.py").read_text() == "VERSION = '3'\n"
    assert (venv / "bin" / "serve").read_text().startswith(f"#!{venv}/bin/python\n")
    assert os.access(venv / "bin" / "serve", os.X_OK)
    assert os.readlink(venv / "bin" / "python3") == "/usr/bin/python3"
    # The stored times are kept: byte code compiled at build time stays valid.
    copied, original = venv / "lib" / "site" / "flask.py", stored / "lib" / "site" / "flask.py"
    assert copied.stat().st_mtime_ns == original.stat().st_mtime_ns
    # A copy, not a link: what the run writes into its environment never reaches the store.
    (venv / "lib" / "site" / "flask.py").write_text("import os; os.system('evil')\n")
    assert (stored / "lib" / "site" / "flask.py").read_text() == "VERSION = '3'\n"
    assert "restored" in notes[0] and "SHA-256" in notes[0]


def test_a_set_changed_after_it_was_built_is_evicted_and_not_used(
    store: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    stored = plant(store, project)
    (stored / "lib" / "site" / "flask.py").write_text("import os; os.system('evil')\n")
    notes: list[str] = []
    assert depcache.restore(PLAN, project, notes.append) is None
    assert "differs from the digest" in notes[0] and "installing in the sandbox" in notes[0]
    assert not stored.exists()
    assert not (project / VENV_DIR / "lib" / "site" / "flask.py").exists()
    # Put aside, not deleted: a run that has the set mounted keeps its files.
    (aside,) = (store / "evicted").iterdir()
    assert (aside / "lib" / "site" / "flask.py").is_file()


def test_a_failed_build_is_remembered_and_plans_that_do_not_qualify_are_not_built(
    store: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    key = depcache._key(PLAN, project)
    (store / "python").mkdir(parents=True)
    (store / "python" / f"{key}.failed").write_text("ERROR: No matching distribution\n")
    notes: list[str] = []
    assert depcache.restore(PLAN, project, notes.append) is None
    assert "No matching distribution" in notes[0]
    unqualified = InstallPlan("python", "x", "requirements.txt", cacheable=False)
    assert depcache.restore(unqualified, project, notes.append) is None
    assert len(notes) == 1  # not even tried


def test_the_cache_can_be_turned_off_and_its_path_never_reaches_a_run(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = LocalSandbox("r1", base_dir=tmp_path / "runs")
    sandbox.path_prepend = [f"{VENV_DIR}/bin"]
    env = sandbox.environment()
    assert env["PATH"].split(os.pathsep)[0] == str(sandbox.project_dir / VENV_DIR / "bin")
    assert not any(str(store) in value for value in env.values())
    monkeypatch.setenv("VERDICT_DEP_CACHE", "off")
    assert depcache.store_dir() is None
    assert depcache.restore(PLAN, tmp_path, lambda note: None) is None


def test_npm_keys_follow_the_declared_dependencies_and_the_lockfile(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"name": "a", "dependencies": {"x": "1"}}))
    (tmp_path / "package-lock.json").write_text("{}")
    plan = InstallPlan(
        "npm", "npm ci", "package-lock.json", cacheable=True, lockfile="package-lock.json"
    )
    first = depcache._key(plan, tmp_path)
    (tmp_path / "package.json").write_text(
        json.dumps(
            {"name": "renamed", "scripts": {"start": "node s.js"}, "dependencies": {"x": "1"}}
        )
    )
    assert depcache._key(plan, tmp_path) == first  # only what decides the installed tree
    (tmp_path / "package-lock.json").write_text('{"lockfileVersion": 3}')
    assert depcache._key(plan, tmp_path) != first


def test_a_failed_build_is_tried_again_an_hour_later(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    failed = store / "python" / f"{depcache._key(PLAN, project)}.failed"
    failed.parent.mkdir(parents=True)
    failed.write_text("ERROR: the index did not answer\n")
    builds: list[str] = []

    def build(*args: object) -> dict[str, object]:
        builds.append("built")
        raise depcache.CacheUnusable("ERROR: still no answer")

    monkeypatch.setattr(depcache, "_build_python", build)
    assert depcache.restore(PLAN, project, lambda note: None) is None
    assert builds == []  # remembered
    hour_ago = failed.stat().st_mtime - depcache.FAILED_RETRY_AFTER - 1
    os.utime(failed, (hour_ago, hour_ago))
    assert depcache.restore(PLAN, project, lambda note: None) is None
    assert builds == ["built"] and "still no answer" in failed.read_text()


REGISTRY = "https://registry.npmjs.org/"


@pytest.mark.parametrize(
    ("declared", "lock", "refused"),
    [
        ({"dependencies": {"express": "^4.21.0", "@types/node": "~20"}}, {}, None),
        ({"dependencies": {"x": "file:../x"}}, {}, "x"),
        ({"dependencies": {"x": "user/repo#main"}}, {}, "x"),
        ({"dependencies": {"x": "git+https://example.org/x.git"}}, {}, "x"),
        ({"devDependencies": {"x": "npm:other@1"}}, {}, "x"),
        (
            {"dependencies": {"a": "1"}},
            {"packages": {"": {}, "node_modules/a": {
                "resolved": f"{REGISTRY}a/-/a-1.0.0.tgz", "integrity": "sha512-x"}}},
            None,
        ),
        (
            {"dependencies": {"a": "1"}},
            {"packages": {"node_modules/a": {
                "resolved": "http://127.0.0.1:18777/a-1.0.0.tgz", "integrity": "sha512-x"}}},
            "node_modules/a",
        ),
        (
            {"dependencies": {"a": "1"}},
            {"packages": {"node_modules/a": {"resolved": f"{REGISTRY}a/-/a-1.0.0.tgz"}}},
            "node_modules/a",  # no integrity: anything could be served
        ),
        ({"dependencies": {"a": "1"}}, {"packages": {"node_modules/a": {"link": True}}}, "a"),
        (
            {"dependencies": {"a": "1"}},
            {"packages": {"node_modules/a": {"version": "1.0.0", "integrity": "sha512-x"}}},
            None,  # no "resolved": npm takes the version from the registry it is given
        ),
        (
            {"dependencies": {"a": "1"}},
            {"packages": {"node_modules/a": {
                "version": "file:../evil", "integrity": "sha512-x"}}},
            "node_modules/a",
        ),
        (
            {"dependencies": {"a": "1"}},
            {"dependencies": {"a": {
                "resolved": f"{REGISTRY}a/-/a-1.0.0.tgz", "integrity": "sha512-x",
                "dependencies": {"b": {
                    "resolved": "https://evil.example/b.tgz", "integrity": "sha1-x"}}}}},
            "b",  # lockfile v1, nested
        ),
    ],
)
def test_npm_sets_are_built_only_from_the_registry(
    declared: dict[str, object], lock: dict[str, object], refused: str | None
) -> None:
    """The harness builds on the host's network: a dependency that could be fetched from
    anywhere else (a project-chosen URL, 127.0.0.1, a path) is installed in the sandbox."""
    why = depcache._registry_only(declared, lock)
    assert (why is None) == (refused is None), why
    if refused is not None:
        assert why is not None and refused in why
