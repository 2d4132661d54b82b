"""The in-pod part for real: the pod's containers under podman + runc with the restricted
profile's restrictions, driven through the emulator by the real Kubernetes sandbox."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.checker import run_check
from console.model import CheckSpec, ExitClass, Verdict
from console.sandbox.kube_agent import MARKER
from console.settings import SandboxSettings
from tests.support.kmock_kube import PODS, KubeEmulator
from tests.support.kubelet import Kubelet
from tests.support.podman_pod import PodmanRunner, ensure_podman, local_rootfs, podman_problem

PYAPP = Path(__file__).parents[1] / "fixtures" / "pyapp"


@pytest.fixture(scope="session")
def podman_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    problem = ensure_podman()
    if problem:
        pytest.skip(problem)
    try:
        with local_rootfs(tmp_path_factory.mktemp("podman") / "rootfs") as rootfs:
            problem = podman_problem(rootfs)
            if problem:
                pytest.skip(problem)
            yield rootfs
    except OSError as exc:  # mount refused (no privilege in this container)
        pytest.skip(f"cannot mount a root filesystem for podman: {exc}")


@pytest.fixture
def cluster(
    podman_rootfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[KubeEmulator]:
    runner = type("Runner", (PodmanRunner,), {"rootfs": podman_rootfs})
    emulator = KubeEmulator().start()
    kubelet = Kubelet(emulator, runner=runner).start()
    monkeypatch.setenv("KUBECONFIG", str(emulator.kubeconfig(tmp_path)))
    try:
        yield emulator
    finally:
        kubelet.stop()
        emulator.stop()


def _check(mode: str, kind: str) -> object:
    spec = CheckSpec(project=PYAPP, run="python3 app.py", health="/health",
                     env={"MODE": mode}, settle=0.3, start_timeout=20)
    return asyncio.run(run_check(spec, settings=SandboxSettings(kind=kind)))


def _markers(emulator: KubeEmulator) -> list[dict]:
    lines = [text for (_, pod, container), entries in emulator.logs.items()
             if container == "agent" for _, text in entries]
    return [json.loads(line[len(MARKER):]) for line in lines if line.startswith(MARKER)]


def test_agent_and_app_in_restricted_containers_pass(cluster: KubeEmulator) -> None:
    result = _check("ok", "kube")
    assert result.verdict == Verdict.PASS, result.reason  # type: ignore[attr-defined]
    assert (result.port, result.http_root, result.http_health) == (8000, 200, 200)  # type: ignore[attr-defined]
    marks = _markers(cluster)
    ports = next(m for m in marks if m["ev"] == "ports")
    assert ports["ports"] == [[8000, "0.0.0.0"]]  # only the pod's own sockets are seen
    assert {"ev": "http", "path": "/", "port": 8000, "status": 200} in marks
    assert {"ev": "http", "path": "/health", "port": 8000, "status": 200} in marks
    assert cluster.objects(PODS) == []


@pytest.mark.parametrize("mode", ["config_error", "ignore_port", "segv"])
def test_verdicts_match_the_local_sandbox(cluster: KubeEmulator, mode: str) -> None:
    in_pod, local = _check(mode, "kube"), _check(mode, "local")
    assert in_pod.verdict == local.verdict  # type: ignore[attr-defined]
    assert in_pod.exit.cls == local.exit.cls  # type: ignore[attr-defined]
    if mode == "segv":
        assert in_pod.exit.cls == ExitClass.SIGNAL  # type: ignore[attr-defined]
