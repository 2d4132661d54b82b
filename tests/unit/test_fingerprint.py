"""Fingerprints ignore what changes between runs and keep what tells failures apart."""

from __future__ import annotations

from console.fingerprint import fingerprint, normalise
from console.model import Failure, Frame, Verdict


def failure(message: str, file: str, line: int, name: str = "handler") -> Failure:
    return Failure(
        exception="ValueError",
        message=message,
        frames=[
            Frame(name=name, file=file, line=line, app=True),
            Frame(name="run", file="/usr/lib/python3.11/asyncio/runners.py", line=118),
        ],
        language="python",
    )


def test_normalise_removes_volatile_parts() -> None:
    text = (
        "object at 0x7f3a9c2b1d00 on 127.0.0.1:54321, run /tmp/pytest-7/x/y.py"
        " id 3f2a9c1e-1111-2222-3333-444455556666 after 17 tries"
    )
    assert normalise(text) == ("object at <addr> on <ip>, run <tmp> id <id> after <n> tries")


def test_same_failure_in_another_run_has_the_same_fingerprint() -> None:
    a = failure("bad port 8123 at 0xdeadbeef", "/data/verdict/runs/0mwq1aaa/project/app.py", 12)
    b = failure("bad port 9001 at 0xfeedface", "/data/verdict/runs/0mwq2bbb/project/app.py", 14)
    assert fingerprint(Verdict.CRASHED, a) == fingerprint(Verdict.CRASHED, b)


def test_different_failures_differ() -> None:
    base = failure("bad value", "app.py", 3)
    other_message = failure("No module named 'flask'", "app.py", 3)
    other_frame = failure("bad value", "app.py", 3, name="load_config")
    other_exc = base.model_copy(update={"exception": "KeyError"})
    prints = {
        fingerprint(Verdict.CRASHED, base),
        fingerprint(Verdict.CRASHED, other_message),
        fingerprint(Verdict.CRASHED, other_frame),
        fingerprint(Verdict.CRASHED, other_exc),
        fingerprint(Verdict.HTTP_ERROR, base),
    }
    assert len(prints) == 5


def test_without_a_trace_the_extra_evidence_decides() -> None:
    one = fingerprint(Verdict.NO_PORT, None, extra="timeout|never listened within 5 s")
    two = fingerprint(Verdict.NO_PORT, None, extra="timeout|never listened within 30 s")
    assert one == two
    assert one != fingerprint(Verdict.CRASHED, None, extra="command_not_found|")
