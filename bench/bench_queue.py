"""Queue benchmark: 48 cells of a quick passing project at 4 slots, embedded vs Kafka.

    /work/venv/bin/python bench/bench_queue.py [--cells 48] [--slots 4]

For each backend it runs the same 48 jobs end to end (generate by replay → sandbox →
verdict recorded in SQLite) and prints:

* wall / ideal — wall time divided by the ideal (sum of job durations ÷ slots), where a
  job's duration is JobStarted → JobFinished as the worker saw it; goal ≤ 1.10;
* slot-loss/job — slot time not spent in jobs, per job: (wall × slots − Σ durations) ÷ N
  (includes start-up and the tail where fewer jobs than slots remain);
* dispatch/job — per-job queue overhead in steady state: the mean gap between a job
  finishing and the next job starting in the slot it freed (ack, commit, ledger write,
  fetch, capacity); goal ≤ 5 ms;
* queue-only/job — jobs through the same queue and worker with a no-op pipeline
  (wall ÷ N at the same slots): the queue's own throughput cost per job.

The Kafka side uses a Tansu broker on loopback and one ``verdict worker`` process, joined
to its group before the clock starts (workers are long-lived).  Headroom checks are
disabled (slots only) so a machine shared with other work measures the queue, not the
neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.capacity import Capacity, Headroom  # noqa: E402
from console.model import CheckResult, Event, Job, JobFinished, JobStarted, Verdict  # noqa: E402
from console.settings import Settings  # noqa: E402
from storage.db import Database  # noqa: E402

APP = """\
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


