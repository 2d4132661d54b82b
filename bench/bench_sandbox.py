"""What does isolating a run in Linux namespaces cost, and does detection stay fast?

Run: ``.venv/bin/python bench/bench_sandbox.py [--runs 20]``

Side by side in one run, for the sandbox without namespaces (``isolation = "off"``), with
namespaces (the default: PID + mount namespaces, own ``/proc``, an unprivileged user when
root) and with namespaces plus ``network = "none"`` (where permitted):

* start overhead: from ``sandbox.start()`` to the first line of a command that only
  prints (``echo``), i.e. launcher, namespaces, mounts, user switch and ``exec``;
* port lag: from the app's bind (the time it prints) to the engine's ``PortFound`` event;
* ready lag: from the bind to ``GET /`` answered (through the relay with network none);
* exit lag: from the app's last printed time (just before it exits) to ``wait()`` returning
  (this includes the app's own interpreter shutdown; with namespaces also the init's report);
* a whole ``run_check`` of a small app with a settle window of 0.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from console.checker import run_check  # noqa: E402
from console.model import CheckSpec, Event, PortFound, StageChanged, Verdict  # noqa: E402
from console.sandbox import namespaces  # noqa: E402
from console.sandbox.local import LocalSandbox  # noqa: E402
from console.settings import SandboxSettings  # noqa: E402

APP = """
import os, random, time
from http.server import BaseHTTPRequestHandler, HTTPServer
if os.environ.get("EXIT_NOW"):
    print("EXITING", repr(time.time()), flush=True)
    raise SystemExit(3)
time.sleep(random.uniform(0.2, 0.5))
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
server = HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H)
print("BOUND", repr(time.time()), flush=True)
server.serve_forever()
"""
PY = shlex.quote(sys.executable)


def _stamp(lines: list[str], word: str) -> float:
    for text in lines:
        if text.startswith(word + " "):
            return float(text.split()[1])
    raise RuntimeError(f"the app never printed {word}: {lines[-5:]}")


async def start_overhead(project: Path, settings: SandboxSettings, base: Path) -> float:
    """Seconds from start() to the first output line of ``echo``."""
    box = LocalSandbox(f"bench-start-{time.monotonic_ns()}", settings=settings, base_dir=base)
    await box.prepare(project)
    first = asyncio.get_running_loop().create_future()

    def on_line(_stream: str, _text: str, ts: float) -> None:
        if not first.done():
            first.set_result(ts)

    begun = time.time()
    process = await box.start("echo started", phase="run", on_line=on_line)
    seen = await asyncio.wait_for(first, 30)
    await process.wait()
    await box.close()
    return seen - begun


async def exit_lag(project: Path, settings: SandboxSettings, base: Path) -> float:
    """Seconds from the app's last printed time to wait() returning."""
    box = LocalSandbox(
        f"bench-exit-{time.monotonic_ns()}", settings=settings, base_dir=base, env={"EXIT_NOW": "1"}
    )
    await box.prepare(project)
    lines: list[str] = []
    process = await box.start(f"{PY} app.py", phase="run", on_line=lambda s, t, ts: lines.append(t))
    await process.wait()
    ended = time.time()
    await box.close()
    return ended - _stamp(lines, "EXITING")


async def check_once(project: Path, settings: SandboxSettings) -> tuple[float, float, float]:
    """(port lag, ready lag, whole run_check) in seconds."""
    events: list[Event] = []
    spec = CheckSpec(project=project, run=f"{PY} app.py", start_timeout=20, settle=0)
    begun = time.monotonic()
    result = await run_check(spec, settings=settings, emit=events.append)
    whole = time.monotonic() - begun
    assert result.verdict == Verdict.PASS, result.reason
    lines = [line.text for e in events if e.kind == "log_batch" for line in e.lines]
    bind = _stamp(lines, "BOUND")
    port = next(e for e in events if isinstance(e, PortFound))
    ready = next(
        e
        for e in events
        if isinstance(e, StageChanged) and e.name == "http_root" and e.status == "ok"
    )
    return port.ts - bind, ready.ts - bind, whole


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"{statistics.median(values) * 1000:7.1f} / {p95 * 1000:7.1f}"


async def main(runs: int) -> None:
    """Measure every mode ``runs`` times, interleaved so load affects all alike."""
    modes: dict[str, SandboxSettings] = {
        "no namespaces": SandboxSettings(isolation="off"),
        "namespaces": SandboxSettings(),
    }
    if not namespaces.unavailable(network_none=True):
        modes["namespaces + network none"] = SandboxSettings(network="none")
    if namespaces.unavailable():
        print(f"namespaces unavailable here: {namespaces.unavailable()}")
        modes = {"no namespaces": modes["no namespaces"]}
    results: dict[str, dict[str, list[float]]] = {
        name: {"start": [], "port": [], "ready": [], "exit": [], "check": []} for name in modes
    }
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "app"
        project.mkdir()
        (project / "app.py").write_text(APP)
        base = Path(tmp) / "runs"
        for _ in range(runs):
            for name, settings in modes.items():
                into = results[name]
                into["start"].append(await start_overhead(project, settings, base))
                into["exit"].append(await exit_lag(project, settings, base))
                port, ready, whole = await check_once(project, settings)
                into["port"].append(port)
                into["ready"].append(ready)
                into["check"].append(whole)
    print(f"{runs} runs per mode; median / p95 in ms")
    header = f"{'':28}{'start overhead':>18}{'port lag':>18}{'ready lag':>18}"
    print(header + f"{'exit lag':>18}{'run_check':>18}")
    for name, got in results.items():
        cells = "".join(
            f"{_ms(got[key]):>18}" for key in ("start", "port", "ready", "exit", "check")
        )
        print(f"{name:28}{cells}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    asyncio.run(main(parser.parse_args().runs))
