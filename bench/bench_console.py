"""Console benchmarks: start to first frame, key-to-frame under a log flood, a big matrix.

    .venv/bin/python bench/bench_console.py [--flood-seconds 30] [--rate 20000] [--runs 5]

1. Start to first frame: ``verdict ui`` in a pseudo-terminal, from spawn until the first
   frame with the dashboard on it; side by side with a bare Textual app (one Static), the
   floor any Textual app pays (harlequin's published figure is about 1 s).
2. Log flood: a real sandboxed app prints ``--rate`` lines/s for ``--flood-seconds`` into
   the selected run while ``f`` is pressed twice a second; key-to-frame p50/p95 (key
   posted → the first frame rendered after the action ran, rendering to terminal bytes
   included), the console's RSS over time, and lines missing from storage.
3. A 1,000-cell matrix receiving 200 events/s while the cursor moves: key-to-frame p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BARE_APP = """
from textual.app import App
from textual.widgets import Static
class Bare(App):
    def compose(self):
        yield Static("hello-frame")
Bare().run()
"""


# --- 1. start to first frame --------------------------------------------------------------
def first_frame(argv: list[str], marker: bytes, env: dict[str, str]) -> float:
    """Seconds from spawn to the first output containing ``marker`` (in a pty)."""
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT)
    os.close(slave)
    seen = b""
    try:
        while marker not in seen:
            if time.perf_counter() - started > 20:
                raise TimeoutError(f"no frame from {argv}")
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
        return time.perf_counter() - started
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        os.close(master)


def bench_start(runs: int, tmp: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp / "data"), "TERM": "xterm-256color",
           "COLUMNS": "120", "LINES": "36"}
    db = tmp / "start.db"
    subprocess.run([sys.executable, "-m", "console.cli", "--db", str(db), "history"],
                   env=env, capture_output=True, check=True)  # create the database first
    ours, bare = [], []
    for _ in range(runs):
        ours.append(first_frame([sys.executable, "-m", "console.cli", "--db", str(db), "ui"],
                                b"matrix", env))
        bare.append(first_frame([sys.executable, "-c", BARE_APP], b"hello-frame", env))
    print(f"start to first frame: verdict ui median {statistics.median(ours) * 1000:.0f} ms "
          f"(min {min(ours) * 1000:.0f}), bare Textual app median "
          f"{statistics.median(bare) * 1000:.0f} ms; ratio "
          f"{statistics.median(ours) / statistics.median(bare):.2f} (goal < 800 ms)")


# --- frame timing -------------------------------------------------------------------------
class FrameClock:
    """Times frames: wraps ``App._display`` and renders each update to terminal bytes (what
    a real driver would write), recording when it was done."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.frames: list[float] = []
        self.bytes = 0
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is not None and hasattr(renderable, "render_segments"):
                self.bytes += len(renderable.render_segments(app.console))
                self.frames.append(time.perf_counter())

        app._display = display

    def first_after(self, moment: float) -> float | None:
        for frame in self.frames:
            if frame >= moment:
                return frame
        return None


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def key_to_frame(pilot: Any, clock: FrameClock, key: str, acted: list[float]) -> float:
    """Press ``key``; the latency from posting it to the first frame after its action ran."""
    from textual import events

    before = len(acted)
    posted = time.perf_counter()
    # as a terminal driver does: the key event is posted to the app, nothing waits for idle
    pilot.app.post_message(events.Key(key, key if len(key) == 1 else None))
    deadline = time.perf_counter() + 5
    while len(acted) == before or clock.first_after(acted[-1]) is None:
        if time.perf_counter() > deadline:
            raise TimeoutError("no frame after the key")
        await asyncio.sleep(0.002)
    frame = clock.first_after(acted[-1])
    assert frame is not None
    return frame - posted


