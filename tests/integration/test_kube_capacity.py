"""Cluster capacity from the sandbox namespace's ResourceQuota and kube_max_pods."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.sandbox.kube_capacity import cluster_capacity, parse_quantity
from console.settings import SandboxSettings
from tests.support.kmock_kube import PODS, QUOTAS, KubeEmulator

NS = "verdict-sandbox"


@pytest.fixture
def emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeEmulator]:
    emu = KubeEmulator().start()
    monkeypatch.setenv("KUBECONFIG", str(emu.kubeconfig(tmp_path)))
    try:
        yield emu
    finally:
        emu.stop()


def _quota(used_pods: int, hard_pods: int = 2, used_memory: str = "0") -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "verdict-sandbox", "namespace": NS},
        "status": {
            "hard": {"pods": str(hard_pods), "limits.memory": "8Gi"},
            "used": {"pods": str(used_pods), "limits.memory": used_memory},
        },
    }


def test_quantities() -> None:
    assert parse_quantity("500m") == 0.5
    assert parse_quantity("2Gi") == 2 * 1024**3
    assert parse_quantity("3") == 3
    with pytest.raises(ValueError):
        parse_quantity("lots")


def test_a_full_quota_holds_jobs_back_until_it_frees(emulator: KubeEmulator) -> None:
    settings = SandboxSettings(kind="kube")
    emulator.put(QUOTAS, NS, _quota(used_pods=2))
    capacity = cluster_capacity(settings, slots=4)
    assert not capacity.reading.room and "pods 2/2" in capacity.reading.reason

    async def scenario() -> None:
        capacity._probe_interval = 0.05
        capacity._recheck = 0.05
        waiting = asyncio.ensure_future(capacity.acquire())
        calls = capacity.api.calls
        deadline = asyncio.get_running_loop().time() + 5
        while capacity.api.calls < calls + 6:  # three more readings of the full quota
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        assert not waiting.done() and capacity.running == 0
        await asyncio.to_thread(emulator.put, QUOTAS, NS, _quota(used_pods=1))
        await asyncio.wait_for(waiting, 5)
        assert capacity.running == 1

    asyncio.run(scenario())


def test_memory_quota_and_max_pods_count(emulator: KubeEmulator) -> None:
    settings = SandboxSettings(kind="kube", kube_max_pods=1, memory_mb=1024)
    emulator.put(QUOTAS, NS, _quota(used_pods=0, hard_pods=10, used_memory="7.5Gi"))
    assert "limits.memory" in cluster_capacity(settings, 2).reading.reason
    emulator.put(QUOTAS, NS, _quota(used_pods=0, hard_pods=10))
    assert cluster_capacity(settings, 2).reading.room
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "verdict-x", "namespace": NS,
           "labels": {"app.kubernetes.io/managed-by": "verdict-console"}}}
    emulator.put(PODS, NS, pod)
    reading = cluster_capacity(settings, 2).reading
    assert not reading.room and "kube_max_pods is 1" in reading.reason


def test_list_pods_for_the_console(emulator: KubeEmulator) -> None:
    from console.sandbox.kube_status import list_pods

    ours = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "verdict-abc", "namespace": NS, "creationTimestamp": "2026-01-01T00:00:00Z",
        "labels": {"app.kubernetes.io/managed-by": "verdict-console", "verdict.dev/run-id": "abc"}},
        "spec": {"nodeName": "node-1"},
        "status": {"phase": "Pending", "containerStatuses": [
            {"name": "app", "restartCount": 0,
             "state": {"waiting": {"reason": "ImagePullBackOff"}}},
            {"name": "agent", "restartCount": 1, "state": {"running": {}}}]}}
    other = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "else", "namespace": NS}}
    emulator.put(PODS, NS, ours)
    emulator.put(PODS, NS, other)
    [info] = list_pods(SandboxSettings(kind="kube"))
    assert (info.name, info.run_id, info.phase, info.node) == ("verdict-abc", "abc", "Pending",
                                                                "node-1")
    assert info.restarts == 1 and info.reason == "ImagePullBackOff"
    assert info.age_s is not None and info.age_s > 0
