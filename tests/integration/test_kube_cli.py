"""`verdict check --sandbox kube`, `verdict kube gc|setup` against the kmock emulator."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.kmock_kube import CONFIGMAPS, PODS, KubeEmulator
from tests.support.kubelet import Kubelet

PYAPP = Path(__file__).parents[1] / "fixtures" / "pyapp"
pytestmark = pytest.mark.skipif(
    shutil.which("unshare") is None, reason="the test kubelet needs unshare (util-linux)"
)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[KubeEmulator, dict[str, str]]]:
    emulator = KubeEmulator().start()
    kubelet = Kubelet(emulator).start()
    env = dict(os.environ, KUBECONFIG=str(emulator.kubeconfig(tmp_path)))
    env["VERDICT_DB"] = str(tmp_path / "verdict.db")
    try:
        yield emulator, env
    finally:
        kubelet.stop()
        emulator.stop()


def _verdict(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args], env=env, capture_output=True, text=True,
        timeout=60,
    )


def test_check_in_a_pod_passes(cluster: tuple[KubeEmulator, dict[str, str]]) -> None:
    emulator, env = cluster
    done = _verdict(["check", str(PYAPP), "--run", "python3 app.py", "--health", "/health",
                     "--settle", "0.2", "--sandbox", "kube", "--json"], env)
    assert done.returncode == 0, done.stderr
    assert '"verdict": "pass"' in done.stdout
    assert emulator.objects(PODS) == []


def test_dry_run_prints_the_objects_without_a_cluster(tmp_path: Path) -> None:
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "none"), VERDICT_DB=str(tmp_path / "d"))
    done = _verdict(["check", str(PYAPP), "--run", "python3 app.py", "--sandbox", "kube",
                     "--dry-run"], env)
    assert done.returncode == 0, done.stderr
    kinds = [doc["kind"] for doc in yaml.safe_load_all(done.stdout)]
    assert kinds == ["ConfigMap", "Pod"]


def test_setup_prints_the_guarded_namespace(tmp_path: Path) -> None:
    done = _verdict(["kube", "setup"], dict(os.environ))
    docs = list(yaml.safe_load_all(done.stdout))
    namespace = docs[0]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    deny = next(d for d in docs if d["kind"] == "NetworkPolicy")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    role = next(d for d in docs if d["kind"] == "Role")
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert "exec" not in str(role) and "escalate" not in verbs and "*" not in verbs


def test_unconfigured_cluster_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env.update(KUBECONFIG=str(tmp_path / "none"), VERDICT_DB=str(tmp_path / "d"))
    done = _verdict(["kube", "gc"], env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no usable Kubernetes configuration" in done.stderr


def test_gc_removes_what_a_killed_run_left(cluster: tuple[KubeEmulator, dict[str, str]]) -> None:
    emulator, env = cluster
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "check", str(PYAPP), "--run", "python3 app.py",
         "--env", "MODE=no_port", "--start-timeout", "60", "--sandbox", "kube"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not emulator.objects(PODS) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a condition with a deadline
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(emulator.objects(PODS)) == 1 and len(emulator.objects(CONFIGMAPS)) == 1
    done = _verdict(["kube", "gc", "--older-than", "0s"], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("deleted") == 2
    assert emulator.objects(PODS) == [] and emulator.objects(CONFIGMAPS) == []


def test_a_forbidden_verb_is_one_line_exit_2(cluster: tuple[KubeEmulator, dict[str, str]]) -> None:
    emulator, env = cluster
    emulator.forbid("GET", r"/namespaces/verdict-sandbox/pods$")
    done = _verdict(["kube", "gc"], env)
    assert done.returncode == 2
    assert done.stderr == (
        "verdict kube: error: forbidden: cannot get pods in namespace verdict-sandbox"
        " (check the worker's Role: verdict kube setup)\n"
    )

