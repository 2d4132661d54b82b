"""Benchmark the console's triage half.

    .venv/bin/python bench/bench_triage.py [--runs 100000] [--explanations 20000]

1. From ``e`` to an offline (then cached) explanation on screen, in the real console
   (Pilot, 120×36): p50/p95 ms (goal p95 < 1 s).
2. History search over RUNS runs and EXPLANATIONS explanations (seeded with executemany),
   first page of full-text matches: p50/p95 ms (goal p95 < 50 ms).
3. Opening stats over RUNS runs (read + compute): p50/p95 ms (goal < 300 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.engine.history import history_page, parse_history_query  # noqa: E402
from console.engine.stats import compute_stats  # noqa: E402
from storage.db import Database  # noqa: E402

WORDS = ("connection refused address already in use module not found timeout key error "
         "division by zero permission denied syntax invalid token port health").split()
VERDICTS = ("pass", "crashed", "http_error", "unhealthy", "timeout", "no_port", "pass", "pass")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def seed(path: Path, runs: int, explanations: int) -> None:
    """A big history, written with executemany (the triggers index it as it goes)."""
    rnd = random.Random(7)
    db = Database(path)
    t0 = time.time() - 90 * 86400
    run_rows, failure_rows = [], []
    for i in range(runs):
        verdict = rnd.choice(VERDICTS)
        fp = None if verdict == "pass" else f"{rnd.randrange(2000):016x}"
        spec, prompt, model = f"spec{i % 40}", f"v{i % 3}", f"model{i % 6}"
        run_id = f"run{i:08d}"
        rerun = f"run{i - 240:08d}" if i > 240 and i % 7 == 0 else None
        started = t0 + i * 60
        reason = " ".join(rnd.sample(WORDS, 4))
        run_rows.append((run_id, spec, prompt, model, 1, rerun, started, started + 5, "done",
                         verdict, reason, fp))
        if fp:
            failure_rows.append((run_id, rnd.choice(["OSError", "KeyError", "ImportError"]),
                                 " ".join(rnd.sample(WORDS, 5)), "python", "[]", "[]", fp))
    with db.write() as w:
        w.conn.executemany(
            "INSERT INTO runs (run_id, spec, prompt, model, attempt, rerun_of, started, finished,"
            " status, verdict, reason, fingerprint) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", run_rows)
        w.conn.executemany(
            "INSERT INTO failures (run_id, exception, message, language, frames, causes,"
            " fingerprint) VALUES (?,?,?,?,?,?,?)", failure_rows)
        w.conn.executemany(
            "INSERT INTO explanations (created, run_id, fingerprint, source, prompt_version,"
            " exception, message, action, reason, guide) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(t0 + i * 300, f"run{rnd.randrange(runs):08d}", f"{rnd.randrange(2000):016x}",
              "offline", "t", "OSError", " ".join(rnd.sample(WORDS, 5)),
              " ".join(rnd.sample(WORDS, 6)), " ".join(rnd.sample(WORDS, 6)),
              " ".join(rnd.sample(WORDS, 8))) for i in range(explanations)])
    db.close()


def bench_search(path: Path, rounds: int) -> list[float]:
    db = Database(path)
    queries = ["address in use", "module", "verdict:crashed timeout", "model:model3 port",
               "division zero", "fp:00000000000007d0", "spec:spec7 refused", "permission"]
    times = []
    for i in range(rounds):
        query = parse_history_query(queries[i % len(queries)])
        started = time.perf_counter()
        page = history_page(db, query)
        times.append((time.perf_counter() - started) * 1000)
        assert page.rows or "fp:" in queries[i % len(queries)]
    db.close()
    return times


def bench_stats(path: Path, rounds: int) -> list[float]:
    db = Database(path)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        compute_stats(db)
        times.append((time.perf_counter() - started) * 1000)
    db.close()
    return times


async def bench_explain(rounds: int) -> tuple[list[float], list[float]]:
    """``e`` → preview → ``o`` → answer on screen; then a cached one (a new pane)."""
    from console.app import ConsoleOptions, VerdictApp
    from console.settings import Settings
    from tests.support.triage_data import seed_triage_db

    offline, cached = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            db_path = Path(tmp) / "t.db"
            seed_triage_db(db_path).close()
            app = VerdictApp(ConsoleOptions(settings=Settings(), db_path=db_path,
                                            run_engine=False))
            async with app.run_test(size=(120, 36)) as pilot:
                while app.screen.selected is None:  # type: ignore[attr-defined]
                    await pilot.pause(0.01)
                for sink in (offline, cached):
                    started = time.perf_counter()
                    await pilot.press("e")
                    screen = app.screen
                    while getattr(screen, "state", None) is None or screen.state.preview is None:
                        await pilot.pause(0.005)
                    if sink is offline:
                        await pilot.press("o")
                    while screen.state.result is None or screen._drawn != screen.state.version:
                        await pilot.pause(0.005)
                    sink.append((time.perf_counter() - started) * 1000)
                    await pilot.press("escape")
                    screen.state.preview = None  # the next pane reads it again
                    screen.state.result = None
                    screen.state.status = "loading"
    return offline, cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--explanations", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    started = time.perf_counter()
    sum(range(10_000_000))  # how busy the machine is: ~0.15 s on an idle core
    print(f"calibration: sum(range(1e7)) in {time.perf_counter() - started:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.db"
        started = time.perf_counter()
        seed(path, args.runs, args.explanations)
        print(f"seeded {args.runs} runs, {args.explanations} explanations"
              f" in {time.perf_counter() - started:.1f} s")
        search = bench_search(path, args.rounds * 5)
        print(f"history search: p50 {statistics.median(search):.1f} ms,"
              f" p95 {pct(search, 95):.1f} ms (goal p95 < 50 ms)")
        stats = bench_stats(path, max(5, args.rounds // 4))
        print(f"stats over {args.runs} runs: p50 {statistics.median(stats):.0f} ms,"
              f" p95 {pct(stats, 95):.0f} ms (goal < 300 ms)")
    offline, cached = asyncio.run(bench_explain(max(3, args.rounds // 4)))
    print(f"e, o to offline answer on screen: p50 {statistics.median(offline):.0f} ms,"
          f" p95 {pct(offline, 95):.0f} ms; cached: p50 {statistics.median(cached):.0f} ms,"
          f" p95 {pct(cached, 95):.0f} ms (goal p95 < 1000 ms)")


if __name__ == "__main__":
    main()
