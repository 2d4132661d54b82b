"""Adversarial cases for generation, the worker, the embedded queue and the matrix."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.capacity import Capacity, Headroom
from console.generate.llm import InvalidAnswer, LlmGenerator
from console.generate.prompts import GeneratedProject
from console.generate.result import GenerationResult
from console.matrix import MatrixError, load_matrix
from console.model import Combination, Event, Job, Verdict
from console.queue.embedded import EmbeddedQueue
from console.worker import Worker, process_job
from storage import jobs as job_store
from storage.db import Database


def make_job(n: int) -> Job:
    return Job(job_id=f"job{n}", combination=Combination(spec="s", prompt=f"v{n}", model="m"))


def roomy() -> Headroom:
    return Headroom(free_memory_mb=1e6, cpu_percent=0)


def answer(**fields: object) -> str:
    body: dict[str, object] = {
        "files": [{"path": "app.py", "content": "print(1)\n"}],
        "run": "python3 app.py",
        "install": None,
        "port_env": "PORT",
        "health": None,
    }
    body.update(fields)
    return json.dumps(body)


# --- generation ---------------------------------------------------------------------------


class ExplodingGenerator:
    """A generator with a bug: it raises instead of returning a failed result."""

    def __init__(self) -> None:
        self.calls = 0

    async def generate(self, job: Job, dest: Path) -> GenerationResult:
        self.calls += 1
        raise OSError(28, "No space left on device")


async def test_a_generator_that_raises_gives_generation_failed_not_a_crash() -> None:
    events: list[Event] = []
    result = await process_job(make_job(1), generator=ExplodingGenerator(), emit=events.append)
    assert result.verdict is Verdict.GENERATION_FAILED
    assert "No space left on device" in result.reason and "\n" not in result.reason
    assert [e.kind for e in events][-2:] == ["verdict_reached", "job_finished"]


async def test_a_raising_generator_does_not_stop_the_worker_or_poison_the_queue(
    db: Database,
) -> None:
    queue = EmbeddedQueue(db, drain=True)
    await queue.start()
    await queue.put([make_job(1), make_job(2)])
    generator = ExplodingGenerator()
    worker = Worker(
        queue,
        Capacity(1, probe=roomy),
        db=db,
        emit=lambda event: None,
        generator_for=lambda job: generator,
    )
    await asyncio.wait_for(worker.run(), 30)
    assert generator.calls == 2
    assert job_store.count_by_state(db) == {"done": 2}
    assert {r.verdict.value for r in worker.results} == {"generation_failed"}


def test_content_with_a_lone_surrogate_is_an_invalid_answer_not_a_crash() -> None:
    raw = answer(files=[{"path": "app.py", "content": "x"}]).replace('"x"', '"\\ud800"')
    with pytest.raises(InvalidAnswer, match="UTF-8"):
        LlmGenerator(factory=None).parse(raw)  # type: ignore[arg-type]
    raw = answer(files=[{"path": "a.py", "content": "x"}]).replace('"a.py"', '"a\\udc80.py"')
    with pytest.raises(InvalidAnswer, match="UTF-8"):
        LlmGenerator(factory=None).parse(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["PATH", "HOME", "HOST", "VERDICT_RUN", "LD_PRELOAD"])
def test_port_env_may_not_clobber_the_sandbox_environment(name: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        GeneratedProject.model_validate_json(answer(port_env=name))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('port_env = "PATH"', "port_env"),
        ('port_env = "MY-PORT"', "port_env"),
        ('health = "health"', "health"),
    ],
)
async def test_a_replayed_verdict_toml_with_unusable_values_fails_generation(
    tmp_path: Path, line: str, problem: str
) -> None:
    from console.generate.replay import ReplayGenerator

    recorded = tmp_path / "replay" / "v1" / "m"
    recorded.mkdir(parents=True)
    (recorded / "app.py").write_text("print(1)\n")
    (recorded / "verdict.toml").write_text(f'run = "python3 app.py"\n{line}\n')
    job = Job(job_id="j", combination=Combination(spec="s", prompt="v1", model="m"))
    result = await ReplayGenerator(tmp_path / "replay").generate(job, tmp_path / "out")
    assert not result.ok and problem in result.reason


class WritingGenerator:
    @staticmethod
    def _write(dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "app.py").write_text("print(1)\n")

    async def generate(self, job: Job, dest: Path) -> GenerationResult:
        await asyncio.to_thread(self._write, dest)
        return GenerationResult(ok=True, project_dir=dest, run="python3 app.py")


@pytest.mark.parametrize(
    "payload",
    [{"check": {"start_timeout": "soon"}}, {"spec": {"run": 5}}, {"spec": {"expect_log": 3}}],
)
async def test_a_job_with_an_unusable_payload_gets_a_verdict_not_a_crash(payload: dict) -> None:
    job = make_job(1).model_copy(update={"payload": payload})
    result = await process_job(job, generator=WritingGenerator(), emit=lambda event: None)
    assert result.verdict is Verdict.GENERATION_FAILED
    assert result.reason.startswith("unusable job payload: ")


# --- the embedded queue after a killed process --------------------------------------------


def test_a_lease_whose_owner_pid_was_reused_is_recovered(db: Database) -> None:
    job_store.enqueue(db, [make_job(1)])
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # The lease was taken by a process that died; its pid now names ``stranger``.
        job_store.lease_next(db, f"{socket.gethostname()}:{stranger.pid}")
        with db.write() as sdb:
            sdb.execute("UPDATE jobs SET leased_at = ?", (time.time() - 3600,))
        assert job_store.recover_leases(db) == 1
        record = job_store.get_job(db, "job1")
        assert record is not None and record.state == "queued"
    finally:
        stranger.kill()
        stranger.wait()


def _run_status(db: Database, run_id: str) -> tuple[str, str | None]:
    [row] = db.query("SELECT status, reason FROM runs WHERE run_id = ?", (run_id,))
    return row["status"], row["reason"]


async def test_recovering_a_dead_lease_aborts_its_run_and_stops_what_it_left(
    db: Database,
) -> None:
    from console import paths
    from console.model import RunStarted
    from console.recorder import Recorder

    job_store.enqueue(db, [make_job(1)])
    job_store.lease_next(db, "gone-host:1")  # a process on a machine that is gone
    job_store.set_run(db, "job1", "rdead")
    Recorder(db).handle(RunStarted(run_id="rdead", project="p", job_id="job1"))
    workdirs = [paths.runs_dir(create=True) / "rdead", paths.runs_dir() / "rdead-x1"]
    for path in workdirs:
        (path / "project").mkdir(parents=True)
    keep = paths.runs_dir() / "rdeadbeef"  # another run's directory
    keep.mkdir()
    leftover = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)", env={"VERDICT_RUN": "rdead"}
    )
    try:
        queue = EmbeddedQueue(db)
        await queue.start()
        assert queue.recovered == 1
        assert await asyncio.wait_for(leftover.wait(), 10) == -9
    finally:
        if leftover.returncode is None:
            leftover.kill()
            await leftover.wait()
    status, reason = _run_status(db, "rdead")
    assert status == "aborted" and reason is not None and "gone-host:1" in reason
    assert not any(path.exists() for path in workdirs) and keep.is_dir()
    delivery = await queue.get()
    assert delivery is not None and delivery.job.job_id == "job1"


def test_a_job_started_again_ends_its_earlier_unfinished_run(db: Database) -> None:
    from console.model import JobStarted, RunStarted
    from console.recorder import Recorder
    from console.worker import record_event

    recorder = Recorder(db)
    job_store.enqueue(db, [make_job(1)], queue="kafka")
    record_event(db, recorder, JobStarted(job_id="job1", run_id="r1"))
    record_event(db, recorder, RunStarted(run_id="r1", project="p", job_id="job1"))
    record_event(db, recorder, JobStarted(job_id="job1", run_id="r2"))  # redelivered
    status, reason = _run_status(db, "r1")
    assert status == "aborted" and reason is not None and "r2" in reason
    record = job_store.get_job(db, "job1")
    assert record is not None and record.run_id == "r2"


def test_a_job_heard_of_after_its_verdict_is_still_done_in_the_ledger(db: Database) -> None:
    """Another console's events may come in any order: a ``JobQueued`` that arrives after
    the job's run and verdict adds the job as done, with that verdict (and one that arrives
    twice changes nothing)."""
    from console.model import (
        CheckResult,
        JobQueued,
        JobStarted,
        RunStarted,
        Verdict,
        VerdictReached,
    )
    from console.recorder import Recorder
    from console.worker import record_event

    recorder = Recorder(db)
    job, other = make_job(1), make_job(2)
    record_event(db, recorder, RunStarted(run_id="r1", project="p", job_id="job1"))
    result = CheckResult(run_id="r1", verdict=Verdict.CRASHED, reason="x", job_id="job1")
    record_event(db, recorder, VerdictReached(run_id="r1", result=result))
    assert job_store.get_job(db, "job1") is None  # not heard of yet
    record_event(db, recorder, JobQueued(job=job))
    record = job_store.get_job(db, "job1")
    assert record is not None and record.state == job_store.DONE
    assert (record.run_id, record.verdict, record.origin) == ("r1", "crashed", "remote")
    record_event(db, recorder, JobQueued(job=job))
    assert job_store.get_job(db, "job1") == record
    # A job whose run has started but not ended is queued with that run.
    record_event(db, recorder, JobStarted(job_id="job2", run_id="r2"))
    record_event(db, recorder, RunStarted(run_id="r2", project="p", job_id="job2"))
    record_event(db, recorder, JobQueued(job=other))
    started = job_store.get_job(db, "job2")
    assert started is not None and started.state != job_store.DONE and started.run_id == "r2"


# --- the matrix file ----------------------------------------------------------------------

MATRIX = """
{settings}
[[spec]]
name = "{spec}"
task = "A notes API."