# --- 2. log flood ---------------------------------------------------------------------------
FLOOD_APP = """
import os, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
import threading

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass

server = HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
threading.Thread(target=server.serve_forever, daemon=True).start()
rate, seconds = RATE, SECONDS
chunk = max(rate // 50, 1)
n = 0
start = time.monotonic()
out = sys.stdout
while time.monotonic() - start < seconds:
    target = int((time.monotonic() - start) * rate)
    while n < target:
        k = min(chunk, target - n)
        out.write("".join(f"GET /orders/{i} 200 in {i % 97} ms ERROR? no, line {i}\\n"
                          for i in range(n, n + k)))
        n += k
    out.flush()
    time.sleep(0.02)
print(f"flood done {n}", flush=True)
time.sleep(3600)
"""


def flood_matrix(tmp: Path, rate: int, seconds: float) -> Path:
    project = tmp / "replay" / "v1" / "m1"
    project.mkdir(parents=True)
    app = FLOOD_APP.replace("RATE, SECONDS", f"{rate}, {seconds}")
    (project / "app.py").write_text(app)
    (project / "verdict.toml").write_text('run = "python3 app.py"\n')
    (tmp / "prompt.txt").write_text("{task}\n")
    matrix = tmp / "flood.toml"
    matrix.write_text(textwrap.dedent(f"""
        [settings]
        start_timeout = {seconds + 60}
        [[spec]]
        name = "flood"
        task = "floods its log"
        expect_log = ["flood done"]
        [[prompt]]
        version = "v1"
        template = "prompt.txt"
        [[model]]
        name = "m1"
        [generator]
        kind = "replay"
        dir = "replay"
    """))
    return matrix


async def bench_flood(tmp: Path, rate: int, seconds: float) -> None:
    import psutil

    from console.app import ConsoleOptions, VerdictApp
    from console.matrix import load_matrix
    from console.screens.dashboard import Dashboard
    from console.settings import Settings
    from storage import runs
    from storage.db import Database
    from widgets.log_pane import LogPane

    settings = Settings()
    settings.sandbox.max_log_lines = int(rate * seconds * 2)
    settings.sandbox.settle = 0.0
    db_path = tmp / "flood.db"
    matrix = load_matrix(flood_matrix(tmp, rate, seconds))
    app = VerdictApp(ConsoleOptions(settings=settings, db_path=db_path, matrix=matrix, slots=1))
    acted: list[float] = []
    original = Dashboard.action_follow

    def follow(self: Any) -> None:
        original(self)
        acted.append(time.perf_counter())

    Dashboard.action_follow = follow  # type: ignore[method-assign]
    me = psutil.Process()
    rss: list[int] = []
    latencies: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        clock = FrameClock(app)
        pane = app.screen.query_one(LogPane)
        started = time.perf_counter()
        while pane.last_seq < 0 and time.perf_counter() - started < 60:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        flood_start = time.perf_counter()
        next_rss = flood_start
        while time.perf_counter() - flood_start < seconds:
            latencies.append(await key_to_frame(pilot, clock, "f", acted))
            if time.perf_counter() >= next_rss:
                rss.append(me.memory_info().rss)
                next_rss += 1.0
            await asyncio.sleep(0.5)
        cell = next(iter(app.live.cells.values()))
        run_id = cell.run_id
        limit = seconds + 120
        while app.live.cells[cell.key].status != "done" and time.perf_counter() - started < limit:  # noqa: ASYNC110, E501
            await asyncio.sleep(0.2)
        await pilot.press("q")
        if type(app.screen).__name__ == "ConfirmQuit":
            await pilot.press("y")
    Dashboard.action_follow = original  # type: ignore[method-assign]
    db = Database(db_path)
    record = runs.get_run(db, run_id or "")
    stored = db.query("SELECT COUNT(*) AS n FROM log_lines WHERE run_id = ?", (run_id,))[0]["n"]
    done = db.query(
        "SELECT text FROM log_lines WHERE run_id = ? AND text LIKE 'flood done %'", (run_id,)
    )
    expected = int(done[0]["text"].split()[-1]) if done else int(rate * seconds)
    flood_lines = db.query(
        "SELECT COUNT(*) AS n FROM log_lines WHERE run_id = ? AND text LIKE 'GET /orders/%'",
        (run_id,),
    )[0]["n"]
    db.close()
    print(
        f"log flood {rate}/s for {seconds:.0f} s: key-to-frame p50 "
        f"{statistics.median(latencies) * 1000:.1f} ms, p95 {percentile(latencies, 95) * 1000:.1f}"
        f" ms over {len(latencies)} keys (goal p95 < 100 ms); frames {len(clock.frames)}"
    )
    print(
        f"  console RSS MB: first {rss[0] / 2**20:.0f}, max {max(rss) / 2**20:.0f}, last "
        f"{rss[-1] / 2**20:.0f}; verdict {record.verdict if record else None}; stored lines "
        f"{stored} ({flood_lines} of the flood's {expected}: "
        f"{max(expected - flood_lines, 0)} missing)"
    )


