"""The Kubernetes sandbox against the kmock emulator, with a test kubelet that runs the
pods' app and probe agent for real in their own network namespace."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.checker import run_check
from console.model import CheckResult, CheckSpec, Event, ExitClass, LogBatch, Verdict
from console.sandbox.kube import KubeSandbox
from console.sandbox.kube_api import connect
from console.settings import SandboxSettings
from tests.support.kmock_kube import CONFIGMAPS, PODS, KubeEmulator
from tests.support.kubelet import Kubelet

pytestmark = pytest.mark.skipif(
    shutil.which("unshare") is None or shutil.which("nsenter") is None,
    reason="the test kubelet needs unshare and nsenter (util-linux) for pod network namespaces",
)
PYAPP = Path(__file__).parents[1] / "fixtures" / "pyapp"


@pytest.fixture
def cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[KubeEmulator, Kubelet]]:
    emulator = KubeEmulator().start()  # a fresh emulator per test
    kubelet = Kubelet(emulator).start()
    monkeypatch.setenv("KUBECONFIG", str(emulator.kubeconfig(tmp_path)))
    try:
        yield emulator, kubelet
    finally:
        kubelet.stop()
        emulator.stop()


def _spec(mode: str, **extra: object) -> CheckSpec:
    values: dict[str, object] = {
        "project": PYAPP,
        "run": "python3 app.py",
        "health": "/health",
        "env": {"MODE": mode},
        "settle": 0.3,
        "start_timeout": 5.0,
    }
    values.update(extra)
    return CheckSpec(**values)  # type: ignore[arg-type]


def _check(spec: CheckSpec, kind: str, emit: object = None) -> CheckResult:
    settings = SandboxSettings(kind=kind)
    return asyncio.run(run_check(spec, settings=settings, emit=emit))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "verdict", "exit_class"),
    [
        ("ok", Verdict.PASS, None),
        ("config_error", Verdict.CRASHED, ExitClass.ERROR),
        ("segv", Verdict.CRASHED, ExitClass.SIGNAL),
        ("ignore_port", Verdict.PASS, None),
        ("unhealthy", Verdict.UNHEALTHY, None),
    ],
)
def test_verdicts_match_the_local_sandbox(
    cluster: tuple[KubeEmulator, Kubelet], mode: str, verdict: Verdict, exit_class: ExitClass
) -> None:
    emulator, _ = cluster
    in_pod = _check(_spec(mode), "kube")
    local = _check(_spec(mode), "local")
    assert (in_pod.verdict, in_pod.exit.cls) == (local.verdict, local.exit.cls)
    assert in_pod.verdict == verdict and in_pod.exit.cls == exit_class
    assert (in_pod.http_root, in_pod.http_health) == (local.http_root, local.http_health)
    assert (in_pod.failure is None) == (local.failure is None)
    if local.failure is not None and in_pod.failure is not None:
        assert in_pod.failure.exception == local.failure.exception
    if mode == "ignore_port":
        assert in_pod.port not in (None, 8000)
    # Nothing is left behind in the cluster.
    assert emulator.objects(PODS) == [] and emulator.objects(CONFIGMAPS) == []


def test_no_port_is_a_timeout_like_locally(cluster: tuple[KubeEmulator, Kubelet]) -> None:
    spec = _spec("no_port", start_timeout=1.5)
    in_pod, local = _check(spec, "kube"), _check(spec, "local")
    assert in_pod.verdict == local.verdict == Verdict.NO_PORT
    assert in_pod.exit.cls == local.exit.cls == ExitClass.TIMEOUT


@pytest.mark.parametrize(
    ("script", "reason", "exit_class"),
    [
        ("oom", "killed for using more than", ExitClass.OOM),
        ("image_pull", "could not be pulled (ErrImagePull", ExitClass.ERROR),
        ("config_error", "could not be created (CreateContainerConfigError", ExitClass.ERROR),
        ("unschedulable", "could not be scheduled: 0/3 nodes", ExitClass.ERROR),
        ("deadline", "activeDeadlineSeconds", ExitClass.TIMEOUT),
    ],
)
def test_kubelet_failures_end_quickly_with_their_reason(
    cluster: tuple[KubeEmulator, Kubelet], script: str, reason: str, exit_class: ExitClass
) -> None:
    emulator, kubelet = cluster
    kubelet.script(script)
    started = time.monotonic()
    result = _check(_spec("ok", start_timeout=20.0), "kube")
    assert time.monotonic() - started < 8, "a pod that cannot run must not wait for a deadline"
    assert result.verdict == Verdict.CRASHED
    assert reason in result.reason
    assert result.exit.cls == exit_class
    assert emulator.objects(PODS) == []


def test_a_log_cut_twenty_times_yields_every_line_once(
    cluster: tuple[KubeEmulator, Kubelet],
) -> None:
    emulator, _ = cluster
    emulator.cut_after = 20  # every log stream drops after 20 lines
    events: list[Event] = []
    result = _check(_spec("spam", env={"MODE": "spam", "LINES": "600"}), "kube", events.append)
    assert result.verdict == Verdict.PASS
    texts = [line.text for e in events if isinstance(e, LogBatch) for line in e.lines]
    spam = [t for t in texts if t.startswith("line ")]
    assert spam == [f"line {i}" for i in range(600)]
    assert emulator.cuts >= 20


def test_a_410_gone_during_the_watch_is_survived(cluster: tuple[KubeEmulator, Kubelet]) -> None:
    emulator, _ = cluster
    emulator.gone_watches = 2

    async def go() -> tuple[CheckResult, int]:
        spec = _spec("ok")
        sandbox = KubeSandbox("gone0000000001", settings=SandboxSettings(kind="kube"), spec=spec)
        result = await run_check(spec, settings=sandbox.settings, run_id=sandbox.run_id,
                                 sandbox=sandbox)
        assert sandbox._run is not None
        app = sandbox._run.processes[-1]  # what the ProcessStarted event reads
        assert (app.pid, app.pod, app.node) == (None, sandbox.name, "node-1")
        return result, sandbox._run.relists

    result, relists = asyncio.run(go())
    assert result.verdict == Verdict.PASS
    assert relists >= 2


def test_unreachable_and_unconfigured_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes import client

    from console.sandbox.kube_api import KubeApi, KubeApiError

    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # nothing listens on the discard port
    configuration.retries = 0
    api = KubeApi(client.ApiClient(configuration), 2.0)
    with pytest.raises(KubeApiError) as caught:
        api.call("GET", "/api/v1/namespaces/verdict-sandbox/pods")
    assert str(caught.value).startswith("cannot reach the Kubernetes API server at")
    assert "get pods in namespace verdict-sandbox" in str(caught.value)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeApiError) as caught:
        connect(None)
    assert "no usable Kubernetes configuration" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("install", "verdict"),
    [
        ("echo installing > installed.txt", Verdict.PASS),
        ("sh install_fail.sh", Verdict.INSTALL_FAILED),
    ],
)
def test_install_runs_in_an_init_container(
    cluster: tuple[KubeEmulator, Kubelet], install: str, verdict: Verdict
) -> None:
    spec = _spec("ok", install=install)
    in_pod, local = _check(spec, "kube"), _check(spec, "local")
    assert in_pod.verdict == local.verdict == verdict
    assert [s.name for s in in_pod.stages] == [s.name for s in local.stages]
    if verdict == Verdict.INSTALL_FAILED:
        assert "Could not find a version" in in_pod.reason


def test_a_line_without_end_does_not_stall_the_log(cluster: tuple[KubeEmulator, Kubelet]) -> None:
    run = (
        "python3 -c \"import sys, http.server as h; sys.stdout.write('x' * 3000000 + '\\n');"
        " print('after the long line', flush=True);"
        " h.ThreadingHTTPServer(('0.0.0.0', 8000), h.SimpleHTTPRequestHandler).serve_forever()\""
    )
    events: list[Event] = []
    spec = _spec("ok", run=run, health=None, expect_log=["after the long line"])
    result = _check(spec, "kube", events.append)
    assert result.verdict == Verdict.PASS, result.reason
    texts = [line.text for e in events if isinstance(e, LogBatch) for line in e.lines]
    assert texts.count("after the long line") == 1
    pieces = [t for t in texts if t.startswith("x")]
    assert len(pieces) > 1 and sum(map(len, pieces)) == 3_000_000  # each piece once
