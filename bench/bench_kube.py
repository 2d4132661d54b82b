"""What a Kubernetes run costs the worker, measured against the kmock emulator.

Run: ``.venv/bin/python bench/bench_kube.py [--runs 10] [--pods 4] [--hold 5]``

The emulator and the test kubelet (tests/support/kmock_kube.py: the app and the probe
agent run for real in a network namespace of their own) live in a child process, so the
CPU figures below are the worker's alone.

* API calls per run: requests the worker sent for one passing run (create, watch, logs,
  delete), counted by the client;
* worker CPU per running pod: user + system time of this process while ``--pods`` pods run
  side by side for ``--hold`` seconds, divided by pods and seconds;
* bind → PortFound: from the app's "listening on" line to the sequence's PortFound event on
  the worker (agent poll + agent log + log follow), with the test kubelet;
* agent lag under podman + runc (``--podman-runs``, needs root): from the app's bind (its
  own clock, printed) to the agent's detection (the time in its first ``ports`` marker),
  and to the marker line coming out of the agent's container; the app opens its port a
  second after start, so the agent is already polling.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PYAPP = ROOT / "tests" / "fixtures" / "pyapp"


def _cluster(conn: object, stop: object) -> None:
    from tests.support.kmock_kube import KubeEmulator
    from tests.support.kubelet import Kubelet

    emulator = KubeEmulator().start()
    kubelet = Kubelet(emulator).start()
    conn.send(emulator.url)  # type: ignore[attr-defined]
    stop.wait()  # type: ignore[attr-defined]
    kubelet.stop()
    emulator.stop()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _one(spec: object, settings: object, events: list | None = None) -> tuple[int, object]:
    from console.checker import new_run_id, run_check
    from console.sandbox.kube import KubeSandbox
    from console.sandbox.kube_api import connect

    api = connect(None, 10.0)
    run_id = new_run_id()
    sandbox = KubeSandbox(run_id, settings=settings, spec=spec, api=api)  # type: ignore[arg-type]
    result = await run_check(
        spec,  # type: ignore[arg-type]
        settings=settings,  # type: ignore[arg-type]
        run_id=run_id,
        sandbox=sandbox,
        emit=None if events is None else events.append,
    )
    return api.calls, result


DELAYED_APP = (
    "import time, http.server as h\n"
    "time.sleep(1.0)  # the agent is already polling when the port opens\n"
    "server = h.ThreadingHTTPServer(('0.0.0.0', 8000), h.SimpleHTTPRequestHandler)\n"
    "print('listening on 8000 at', time.time(), flush=True)\n"
    "server.serve_forever()\n"
)


def podman_lag(runs: int) -> None:
    """Bind → agent marker lag with the pod's containers under podman + runc."""
    import json
    import tempfile

    from console.checker import run_check
    from console.model import CheckSpec
    from console.sandbox.kube_agent import MARKER
    from console.settings import SandboxSettings
    from tests.support.kmock_kube import KubeEmulator
    from tests.support.kubelet import Kubelet
    from tests.support.podman_pod import PodmanRunner, ensure_podman, local_rootfs, podman_problem

    problem = ensure_podman()
    if problem:
        print(f"podman lag: skipped ({problem})")
        return
    from console.sandbox.kube_logs import parse_timestamp

    with tempfile.TemporaryDirectory() as scratch, local_rootfs(Path(scratch) / "rootfs") as fs:
        problem = podman_problem(fs)
        if problem:
            print(f"podman lag: skipped ({problem})")
            return
        project = Path(scratch) / "project"
        project.mkdir()
        (project / "app.py").write_text(DELAYED_APP)
        emulator = KubeEmulator().start()
        runner = type("Runner", (PodmanRunner,), {"rootfs": fs})
        kubelet = Kubelet(emulator, runner=runner).start()
        os.environ["KUBECONFIG"] = str(emulator.kubeconfig(Path(scratch)))
        lags: list[float] = []
        seen: list[float] = []
        try:
            spec = CheckSpec(project=project, run="python3 app.py", settle=0.0, start_timeout=20)
            for _ in range(runs):
                result = asyncio.run(run_check(spec, settings=SandboxSettings(kind="kube")))
                assert result.verdict.value == "pass", result.reason
                pod = f"verdict-{result.run_id}"
                logs = {c: lines for (_, p, c), lines in emulator.logs.items() if p == pod}
                line = next(x for _, x in logs["app"] if "listening" in x)
                bound = float(line.rsplit(" ", 1)[1])  # the app's own clock, at bind
                stamp, marker = next(
                    (t, json.loads(x[len(MARKER) :]))
                    for t, x in logs["agent"]
                    if x.startswith(MARKER)
                    and json.loads(x[len(MARKER) :]).get("ev") == "ports"
                    and json.loads(x[len(MARKER) :])["ports"]
                )
                lags.append((marker["t"] - bound) * 1000)
                seen.append((parse_timestamp(stamp) - bound) * 1000)
        finally:
            kubelet.stop()
            emulator.stop()
    print(f"podman: app's bind → agent's detection: median {statistics.median(lags):.1f} ms,"
          f" max {max(lags):.1f} ms over {runs} runs (compare bench_port_lag.py's bind →"
          " PortFound for the local sandbox)")
    print(f"podman: app's bind → marker line out of the agent's container: median"
          f" {statistics.median(seen):.1f} ms, max {max(seen):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pods", type=int, default=4)
    parser.add_argument("--hold", type=float, default=5.0)
    parser.add_argument("--podman-runs", type=int, default=10, help="0: skip the podman lag")
    args = parser.parse_args()
    if args.podman_runs:
        podman_lag(args.podman_runs)

    from console.model import CheckSpec, LogBatch, PortFound
    from console.settings import SandboxSettings

    parent, child = multiprocessing.Pipe()
    stop = multiprocessing.Event()
    cluster = multiprocessing.Process(target=_cluster, args=(child, stop), daemon=True)
    cluster.start()
    url = parent.recv()
    config = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-kube-{os.getpid()}.json"
    config.write_text(
        '{"apiVersion":"v1","kind":"Config","clusters":[{"name":"e","cluster":{"server":"'
        + url
        + '"}}],"users":[{"name":"u","user":{"token":"t"}}],'
        '"contexts":[{"name":"e","context":{"cluster":"e","user":"u"}}],"current-context":"e"}'
    )
    os.environ["KUBECONFIG"] = str(config)
    settings = SandboxSettings(kind="kube")
    try:
        spec = CheckSpec(project=PYAPP, run="python3 app.py", health="/health", settle=0.0)
        calls: list[int] = []
        lags_port: list[float] = []
        for _ in range(args.runs):
            events: list = []
            count, result = asyncio.run(_one(spec, settings, events))
            assert result.verdict.value == "pass", result.reason  # type: ignore[attr-defined]
            calls.append(count)
            bound = next(
                line.ts
                for e in events
                if isinstance(e, LogBatch)
                for line in e.lines
                if line.text.startswith("listening on")
            )
            found = next(e.ts for e in events if isinstance(e, PortFound))
            lags_port.append((found - bound) * 1000)
        print(f"API calls per passing run: median {statistics.median(calls):.0f}"
              f" (min {min(calls)}, max {max(calls)}) over {args.runs} runs")
        print(f"app's bind line → PortFound on the worker: median"
              f" {statistics.median(lags_port):.0f} ms, max {max(lags_port):.0f} ms")

        held = CheckSpec(project=PYAPP, run="python3 app.py", settle=args.hold)

        async def side_by_side() -> float:
            await asyncio.sleep(0)
            before = _cpu()
            await asyncio.gather(*(_one(held, settings) for _ in range(args.pods)))
            return _cpu() - before

        started = time.monotonic()
        cpu = asyncio.run(side_by_side())
        wall = time.monotonic() - started
        print(f"worker CPU per running pod: {cpu / args.pods / wall * 100:.2f} % of one core"
              f" ({args.pods} pods for {wall:.1f} s, {cpu:.2f} s CPU in all)")
    finally:
        stop.set()
        cluster.join(15)
        config.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
