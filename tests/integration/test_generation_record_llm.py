"""An LLM generation is recorded with its raw responses, and ``verdict show`` prints them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from console.generate.llm import LlmGenerator
from console.llm.factory import ChatModelFactory
from console.model import Combination, Event, Job
from console.recorder import Recorder
from console.settings import Settings
from console.worker import process_job
from storage import runs
from storage.db import Database
from tests.support.cli import db_rows, run_verdict
from tests.support.openai_server import OpenAIServer, chat_reply

pytestmark = [pytest.mark.llm, pytest.mark.timeout(120)]

# The app exits at once (a quick verdict); its long comment makes the answer long.
APP = "# " + "x" * 3000 + "\nprint('bye')\n"
GOOD = json.dumps(
    {
        "files": [{"path": "app.py", "content": APP}],
        "run": "python3 app.py",
        "install": None,
        "port_env": "PORT",
        "health": None,
    }
)
BAD = json.dumps({"files": [{"path": "app.py", "content": APP}]})  # no "run": repaired


async def test_a_repaired_generation_is_recorded_with_both_raw_answers(
    openai_server: OpenAIServer, llm_settings: Settings, db: Database, db_path: Path
) -> None:
    openai_server.enqueue(chat_reply(BAD), chat_reply(GOOD))
    job = Job(
        job_id="j-gen",
        combination=Combination(spec="notes", prompt="v1", model="test-model"),
        payload={"prompt": {"version": "v1", "text": "Write it."}, "check": {"start_timeout": 10}},
    )
    events: list[Event] = []
    recorder = Recorder(db)

    def emit(event: Event) -> None:
        events.append(event)
        recorder.handle(event)

    result = await process_job(
        job, generator=LlmGenerator(ChatModelFactory(llm_settings, db)), emit=emit
    )
    assert [e.kind for e in events][:2] == ["job_started", "generation_finished"]
    generation = runs.get_generation(db, result.run_id)
    assert generation is not None
    assert (generation.generator, generation.ok, generation.attempts) == ("llm", True, 2)
    assert generation.responses == [BAD, GOOD] and generation.notes == []
    assert generation.files == ["app.py"] and generation.job_id == "j-gen"
    assert db_rows(db_path, "SELECT COUNT(*) FROM generations") == [(1,)]

    shown = run_verdict("show", result.run_id, "--json", db=db_path)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["generation"]["responses"] == [BAD, GOOD]
    assert data["generation"]["generator"] == "llm" and data["generation"]["attempts"] == 2
    assert data["combination"] == {"spec": "notes", "prompt": "v1", "model": "test-model"}

    human = run_verdict("show", result.run_id, db=db_path, env=dict(os.environ, COLUMNS="80"))
    assert human.returncode == 0, human.stderr
    out = human.stdout
    assert "generation  llm  ok  2 attempts" in out
    assert "response 1 (" in out and "response 2 (" in out
    assert f"cut here; verdict show {result.run_id} --json for all" in out
    assert "x" * 3000 not in out.replace("\n", "")  # the answer is cut in the human view
    assert all(len(line) <= 80 for line in out.splitlines())