def write_matrix(base: Path, cells: int, name: str = "bench") -> Path:
    """A matrix of ``cells`` combinations (1 spec × 4 prompts × cells/4 models), all passing."""
    prompts = 4
    models = max(1, cells // prompts)
    (base / "prompts").mkdir(parents=True, exist_ok=True)
    lines = [f'[[spec]]\nname = "{name}"\ntask = "a stdlib HTTP server"\n']
    for p in range(prompts):
        (base / "prompts" / f"p{p}.txt").write_text("Build: {task}\n")
        lines.append(f'[[prompt]]\nversion = "p{p}"\ntemplate = "prompts/p{p}.txt"\n')
        for m in range(models):
            project = base / "replay" / f"p{p}" / f"m{m}"
            project.mkdir(parents=True, exist_ok=True)
            (project / "app.py").write_text(APP)
            (project / "verdict.toml").write_text('run = "python3 app.py"\n')
    for m in range(models):
        lines.append(f'[[model]]\nname = "m{m}"\n')
    lines.append('[generator]\nkind = "replay"\ndir = "replay"\n')
    path = base / f"{name}.toml"
    path.write_text("\n".join(lines))
    return path


def load_jobs(matrix_path: Path) -> list[Job]:
    from console.matrix import load_matrix

    return load_matrix(matrix_path).jobs()


class Timings:
    """Job durations from JobStarted/JobFinished events."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.finished: list[float] = []
        self.durations: dict[str, float] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, JobStarted):
            self.started[event.run_id] = event.ts
        elif isinstance(event, JobFinished) and event.run_id in self.started:
            self.durations[event.job_id] = event.ts - self.started[event.run_id]
            self.finished.append(event.ts)

    def dispatch_ms(self, slots: int) -> float:
        """Mean gap between a job finishing and the next job starting in the freed slot.

        The k-th start after the first ``slots`` takes the slot freed by the (k-slots)-th
        finish, in time order.
        """
        starts = sorted(self.started.values())[slots:]
        ends = sorted(self.finished)
        gaps = [start - end for start, end in zip(starts, ends, strict=False)]
        return statistics.mean(gaps) * 1000 if gaps else float("nan")


def figures(label: str, wall: float, timings: Timings, slots: int) -> dict[str, Any]:
    durations = list(timings.durations.values())
    ideal = sum(durations) / slots
    return {
        "label": label,
        "jobs": len(durations),
        "wall": wall,
        "ideal": ideal,
        "ratio": wall / ideal if ideal else float("nan"),
        "overhead_ms": (wall * slots - sum(durations)) / len(durations) * 1000,
        "job_ms": statistics.median(durations) * 1000,
        "dispatch_ms": timings.dispatch_ms(slots),
    }


def no_headroom_limits(settings: Settings) -> Settings:
    settings.queue.max_cpu_percent = 100.0
    settings.queue.min_free_memory_mb = 0
    return settings


async def noop_process(job: Job, *, emit: Any, worker: str = "", **_: Any) -> CheckResult:
    """A pipeline that does nothing, to time the queue alone."""
    run_id = f"noop-{job.job_id}"
    emit(JobStarted(job_id=job.job_id, run_id=run_id, worker=worker))
    result = CheckResult(run_id=run_id, verdict=Verdict.PASS, reason="no-op", job_id=job.job_id)
    from console.model import VerdictReached

    emit(VerdictReached(run_id=run_id, result=result))
    emit(JobFinished(job_id=job.job_id, run_id=run_id, verdict=Verdict.PASS))
    return result


# --- embedded ---------------------------------------------------------------------------


async def embedded(
    jobs: list[Job], db: Database, slots: int, *, noop: bool = False
) -> tuple[float, Timings]:
    from console.events import EventBus
    from console.queue.embedded import EmbeddedQueue
    from console.recorder import Recorder
    from console.worker import GeneratorCache, Worker, process_job, record_event
    from storage import jobs as job_store

    settings = no_headroom_limits(Settings())
    timings = Timings()
    bus = EventBus()
    recorder = Recorder(db)
    bus.subscribe(lambda e: record_event(db, recorder, e), critical=True)
    bus.subscribe(timings)
    queue = EmbeddedQueue(db, drain=True)
    started = time.perf_counter()
    await queue.start()
    job_store.enqueue(db, jobs)
    worker = Worker(
        queue,
        Capacity(slots, probe=lambda: Headroom(1e9, 0)),
        db=db,
        emit=bus,
        generator_for=GeneratorCache(settings, db),
        settings=settings,
        process=noop_process if noop else process_job,
    )
    await worker.run()
    return time.perf_counter() - started, timings


# --- kafka ------------------------------------------------------------------------------


def start_worker(url: str, db: Path, slots: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "console.cli",
            "--db",
            str(db),
            "worker",
            "--queue",
            url,
            "--slots",
            str(slots),
            "--quiet",
            "--grace",
            "5",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def kafka_run(jobs: list[Job], url_text: str, db: Database) -> tuple[float, Timings]:
    from console.queue.base import parse_queue_url
    from console.queue.kafka_console import submit_and_wait

    timings = Timings()
    started = time.perf_counter()
    await submit_and_wait(jobs, url=parse_queue_url(url_text), db=db, on_event=timings)
    return time.perf_counter() - started, timings


async def kafka_noop(jobs: list[Job], url_text: str, db: Database, slots: int) -> float:
    """The queue alone over Kafka: an in-process worker with the no-op pipeline."""
    from console.queue.base import parse_queue_url
    from console.queue.kafka import KafkaEventPublisher, KafkaJobQueue
    from console.queue.kafka_console import consume_events
    from console.worker import Worker
    from storage import jobs as job_store

    url = parse_queue_url(url_text)
    queue = KafkaJobQueue(url, Settings().queue)
    await queue.start()
    publisher = KafkaEventPublisher(queue.producer, queue.names.events)
    worker = Worker(
        queue,
        Capacity(slots, probe=lambda: Headroom(1e9, 0)),
        db=db,
        emit=publisher,
        generator_for=lambda job: None,  # type: ignore[arg-type,return-value]
        process=noop_process,
        flush=publisher.flush,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.wait_for(queue.wait_assigned(), 60)
    console_db = Database(":memory:")
    job_store.enqueue(console_db, jobs, queue="kafka")
    started = time.perf_counter()
    await queue.put(jobs)
    await consume_events(url, console_db, until_done=[j.job_id for j in jobs])
    wall = time.perf_counter() - started
    stop.set()
    await task
    await publisher.close()
    await queue.close()
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=48)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--noop-jobs", type=int, default=200)
    args = parser.parse_args()

    from tests.support.kafka_broker import start_broker, stop_broker

    work = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    env = dict(
        os.environ,
        XDG_DATA_HOME=str(work / "data"),
        XDG_CONFIG_HOME=str(work / "cfg"),
        VERDICT_QUEUE_MAX_CPU_PERCENT="100",
        VERDICT_QUEUE_MIN_FREE_MEMORY_MB="0",
        VERDICT_QUEUE_KAFKA_POLL_MS="100",
    )
    os.environ.update({k: env[k] for k in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")})
    broker = start_broker(work)
    worker: subprocess.Popen[bytes] | None = None
    try:
        matrix = write_matrix(work / "m", args.cells)
        warm = write_matrix(work / "w", 4, name="warmup")
        jobs = load_jobs(matrix)
        print(f"{len(jobs)} jobs, {args.slots} slots, {os.cpu_count()} CPUs", flush=True)

        emb_wall, emb_t = asyncio.run(embedded(jobs, Database(work / "embedded.db"), args.slots))
        emb = figures("embedded", emb_wall, emb_t, args.slots)

        url = broker.url("bench.")
        worker = start_worker(url, work / "worker.db", args.slots, env)
        console_db = Database(work / "kafka.db")
        asyncio.run(kafka_run(load_jobs(warm), url, console_db))  # worker joined and warm
        kafka_jobs = [j.model_copy(update={"job_id": j.job_id + "k"}) for j in jobs]
        kaf_wall, kaf_t = asyncio.run(kafka_run(kafka_jobs, url, console_db))
        kaf = figures("kafka", kaf_wall, kaf_t, args.slots)
        worker.terminate()
        worker.wait(30)
        worker = None

        noop_jobs = [
            j.model_copy(update={"job_id": f"noop{i}"})
            for i, j in enumerate((jobs * (args.noop_jobs // len(jobs) + 1))[: args.noop_jobs])
        ]
        emb_noop, _ = asyncio.run(
            embedded(noop_jobs, Database(work / "noop.db"), args.slots, noop=True)
        )
        kaf_noop = asyncio.run(
            kafka_noop(noop_jobs, broker.url("noop."), Database(":memory:"), args.slots)
        )

        print(
            f"{'':10} {'jobs':>5} {'wall s':>8} {'ideal s':>8} {'ratio':>6} "
            f"{'slot-loss ms/job':>17} {'dispatch ms/job':>16} {'queue-only ms/job':>18} "
            f"{'median job ms':>14}"
        )
        for row, noop_wall in ((emb, emb_noop), (kaf, kaf_noop)):
            print(
                f"{row['label']:10} {row['jobs']:>5} {row['wall']:8.2f} {row['ideal']:8.2f} "
                f"{row['ratio']:6.3f} {row['overhead_ms']:17.1f} {row['dispatch_ms']:16.2f} "
                f"{noop_wall / len(noop_jobs) * 1000:18.2f} {row['job_ms']:14.0f}"
            )
        print(f"kafka/embedded wall: {kaf['wall'] / emb['wall']:.3f}")
        ok = all(r["ratio"] <= 1.10 for r in (emb, kaf))
        print("goal ratio <= 1.10:", "met" if ok else "NOT met")
        return 0
    finally:
        if worker is not None:
            worker.kill()
        stop_broker(broker.process)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
