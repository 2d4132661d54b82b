"""Trace parsing on real-world shapes: exception groups, per-line log prefixes with changing
timestamps, Kotlin coroutine boundaries, other languages' panics, and hostile long lines."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.errors import UsageError
from console.explain.inputs import from_trace
from console.explain.traces import extract_failure

TRACES = Path(__file__).parent.parent / "fixtures" / "explain" / "traces"
GROUP = (TRACES / "python_exception_group.txt").read_text(encoding="utf-8")


def _stamped(text: str) -> str:
    """``text`` as a log with a timestamp that changes on every line."""
    return "".join(
        f"2026-11-21T09:00:{i % 60:02d}.{(i * 37) % 1000:03d}Z ERROR app | {line}\n"
        for i, line in enumerate(text.splitlines())
    )


def test_exception_group_reports_first_leaf_with_group_as_cause() -> None:
    failure = extract_failure(GROUP, app="/srv/app")
    assert failure is not None
    assert (failure.exception, failure.message) == ("ValueError", "bad value")
    assert failure.causes[0].startswith("ExceptionGroup: unhandled errors in a TaskGroup")
    # The leaf's frame first, then the group's own frames (innermost first).
    assert [f.name for f in failure.app_frames()] == ["boom", "main", "<module>"]
    assert failure.language == "python"


def test_exception_group_behind_changing_timestamps() -> None:
    text = "INFO starting\n" + _stamped(GROUP) + "INFO shutting down\n"
    failure = extract_failure(text, app="/srv/app")
    assert failure is not None
    assert (failure.exception, failure.message) == ("ValueError", "bad value")
    assert [f.name for f in failure.app_frames()] == ["boom", "main", "<module>"]


def test_group_of_frameless_sub_exceptions() -> None:
    text = (
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "/srv/app/main.py", line 3, in <module>\n'
        '  |     raise ExceptionGroup("many", [OSError("disk"), TypeError("t")])\n'
        "  | ExceptionGroup: many (2 sub-exceptions)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | OSError: disk\n"
        "    +---------------- 2 ----------------\n"
        "    | TypeError: t\n"
        "    +------------------------------------\n"
    )
    failure = extract_failure(text)
    assert failure is not None
    assert (failure.exception, failure.message) == ("OSError", "disk")
    assert [f.name for f in failure.frames] == ["<module>"]


PY = (
    "Traceback (most recent call last):\n"
    '  File "/srv/app/main.py", line 12, in <module>\n'
    "    main()\n"
    '  File "/srv/app/main.py", line 5, in f\n'
    "    return f(n - 1)\n"
    "           ^^^^^^^^\n"
    "  [Previous line repeated 996 more times]\n"
    '  File "/srv/app/main.py", line 4, in f\n'
    "    if n < 0:\n"
    "       ^^^^^\n"
    "RecursionError: maximum recursion depth exceeded in comparison\n"
)


def test_python_trace_with_a_timestamp_changing_on_every_line() -> None:
    failure = extract_failure("INFO up\n" + _stamped(PY))
    assert failure is not None
    assert failure.exception == "RecursionError"
    assert [f.name for f in failure.frames] == ["f", "f", "<module>"]


def test_kotlin_coroutine_boundary_does_not_split_the_trace() -> None:
    text = (
        'Exception in thread "main" java.lang.IllegalStateException: no echo\n'
        "\tat com.example.EchoApi$echo$2.invokeSuspend(EchoApi.kt:20)\n"
        "\tat (Coroutine boundary.(:0)\n"
        "\tat com.example.EchoApi.echo(EchoApi.kt:15)\n"
        "\tat com.example.MainKt$main$1.invokeSuspend(Main.kt:5)\n"
        "Caused by: java.lang.IllegalStateException: no echo\n"
        "\tat com.example.EchoApi$echo$2.invokeSuspend(EchoApi.kt:20)\n"
        "\tat kotlinx.coroutines.DispatchedTask.run(DispatchedTask.kt:108)\n"
    )
    failure = extract_failure(text, app="com.example")
    assert failure is not None
    assert failure.exception == "java.lang.IllegalStateException"
    assert failure.causes == ["java.lang.IllegalStateException: no echo"]
    assert [f.name for f in failure.app_frames()] == [
        "EchoApi$echo$2.invokeSuspend",
        "EchoApi$echo$2.invokeSuspend",
        "EchoApi.echo",
        "MainKt$main$1.invokeSuspend",
    ]


GO_PANIC = (
    "panic: runtime error: invalid memory address or nil pointer dereference\n"
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]\n\n"
    "goroutine 1 [running]:\nmain.handler(0x0)\n\t/srv/app/main.go:12 +0x1c\n"
    "main.main()\n\t/srv/app/main.go:20 +0x25\nexit status 2\n"
)
RUST_PANIC = (
    "thread 'main' panicked at src/main.rs:5:13:\n"
    "called `Option::unwrap()` on a `None` value\n"
    "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n"
)


@pytest.mark.parametrize(
    ("text", "language", "first_app_frame"),
    [(GO_PANIC, "go", "main.handler"), (RUST_PANIC, "rust", "<panic>")],
    ids=["go", "rust"],
)
def test_go_and_rust_panics_are_read(text: str, language: str, first_app_frame: str) -> None:
    failure = from_trace(text).failure
    assert failure is not None
    assert (failure.exception, failure.language) == ("panic", language)
    assert failure.app_frames()[0].name == first_app_frame


def test_text_without_a_trace_is_bad_input() -> None:
    with pytest.raises(UsageError, match="no stack trace found"):
        from_trace("server started on :8080\nshutting down\n")


# Lines a log can hold that once sent a frame pattern into catastrophic backtracking
# (a lazy name followed by optional spaces): minutes for a few thousand spaces.
HOSTILE = {
    "node-frame-spaces": "Error: x\n    at x" + " " * 1500 + "y\n",
    "python-frame-spaces": (
        'Traceback (most recent call last):\n  File "/a.py", line 1, in f'
        + " " * 60000
        + "x\nValueError: 1\n"
    ),
    "rejection-spaces": "[UnhandledPromiseRejection: " + " " * 40000 + "y\n    at f (/a.js:1:1)\n",
    "node-frame-parens": "Error: x\n    at f" + " (a)" * 20000 + " (/a.js:1:1\n",
    "go-func-parens": "panic: x\n\ngoroutine 1 [running]:\nmain." + "(*T)" * 20000 + "(\n",
    "php-many-ins": "PHP Fatal error:  Uncaught Error: " + "x in y:1 " * 20000 + "\n",
    "ruby-many-ins": "a.rb:1:in `" + "x:1:in `" * 20000 + "\n",
    "dotnet-frame-spaces": "System.Exception: x\n   at A.B(" + " " * 40000 + "y\n",
    "rust-panic-quotes": "thread 'main' panicked at '" + "', " * 20000 + "\n",
    "json-deep": '{"stack": "Error\\n    at f (/a.js:1:1)", "x": '
    + "[" * 5000
    + "]" * 5000
    + "}\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_long_lines_parse_in_bounded_time(name: str) -> None:
    started = time.perf_counter()
    extract_failure(HOSTILE[name])
    assert time.perf_counter() - started < 2.0


def test_five_megabyte_log_is_parsed_in_bounded_time() -> None:
    noise = "2026-11-21T09:00:00Z INFO GET /items at handler (routes) 200 in 3 ms\n" * 75_000
    text = noise + _stamped(PY)
    assert len(text) > 5_000_000
    started = time.perf_counter()
    failure = extract_failure(text)
    assert time.perf_counter() - started < 10.0
    assert failure is not None and failure.exception == "RecursionError"


LOGBACK = (
    "2026-11-21 09:00:00.123 ERROR 1 --- [nio-8080-exec-1] o.a.c.c.C.[.[.[/].[dispatcherServlet]"
    " : Servlet.service() threw exception\n"
    "java.lang.IllegalStateException: boom\n"
    "\tat com.example.demo.UserService.find(UserService.java:42) ~[classes/:na]\n"
    "\tat org.springframework.aop.framework.CglibAopProxy.intercept(CglibAopProxy.java:12)"
    " ~[spring-aop-6.1.jar:6.1]\n"
    "\tat com.example.demo.UserController.get(UserController.java:20) ~[classes/:na]\n"
    'Caused by: java.lang.NullPointerException: Cannot invoke "String.length()"\n'
    "\tat com.example.demo.Util.len(Util.java:7) ~[classes/:na]\n"
    "\t... 2 common frames omitted\n"
)


@pytest.mark.parametrize("stamped", [False, True], ids=["plain", "prefixed"])
def test_spring_trace_with_jar_suffixes_and_a_prefix_on_every_line(stamped: bool) -> None:
    text = _stamped(LOGBACK) if stamped else LOGBACK
    failure = extract_failure(text, app="com.example")
    assert failure is not None
    assert failure.exception == "java.lang.NullPointerException"
    assert failure.causes == ["java.lang.IllegalStateException: boom"]
    assert [f.name for f in failure.app_frames()] == [
        "Util.len",
        "UserService.find",
        "UserController.get",
    ]
    assert failure.frames[0].file == "Util.java" and failure.frames[0].line == 7
