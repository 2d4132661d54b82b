"""A stored dependency set is shown to an isolated run read-only in place: the app imports
from it and runs its console scripts (built elsewhere, found relative to themselves), a
write into it is refused by the kernel, and the store is unchanged.  Without namespaces the
run gets a copy, and what it writes there never reaches the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from console import depcache
from console.checker import run_check
from console.detect import detect_run
from console.install import VENV_DIR
from console.model import CheckSpec, Verdict
from console.settings import SandboxSettings

SERVER = """\
import http.server, os, sys
import tinydep
try:
    open(os.path.join(sys.prefix, "poison.py"), "w").close()
    print("venv writable", flush=True)
except OSError as exc:
    print(f"venv write refused: {exc.strerror}", flush=True)
print(f"tinydep {tinydep.VERSION} from {os.path.dirname(tinydep.__file__)}", flush=True)
handler = http.server.SimpleHTTPRequestHandler
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), handler).serve_forever()
"""


def plant_set(store: Path, project: Path, build: Path) -> Path:
    """Build a set the way the harness does (a venv elsewhere, scripts made relocatable)
    and store it under the project's key; no registry needed."""
    (plan,) = detect_run(project).plans  # type: ignore[union-attr]
    venv = build / "venv"
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python3*/site-packages")
    (site / "tinydep.py").write_text("VERSION = 1\n")
    script = venv / "bin" / "tinyserve"
    script.write_text(f"#!{venv}/bin/python\n{SERVER}")
    script.chmod(0o755)
    depcache._relocate_scripts(venv)
    assert not script.read_text().startswith(f"#!{venv}")
    final = store / "python" / depcache._key(plan, project)
    final.parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(venv), str(final)], check=True)
    manifest = depcache._manifest(final, lambda rel: False)
    manifest.update(built_at=str(venv), relocatable=True)
    (final / "manifest.json").write_text(json.dumps(manifest))
    return final


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("VERDICT_DEP_CACHE", str(tmp_path / "store"))
    root = tmp_path / "app"
    root.mkdir()
    (root / "requirements.txt").write_text("tinydep\n")
    (root / "Procfile").write_text("web: tinyserve\n")
    return root


def texts(result: object) -> list[str]:
    return [line.text for line in result.log_tail]  # type: ignore[attr-defined]


async def test_an_isolated_run_sees_the_set_read_only_in_place(
    project: Path, tmp_path: Path
) -> None:
    stored = plant_set(tmp_path / "store", project, tmp_path / "build")
    before = depcache._manifest(stored, lambda rel: False)
    result = await run_check(CheckSpec(project=project), settings=SandboxSettings(stop_grace=0.5))
    if not result.isolation.startswith("namespaces"):
        pytest.skip(f"no namespaces here: {result.isolation}")
    assert result.verdict == Verdict.PASS, result.reason
    restore = next(stage for stage in result.stages if stage.name == "restore")
    assert restore.detail == "mounted read-only"
    lines = texts(result)
    assert "venv write refused: Read-only file system" in lines
    inside = f"/project/{VENV_DIR}/"
    assert any(line.startswith("tinydep 1 from ") and inside in line for line in lines)
    assert any("mounted read-only" in line and "SHA-256" in line for line in lines)
    assert depcache._manifest(stored, lambda rel: False) == before  # the store is untouched


async def test_without_namespaces_the_run_gets_a_copy_the_store_never_sees(
    project: Path, tmp_path: Path
) -> None:
    stored = plant_set(tmp_path / "store", project, tmp_path / "build")
    settings = SandboxSettings(stop_grace=0.5, isolation="off")
    result = await run_check(CheckSpec(project=project), settings=settings)
    assert result.verdict == Verdict.PASS, result.reason
    restore = next(stage for stage in result.stages if stage.name == "restore")
    assert restore.detail == "restored"
    assert "venv writable" in texts(result)  # its own copy
    assert not list(stored.rglob("poison.py"))


async def test_a_set_with_a_file_added_after_its_build_is_not_shown(
    project: Path, tmp_path: Path
) -> None:
    stored = plant_set(tmp_path / "store", project, tmp_path / "build")
    (site,) = stored.glob("lib/python3*/site-packages")
    (site / "sitecustomize.py").write_text("print('planted')\n")
    # No network: the ordinary install that follows the eviction stays on this machine.
    settings = SandboxSettings(stop_grace=0.5, network="none")
    spec = CheckSpec(project=project, env={"PIP_RETRIES": "0", "PIP_TIMEOUT": "1"})
    result = await run_check(spec, settings=settings)
    if not result.isolation.startswith("namespaces"):
        pytest.skip(f"no namespaces here: {result.isolation}")
    assert "planted" not in texts(result)
    assert any("differs from the digest" in line for line in texts(result))
    assert not stored.exists()  # evicted; the sandbox installs the ordinary way instead


def launch(*args: str) -> subprocess.CompletedProcess[str]:
    from console.sandbox.local import LAUNCHER

    argv = [sys.executable, "-I", "-S", str(LAUNCHER), "--isolate", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_the_launcher_mounts_only_where_no_symlink_leads(tmp_path: Path) -> None:
    """Project code (an install step) may have rearranged the project copy between the
    restore and the run: a mount point that is, or lies behind, a symlink is refused rather
    than followed to somewhere else."""
    source = tmp_path / "set"
    source.mkdir()
    (source / "lib.py").write_text("X = 1\n")
    place = tmp_path / "project" / "venv"
    place.mkdir(parents=True)
    shown = launch("--bind-ro", f"{source}={place}", "--", "cat", str(place / "lib.py"))
    if shown.returncode == 125 and "unshare" in shown.stderr:
        pytest.skip(f"no namespaces here: {shown.stderr.strip()}")
    assert shown.returncode == 0 and shown.stdout == "X = 1\n", shown.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "project" / "link").symlink_to(elsewhere)
    (tmp_path / "swapped").symlink_to(tmp_path / "project")
    for target in (tmp_path / "project" / "link", tmp_path / "swapped" / "venv"):
        refused = launch("--bind-ro", f"{source}={target}", "--", "true")
        assert refused.returncode == 125 and "a symlink is on its way" in refused.stderr
    assert not list(elsewhere.iterdir())
