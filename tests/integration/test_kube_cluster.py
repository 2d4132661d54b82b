"""Against a real cluster (the ``kube`` marker): enabled when ``KUBECONFIG`` is set for
the test session, pointing at a cluster whose sandbox namespace was prepared with
``verdict kube setup --apply``; skipped otherwise (deselect with ``-m "not kube"``)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from console.checker import run_check
from console.model import CheckSpec, Verdict
from console.settings import SandboxSettings

# Read at import: other tests point KUBECONFIG at their emulators while they run.
REAL_KUBECONFIG = os.environ.get("KUBECONFIG", "")
pytestmark = [
    pytest.mark.kube,
    pytest.mark.skipif(not REAL_KUBECONFIG, reason="no real cluster: KUBECONFIG is not set"),
]
PYAPP = Path(__file__).parents[1] / "fixtures" / "pyapp"


@pytest.mark.parametrize(
    ("mode", "verdict"), [("ok", Verdict.PASS), ("config_error", Verdict.CRASHED)]
)
def test_a_pod_on_a_real_cluster(
    monkeypatch: pytest.MonkeyPatch, mode: str, verdict: Verdict
) -> None:
    monkeypatch.setenv("KUBECONFIG", REAL_KUBECONFIG)
    spec = CheckSpec(project=PYAPP, run="python3 app.py", health="/health",
                     env={"MODE": mode}, start_timeout=120)
    result = asyncio.run(run_check(spec, settings=SandboxSettings(kind="kube")))
    assert result.verdict == verdict, result.reason