[[prompt]]
version = "v1"
template = "v1.txt"

[[model]]
name = "m1"

[generator]
kind = "replay"
dir = "replay/{{spec}}"
"""


def write_matrix(directory: Path, *, spec: str = "notes", settings: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "v1.txt").write_text("Build {task}\n")
    if len(spec) < 200:
        (directory / "replay" / spec).mkdir(parents=True, exist_ok=True)
    path = directory / "m.toml"
    path.write_text(MATRIX.format(spec=spec, settings=settings))
    return path


def test_a_matrix_and_template_saved_with_a_bom_are_read(tmp_path: Path) -> None:
    path = write_matrix(tmp_path / "with spaces")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    (tmp_path / "with spaces" / "v1.txt").write_bytes(b"\xef\xbb\xbfBuild {task}\n")
    matrix = load_matrix(path)
    [job] = matrix.jobs()
    assert job.payload["prompt"]["text"] == "Build A notes API.\n"


def test_a_name_too_long_for_a_directory_is_a_one_line_error(tmp_path: Path) -> None:
    path = write_matrix(tmp_path, spec="a" * 300)
    with pytest.raises(MatrixError, match=r"spec #1 .*: name: .*too long") as caught:
        load_matrix(path)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ('queue = "redis://x:1"', "settings.queue"),
        ('sandbox = "docker"', "settings.sandbox"),
    ],
)
def test_settings_values_are_checked_when_the_matrix_is_read(
    tmp_path: Path, settings: str, problem: str
) -> None:
    path = write_matrix(tmp_path, settings=f"[settings]\n{settings}\n")
    with pytest.raises(MatrixError, match=problem) as caught:
        load_matrix(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
