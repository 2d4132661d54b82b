"""``verdict worker --sandbox kube``: jobs from Kafka run as pods on the emulator, and the
verdicts are the ones a local worker gives."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_kafka_workers import FIXTURES, kafka_env, verdicts_of_job
from tests.support.cli import VERDICT
from tests.support.kafka_broker import KafkaBroker
from tests.support.kmock_kube import CONFIGMAPS, PODS, KubeEmulator
from tests.support.kubelet import Kubelet

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(150)]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[KubeEmulator, Kubelet, Path]]:
    emulator = KubeEmulator().start()
    kubelet = Kubelet(emulator).start()
    try:
        yield emulator, kubelet, emulator.kubeconfig(tmp_path)
    finally:
        kubelet.stop()
        emulator.stop()


def test_a_kube_worker_gives_the_local_verdicts(
    kafka_broker: KafkaBroker,
    kafka_prefix: str,
    tmp_path: Path,
    cluster: tuple[KubeEmulator, Kubelet, Path],
) -> None:
    emulator, kubelet, kubeconfig = cluster
    url = kafka_broker.url(kafka_prefix)
    env = dict(kafka_env(), KUBECONFIG=str(kubeconfig))
    worker = subprocess.Popen(
        [*VERDICT, "--db", str(tmp_path / "worker.db"), "worker", "--queue", url,
         "--slots", "2", "--grace", "5", "--sandbox", "kube"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    console_db = tmp_path / "console.db"
    try:
        waited = subprocess.run(
            [*VERDICT, "--db", str(console_db), "run", str(FIXTURES / "quick.toml"),
             "--queue", url, "--json"],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        assert waited.returncode == 1, waited.stderr  # v2 combinations fail
        jobs = {(e["prompt"], e["model"]): e for e in json.loads(waited.stdout)["jobs"]}
        assert {k: e["verdict"] for k, e in jobs.items()} == {
            ("v1", "m1"): "pass",
            ("v1", "m2"): "pass",
            ("v2", "m1"): "crashed",
            ("v2", "m2"): "generation_failed",
        }
        for entry in jobs.values():
            assert len(verdicts_of_job(console_db, entry["job_id"])) == 1
        assert len(kubelet.started) == 3  # one pod per generated project
        assert emulator.objects(PODS) == [] and emulator.objects(CONFIGMAPS) == []
    finally:
        worker.terminate()
        _, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors


def test_a_kube_worker_without_a_cluster_is_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env["KUBECONFIG"] = str(tmp_path / "missing")
    done = subprocess.run(
        [*VERDICT, "--db", str(tmp_path / "w.db"), "worker", "--queue", "kafka://127.0.0.1:9",
         "--sandbox", "kube"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Kubernetes configuration" in done.stderr


def test_a_stopped_kube_worker_deletes_its_pods(
    kafka_broker: KafkaBroker,
    kafka_prefix: str,
    tmp_path: Path,
    cluster: tuple[KubeEmulator, Kubelet, Path],
) -> None:
    import signal
    import time

    emulator, _, kubeconfig = cluster
    url = kafka_broker.url(kafka_prefix)
    env = dict(kafka_env(), KUBECONFIG=str(kubeconfig))  # the app starts in 3 s
    queued = subprocess.run(
        [*VERDICT, "--db", str(tmp_path / "console.db"), "run", str(FIXTURES / "slow.toml"),
         "--queue", url, "--no-wait"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    worker = subprocess.Popen(
        [*VERDICT, "--db", str(tmp_path / "worker.db"), "worker", "--queue", url,
         "--grace", "0", "--sandbox", "kube"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not emulator.objects(PODS):
            assert time.monotonic() < deadline, "the job never became a pod"
            time.sleep(0.05)  # polling a condition with a deadline
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, errors
    assert emulator.objects(PODS) == [] and emulator.objects(CONFIGMAPS) == []
