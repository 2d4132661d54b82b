"""The human report never lets an app's output drive the operator's terminal."""

from __future__ import annotations

import io

from rich.console import Console

from console.model import (
    CheckResult,
    ExitClass,
    ExitInfo,
    Failure,
    Frame,
    LogLine,
    StageResult,
    Verdict,
)
from console.report import print_check

CLEAR = "\x1b[2J"  # clear the screen
CLIPBOARD = "\x1b]52;c;ZWNobyBoaQ==\x07"  # write the clipboard (OSC 52)
CSI = "\x9b31m"  # the one-byte C1 form of ESC [


def test_control_sequences_from_the_app_are_shown_not_obeyed() -> None:
    evil = f"a{CLEAR}b{CLIPBOARD}c{CSI}d"
    result = CheckResult(
        run_id="r1",
        verdict=Verdict.CRASHED,
        reason=f"The app exited with status 1 (error): {evil}",
        exit=ExitInfo(code=1, cls=ExitClass.ERROR),
        stages=[StageResult(name="port", ok=False, started=0, ms=1, detail=evil)],
        failure=Failure(
            exception=f"Error{CLEAR}",
            message=evil,
            frames=[Frame(name=f"handler{CLEAR}", file=f"app{CLIPBOARD}.py", line=3, app=True)],
        ),
        log_tail=[LogLine(seq=1, ts=0, stream="stderr", text=evil)],
    )
    out = io.StringIO()
    print_check(result, Console(file=out, force_terminal=True, highlight=False, width=400))
    text = out.getvalue()
    for sequence in (CLEAR, CLIPBOARD[:5], CSI):
        assert sequence not in text
    assert "\\x1b[2J" in text  # visible, escaped
    assert text.count("\\x1b]52;c;") >= 4  # reason, detail, message, log line
