"""EventBus delivery and the JSON wire form of events."""

from __future__ import annotations

import pytest

from console.events import EventBus, EventDecodeError, decode_event, encode_event
from console.model import (
    CheckResult,
    Combination,
    Event,
    Job,
    JobFinished,
    JobQueued,
    LogBatch,
    LogLine,
    StageChanged,
    Verdict,
    VerdictReached,
)


def test_bus_delivers_to_every_subscriber_in_order() -> None:
    bus = EventBus()
    seen: list[tuple[str, str]] = []
    bus.subscribe(lambda e: seen.append(("a", e.kind)))
    bus.subscribe(lambda e: seen.append(("b", e.kind)))
    bus.publish(StageChanged(run_id="r1", name="start", status="running"))
    bus(JobFinished(job_id="j", run_id="r1", verdict=Verdict.PASS))
    assert seen == [
        ("a", "stage_changed"),
        ("b", "stage_changed"),
        ("a", "job_finished"),
        ("b", "job_finished"),
    ]


def test_unsubscribe_stops_delivery() -> None:
    bus = EventBus()
    seen: list[str] = []
    unsubscribe = bus.subscribe(lambda e: seen.append(e.kind))
    unsubscribe()
    bus.publish(StageChanged(run_id="r1", name="start", status="running"))
    assert seen == []


def test_faulty_subscriber_does_not_stop_the_others_but_critical_one_does() -> None:
    bus = EventBus()
    seen: list[str] = []

    def broken(event: object) -> None:
        raise RuntimeError("display broke")

    bus.subscribe(broken)
    bus.subscribe(lambda e: seen.append(e.kind))
    bus.publish(StageChanged(run_id="r1", name="start", status="running"))
    assert seen == ["stage_changed"]

    def recorder(event: object) -> None:
        raise OSError("disk full")

    bus.subscribe(recorder, critical=True)
    with pytest.raises(OSError):
        bus.publish(StageChanged(run_id="r1", name="start", status="ok"))


def test_events_round_trip_through_json() -> None:
    job = Job(job_id="j1", combination=Combination(spec="s", prompt="v1", model="m"))
    result = CheckResult(run_id="r1", verdict=Verdict.CRASHED, reason="boom", job_id="j1")
    events: list[Event] = [
        JobQueued(job=job),
        LogBatch(run_id="r1", lines=[LogLine(seq=1, ts=1.0, text="[red]not markup[/red]")]),
        VerdictReached(run_id="r1", result=result),
    ]
    for event in events:
        decoded = decode_event(encode_event(event))
        assert type(decoded) is type(event)
        assert decoded == event


@pytest.mark.parametrize("data", [b"", b"not json", b'{"event": {"kind": "nope"}}', b"{}"])
def test_undecodable_events_raise_one_error_type(data: bytes) -> None:
    with pytest.raises(EventDecodeError):
        decode_event(data)
