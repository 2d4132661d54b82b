"""How fast does the engine notice that an app is up, and what does watching cost?

Run: ``/work/venv/bin/python bench/bench_port_lag.py [--runs 20] [--sandboxes 4]``

Side by side in one run, on the same small app (it sleeps a random 0.2–0.7 s, binds its
port, prints the bind time, and serves):

* lag from the app's bind to the engine's PortFound event and to its readiness decision
  (GET / answered), with the settle window set to 0 so only detection is measured;
* the same lag for a naive loop that tries to connect once a second and then GETs /
  (the default polling interval of testcontainers' port wait strategy);
* the engine's CPU use (this process only: user + system time) per running sandbox, while
  waiting for a port (polling every 25 ms) and while watching a running app;
* the cost of one port poll: /proc socket inodes + net/tcp vs psutil's net_connections.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from console.checker import run_check  # noqa: E402
from console.model import CheckSpec, Event, PortFound, StageChanged, Verdict  # noqa: E402
from console.sandbox import proctree  # noqa: E402
from console.sequence import http_get  # noqa: E402
from console.settings import SandboxSettings  # noqa: E402

APP = """
import os, random, socket, time, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
if os.environ.get("NEVER_BIND"):
    time.sleep(3600)
time.sleep(random.uniform(0.2, 0.7))
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
server = HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H)
print("BOUND", repr(time.time()), flush=True)
server.serve_forever()
"""
PY = shlex.quote(sys.executable)


def bound_at(lines: list[str]) -> float:
    for text in lines:
        if text.startswith("BOUND "):
            return float(text.split()[1])
    raise RuntimeError(f"the app never reported its bind: {lines[-5:]}")


async def engine_once(project: Path, settings: SandboxSettings) -> tuple[float, float]:
    """(port lag, ready lag) in seconds for one run through run_check."""
    events: list[Event] = []
    spec = CheckSpec(project=project, run=f"{PY} app.py", start_timeout=20, settle=0)
    result = await run_check(spec, settings=settings, emit=events.append)
    assert result.verdict == Verdict.PASS, result.reason
    lines = [line.text for e in events if e.kind == "log_batch" for line in e.lines]
    bind = bound_at(lines)
    port = next(e for e in events if isinstance(e, PortFound))
    ready = next(
        e
        for e in events
        if isinstance(e, StageChanged) and e.name == "http_root" and e.status == "ok"
    )
    return port.ts - bind, ready.ts - bind


async def naive_once(project: Path, interval: float = 1.0) -> float:
    """Ready lag of a connect-every-second loop (then GET /)."""
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        port = sock.getsockname()[1]
    env = {"PATH": os.environ["PATH"], "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        cwd=project,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        while True:
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                answer = await http_get("127.0.0.1", port, "/")
                if answer.status is not None:
                    ready = time.time()
                    break
            except OSError:
                pass
            await asyncio.sleep(interval)
        assert proc.stdout is not None
        line = (await proc.stdout.readline()).decode()
        return ready - bound_at([line.strip()])
    finally:
        proc.kill()
        await proc.wait()


async def cpu_per_sandbox(
    project: Path, settings: SandboxSettings, count: int, seconds: float, *, bind: bool
) -> float:
    """Percent of one core this process spends per running sandbox."""
    env = {} if bind else {"NEVER_BIND": "1"}
    spec = CheckSpec(
        project=project,
        run=f"{PY} app.py",
        env=env,
        start_timeout=seconds + 5 if not bind else 20,
        settle=seconds + 5,
    )
    tasks = [asyncio.create_task(run_check(spec, settings=settings)) for _ in range(count)]
    await asyncio.sleep(2.0)  # let them all start (and, with bind, find their ports)
    me = psutil.Process()
    before, wall = me.cpu_times(), time.monotonic()
    await asyncio.sleep(seconds)
    after, elapsed = me.cpu_times(), time.monotonic() - wall
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    used = (after.user - before.user) + (after.system - before.system)
    return 100.0 * used / elapsed / count


def poll_cost(repeat: int = 200) -> tuple[float, float, float]:
    """Microseconds per port poll of a one-process tree: netlink, /proc/net/tcp, psutil."""
    import subprocess

    env = {"PATH": os.environ["PATH"], "PORT": "0", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket,time;s=socket.socket();s.bind(('0.0.0.0',0));s.listen();time.sleep(60)",
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 10
        while not proctree.listening_ports([proc.pid]):
            assert time.monotonic() < deadline
            time.sleep(0.01)

        def cost(poll: Callable[[], object]) -> float:
            start = time.perf_counter()
            for _ in range(repeat):
                poll()
            return (time.perf_counter() - start) / repeat * 1e6

        pids = [proc.pid]
        ours = cost(lambda: proctree.listening_ports(pids))
        inodes = cost(
            lambda: (proctree.socket_inodes(proc.pid), proctree._proc_listening_table(proc.pid))
        )
        theirs = cost(lambda: proctree._listening_ports_psutil(pids))
        return ours, inodes, theirs
    finally:
        proc.kill()
        proc.wait()


def ms(values: list[float]) -> str:
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]
    return (
        f"median {statistics.median(values) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"
        f"   max {values[-1] * 1000:7.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sandboxes", type=int, default=4)
    parser.add_argument("--cpu-seconds", type=float, default=5.0)
    args = parser.parse_args()
    settings = SandboxSettings(stop_grace=0.5)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "app"
        project.mkdir()
        (project / "app.py").write_text(APP)
        os.environ.setdefault("XDG_DATA_HOME", str(Path(tmp) / "data"))
        port_lags, ready_lags, naive_lags = [], [], []
        for _ in range(args.runs):  # interleaved, so load affects both alike
            port_lag, ready_lag = await engine_once(project, settings)
            port_lags.append(port_lag)
            ready_lags.append(ready_lag)
            naive_lags.append(await naive_once(project))
        print(f"bind -> detection, {args.runs} runs each (settle window 0):")
        print(f"  engine PortFound        {ms(port_lags)}")
        print(f"  engine ready (GET / ok) {ms(ready_lags)}")
        print(f"  naive 1 s poll ready    {ms(naive_lags)}")
        ratio = statistics.median(naive_lags) / statistics.median(ready_lags)
        print(f"  median ready lag: engine is {ratio:.0f}x faster than the 1 s poll")
        waiting = await cpu_per_sandbox(
            project, settings, args.sandboxes, args.cpu_seconds, bind=False
        )
        watching = await cpu_per_sandbox(
            project, settings, args.sandboxes, args.cpu_seconds, bind=True
        )
        print(f"harness CPU per sandbox ({args.sandboxes} concurrent, {args.cpu_seconds:g} s):")
        print(f"  waiting for a port (25 ms polls): {waiting:5.2f} % of one core")
        print(f"  watching a running app:           {watching:5.2f} % of one core")
        ours, proc_tables, theirs = poll_cost()
        print("one port poll of a 1-process tree (fd inodes + listener table):")
        print(f"  netlink sock_diag (used) {ours:8.0f} us")
        print(f"  /proc/net/tcp{{,6}}       {proc_tables:8.0f} us")
        print(f"  psutil net_connections   {theirs:8.0f} us")


if __name__ == "__main__":
    asyncio.run(main())