# --- 3. a big matrix ------------------------------------------------------------------------
async def bench_matrix(tmp: Path, cells: int = 1000, rate: int = 200, seconds: float = 15) -> None:
    from console.app import ConsoleOptions, VerdictApp
    from console.model import (
        CheckResult,
        Combination,
        Job,
        JobQueued,
        RunStarted,
        StageChanged,
        Verdict,
        VerdictReached,
    )
    from console.settings import Settings
    from storage.db import Database
    from widgets.verdict_matrix import VerdictMatrix

    db_path = tmp / "matrix.db"
    Database(db_path).close()
    app = VerdictApp(ConsoleOptions(settings=Settings(), db_path=db_path, run_engine=False))
    acted: list[float] = []
    original = VerdictMatrix.action_cursor_down

    def down(self: Any) -> None:
        original(self)
        acted.append(time.perf_counter())

    VerdictMatrix.action_cursor_down = down  # type: ignore[method-assign]
    combos = [
        Combination(spec=f"spec{i // 100}", prompt=f"v{(i // 10) % 10}", model=f"model{i % 10}")
        for i in range(cells)
    ]
    latencies: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        clock = FrameClock(app)
        for i, combo in enumerate(combos):
            app._on_event(JobQueued(job=Job(job_id=f"j{i}", combination=combo)))
        await pilot.pause(0.5)
        stop = False

        async def feed() -> None:
            n = 0
            while not stop:
                combo = combos[n % cells]
                run_id = f"r{n}"
                for event in (
                    RunStarted(run_id=run_id, project="p", job_id=f"j{n % cells}",
                               combination=combo, attempt=1 + n // cells),
                    StageChanged(run_id=run_id, name="port", status="running"),
                    VerdictReached(run_id=run_id, result=CheckResult(
                        run_id=run_id, verdict=Verdict.PASS if n % 3 else Verdict.CRASHED,
                        reason="x")),
                ):
                    app._on_event(event)  # type: ignore[arg-type]
                n += 1
                await asyncio.sleep(3 / rate)  # three events per step: ``rate`` events/s

        feeder = asyncio.create_task(feed())
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            latencies.append(await key_to_frame(pilot, clock, "j", acted))
            await asyncio.sleep(0.1)
        stop = True
        await feeder
    VerdictMatrix.action_cursor_down = original  # type: ignore[method-assign]
    print(
        f"{cells}-cell matrix at {rate} events/s: key-to-frame p50 "
        f"{statistics.median(latencies) * 1000:.1f} ms, p95 "
        f"{percentile(latencies, 95) * 1000:.1f} ms over {len(latencies)} keys (goal < 100 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rate", type=int, default=20_000)
    parser.add_argument("--flood-seconds", type=float, default=30.0)
    parser.add_argument("--only", choices=["start", "flood", "matrix"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        os.environ["XDG_DATA_HOME"] = str(tmp / "data")
        os.environ["XDG_CONFIG_HOME"] = str(tmp / "config")
        if args.only in (None, "start"):
            bench_start(args.runs, tmp)
        if args.only in (None, "matrix"):
            asyncio.run(bench_matrix(tmp))
        if args.only in (None, "flood"):
            asyncio.run(bench_flood(tmp, args.rate, args.flood_seconds))


if __name__ == "__main__":
    main()
