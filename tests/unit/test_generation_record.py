"""The generation event: built capped, recorded once, and always small enough for Kafka."""

from __future__ import annotations

import json
from pathlib import Path

from console.events import encode_event
from console.generate.record import Budget, cap_text, generation_event, json_size
from console.generate.result import GenerationResult
from console.matrix import load_matrix
from console.model import GenerationFinished
from console.queue.kafka import EVENT_LIMIT_BYTES, encode_within
from console.recorder import Recorder
from console.settings import Settings
from console.worker import GeneratorCache, process_job
from storage import runs
from storage.db import Database

QUEUE_FIXTURES = Path(__file__).parent.parent / "fixtures" / "queue"
# Worst cases for a JSON byte budget: 3-byte characters and control characters (\u0001).
HEAVY = ("한" * 7 + "\x01" * 3 + "x") * 200_000  # 2.2 M characters, ~8 MB as JSON


def test_cap_text_counts_json_bytes_not_characters() -> None:
    assert cap_text("short", 100) == ("short", False)
    for text in ("a" * 5000, "한" * 5000, "\x01" * 5000, HEAVY[:50_000]):
        capped, cut = cap_text(text, 1000)
        assert cut and text.startswith(capped)
        assert 900 <= json_size(capped) <= 1000  # cut close to the limit, never over it


def test_huge_responses_are_capped_with_notes_and_fit_one_record() -> None:
    result = GenerationResult(
        ok=False,
        reason="invalid answer after 6 attempts: " + HEAVY[:100_000],
        responses=[HEAVY] * 6,
        files=[f"src/{'d' * 900}/{n}.py" for n in range(5000)],
        attempts=6,
    )
    event = generation_event("j1", "r1", result, "llm")
    size = len(encode_event(event))
    assert size < 700 * 1024 < EVENT_LIMIT_BYTES
    assert len(event.responses) == Budget().max_responses
    assert all(HEAVY.startswith(r) and len(r) < len(HEAVY) for r in event.responses)
    assert "2 of 6 responses left out (kept first and last)" in event.notes
    assert any(n.startswith("response 6 cut to ") for n in event.notes)
    assert any(n.startswith("reason cut to ") for n in event.notes)
    assert any(n.endswith("of 5000 file paths left out") for n in event.notes)
    assert encode_within(event, EVENT_LIMIT_BYTES) == [encode_event(event)]


def test_an_uncapped_generation_event_is_shrunk_to_the_record_limit() -> None:
    # Built directly (not through generation_event): the wire still keeps it under the limit.
    event = GenerationFinished(run_id="r1", ok=True, generator="llm", responses=[HEAVY, HEAVY])
    [record] = encode_within(event, EVENT_LIMIT_BYTES)
    assert len(record) <= EVENT_LIMIT_BYTES
    sent = json.loads(record)["event"]
    assert sent["kind"] == "generation_finished" and HEAVY.startswith(sent["responses"][1])
    assert any(n.startswith("response 2 cut to ") for n in sent["notes"])


def test_the_same_generation_event_twice_is_one_row(db: Database) -> None:
    recorder = Recorder(db)
    event = GenerationFinished(
        run_id="r1", job_id="j1", ok=True, generator="llm", attempts=2, responses=["a", "b"]
    )
    recorder.handle(event)
    recorder.handle(event.model_copy())
    rows = db.query("SELECT run_id, attempts, responses FROM generations")
    assert rows == [{"run_id": "r1", "attempts": 2, "responses": '["a", "b"]'}]
    stored = runs.get_generation(db, "r1")
    assert stored is not None and stored.responses == ["a", "b"] and stored.generator == "llm"


async def test_a_replay_generation_is_recorded_without_responses(db: Database) -> None:
    matrix = load_matrix(QUEUE_FIXTURES / "quick.toml")
    job = next(j for j in matrix.jobs() if j.combination.key == "quick/v2/m1")  # crashes fast
    result = await process_job(
        job, generator=GeneratorCache(Settings())(job), emit=Recorder(db).handle
    )
    generation = runs.get_generation(db, result.run_id)
    assert generation is not None
    assert (generation.generator, generation.ok, generation.attempts) == ("replay", True, 0)
    assert generation.job_id == job.job_id and generation.responses == []
    assert generation.files == ["app.py", "verdict.toml"]


async def test_a_missing_replay_is_recorded_as_a_failed_generation(db: Database) -> None:
    matrix = load_matrix(QUEUE_FIXTURES / "quick.toml")
    job = next(j for j in matrix.jobs() if j.combination.key == "quick/v2/m2")  # not recorded
    result = await process_job(
        job, generator=GeneratorCache(Settings())(job), emit=Recorder(db).handle
    )
    generation = runs.get_generation(db, result.run_id)
    assert generation is not None and not generation.ok
    assert generation.reason == result.reason and generation.reason.startswith("replay: no ")
