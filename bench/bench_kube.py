"""What a Kubernetes run costs the worker, measured against the kmock emulator.

Run: ``.venv/bin/python bench/bench_kube.py [--runs 10] [--pods 4] [--hold 5]``

The emulator and the test kubelet (tests/support/kmock_kube.py: the app and the probe
agent run for real in a network namespace of their own) live in a child process, so the
CPU figures below are the worker's alone.

* API calls per run: requests the worker sent for one passing run (create, watch, logs,
  delete), counted by the client;
* worker CPU per running pod: user + system time of this process while ``--pods`` pods run
  side by side for ``--hold`` seconds, divided by pods and seconds;
* agent lag: from the app's "listening on" line to the agent's first ``ports`` marker
  (both stamped by the same kubelet clock as they arrive), and the lag from that line to
  the sequence's PortFound event on the worker.
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
    from tests.support.kmock_kube import KubeEmulator, Kubelet

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--pods", type=int, default=4)
    parser.add_argument("--hold", type=float, default=5.0)
    args = parser.parse_args()

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
