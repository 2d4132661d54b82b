"""Trace parsing: root cause, frame names, app-frame detection for JVM, Python and Node."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.explain.traces import extract_failure, mark_app_frames, parse_traces
from console.model import Failure

TRACES = Path(__file__).parent.parent / "fixtures" / "explain" / "traces"


def load(name: str) -> str:
    return (TRACES / name).read_text(encoding="utf-8")


def parse(name: str, app: str | None = None) -> Failure:
    failure = extract_failure(load(name), app=app)
    assert failure is not None, name
    return failure


def app_names(failure: Failure) -> list[str]:
    return [f.name for f in failure.app_frames()]


# --- the seed's two Kotlin examples -----------------------------------------------------


@pytest.mark.parametrize("app", [None, "im.toss.teens"])
def test_seed_example_1_glued_frames(app: str | None) -> None:
    failure = parse("kotlin_seed1.txt", app)
    assert failure.language == "jvm"
    assert failure.exception == (
        "im.toss.teens.imagecard.adapter.persistence.ImageCardRepository$ImageCardNotFound"
    )
    assert failure.message == "존재하지 않는 이미지카드에요."
    # Five frames glued onto one line are five frames; the two CGLIB proxies are not app.
    assert len(failure.frames) == 8
    assert app_names(failure) == [
        "ImageCardRepository$ImageCardNotFound.<clinit>",
        "ImageCardRepository.findByIdOrThrow$lambda$0",
        "ImageCardRepository.findByIdOrThrow",
        "RoutingDataSourceInterceptor.annotationRoutingDataSourceAnnotation",
        "GetImageCardService.execute",
        "ImageCardController.getImageCard",
    ]
    first = failure.frames[0]
    assert (first.file, first.line) == ("ImageCardRepository.kt", None)
    assert failure.frames[1].line == 27
    proxy = failure.frames[4]
    assert proxy.name == "ImageCardRepository$$SpringCGLIB$$0.findByIdOrThrow"
    assert proxy.file == "<generated>" and not proxy.app


def test_seed_example_2_truncated_last_frame() -> None:
    failure = parse("kotlin_seed2.txt")
    assert failure.exception == "java.lang.IndexOutOfBoundsException"
    assert failure.message == "toIndex (4) is greater than size (0)."
    assert [(f.name, f.line, f.app) for f in failure.frames] == [
        ("UserShareKeyEncrypter.decrypt", 35, True),
        ("ImageCardController.getImageCard", 29, True),
        ("ImageCardController$$SpringCGLIB$$0.getImageCard", None, False),
    ]
    assert failure.frames[0].module == (
        "im.toss.teens.invitation.adapter.cache.redis.UserShareKeyEncrypter"
    )


def test_explicit_prefix_narrows_app_frames() -> None:
    failure = parse("kotlin_seed1.txt", app="im.toss.teens.api")
    assert app_names(failure) == ["ImageCardController.getImageCard"]


# --- JVM ---------------------------------------------------------------------------------


def test_spring_caused_by_chain_reports_innermost_cause() -> None:
    failure = parse("spring_caused_by.txt")
    assert failure.exception == "java.lang.NullPointerException"
    assert failure.message.startswith('Cannot invoke "String.length()"')
    assert [c.split(":")[0] for c in failure.causes] == [
        "org.springframework.beans.factory.BeanCreationException",
        "org.springframework.beans.BeanInstantiationException",
    ]
    # The root cause's own frames come first, then the enclosing exceptions' frames.
    assert failure.frames[0].name == "OrderIdGenerator.<init>"
    assert app_names(failure) == [
        "OrderIdGenerator.<init>",
        "OrderService.<init>",
        "ShopApplicationKt.main",
    ]
    # "java.base/" module prefixes and logback's "~[jar]" suffixes do not leak into names.
    assert failure.frames[2].name == "DirectConstructorHandleAccessor.newInstance"
    assert failure.frames[2].module == "jdk.internal.reflect.DirectConstructorHandleAccessor"


def test_kotlin_coroutine_suppressed_and_proxies() -> None:
    failure = parse("kotlin_coroutine_suppressed.txt")
    assert failure.exception == "java.net.ConnectException"
    assert failure.message == "Connection refused"
    assert failure.causes == ["java.lang.IllegalStateException: echo failed"]
    names = [f.name for f in failure.frames]
    assert "Closer.close" not in names  # suppressed exceptions are not part of the chain
    assert app_names(failure) == [
        "UpstreamClient.call",
        "EchoApi$echo$2.invokeSuspend",
        "EchoController.echo",
    ]
    assert "EchoService$$EnhancerBySpringCGLIB$$5f1a2b.echo" in names
    assert "$Proxy87.echo" in names


def test_jvm_default_package_is_app() -> None:
    text = (
        'Exception in thread "main" java.lang.ArithmeticException: / by zero\n'
        "\tat Main.divide(Main.java:3)\n"
        "\tat Main.main(Main.java:7)\n"
    )
    failure = extract_failure(text)
    assert failure is not None
    assert failure.exception == "java.lang.ArithmeticException"
    assert app_names(failure) == ["Main.divide", "Main.main"]


# --- Python ------------------------------------------------------------------------------


def test_python_direct_cause_reports_last_exception_with_all_frames() -> None:
    failure = parse("python_chained.txt")
    assert failure.language == "python"
    assert (failure.exception, failure.message) == ("RuntimeError", "DATABASE_URL is not set")
    assert failure.causes == ["KeyError: 'DATABASE_URL'"]
    # Innermost first; the reported exception's frames before its cause's frames.
    assert [(f.name, f.line) for f in failure.app_frames()] == [
        ("load_settings", 16),
        ("<module>", 9),
        ("load_settings", 14),
    ]
    files = {f.file for f in failure.frames if not f.app}
    assert "/srv/app/.venv/bin/flask" in files  # a venv under the project is not the app
    assert "<frozen os>" in files


def test_python_during_handling_django() -> None:
    failure = parse("python_during_handling.txt")
    assert failure.exception == "AttributeError"
    assert failure.causes == [
        "orders.models.Order.DoesNotExist: Order matching query does not exist."
    ]
    assert [(f.name, f.line) for f in failure.app_frames()] == [
        ("order_detail", 34),
        ("order_detail", 31),
    ]


def test_python_fastapi_keyerror_in_app_frame() -> None:
    failure = parse("fastapi_uvicorn.txt")
    assert (failure.exception, failure.message) == ("KeyError", "7")
    assert [(f.name, f.file, f.line) for f in failure.app_frames()] == [
        ("read_user", "/home/dev/api/main.py", 22)
    ]
    assert [f.name for f in failure.frames] == ["read_user", "run_endpoint_function", "run_asgi"]


def test_python_windows_paths_and_crlf() -> None:
    failure = parse("python_windows.txt")
    assert failure.exception == "ModuleNotFoundError"
    assert failure.message == "No module named 'urllib3'"
    assert [(f.file, f.app) for f in failure.frames] == [
        ("C:\\Python311\\Lib\\importlib\\__init__.py", False),
        ("C:\\Users\\dev\\proj\\.venv\\Lib\\site-packages\\requests\\__init__.py", False),
        ("C:\\Users\\dev\\proj\\helpers.py", True),
        ("C:\\Users\\dev\\proj\\app.py", True),
    ]
    # A project path given in another case and with forward slashes still matches.
    mark_app_frames(failure, "c:/users/dev/proj/")
    assert [f.line for f in failure.app_frames()] == [2, 5]
    mark_app_frames(failure, "C:\\elsewhere")
    assert failure.app_frames() == []


def test_python_syntax_error_without_traceback() -> None:
    failure = parse("python_syntax.txt")
    assert failure.exception == "SyntaxError"
    assert failure.message == "'(' was never closed"
    assert [(f.file, f.line, f.app) for f in failure.frames] == [("/srv/app/server.py", 12, True)]


def test_python_project_path_excludes_other_locations() -> None:
    failure = parse("python_chained.txt", app="/srv/app/shop")
    assert [f.file for f in failure.app_frames()] == ["/srv/app/shop/settings.py"] * 2


def test_python_traceback_with_compose_prefix() -> None:
    text = (
        "web-1  | Traceback (most recent call last):\n"
        'web-1  |   File "/app/main.py", line 3, in <module>\n'
        "web-1  |     import flask\n"
        "web-1  | ModuleNotFoundError: No module named 'flask'\n"
    )
    failure = extract_failure(text)
    assert failure is not None
    assert failure.exception == "ModuleNotFoundError"
    assert [(f.name, f.line, f.app) for f in failure.frames] == [("<module>", 3, True)]


# --- Node --------------------------------------------------------------------------------


def test_node_eaddrinuse_uses_errno_code_and_skips_emitted_frames() -> None:
    failure = parse("node_eaddrinuse.txt")
    assert failure.language == "node"
    assert failure.exception == "EADDRINUSE"
    assert failure.message == "listen EADDRINUSE: address already in use :::3000"
    names = [f.name for f in failure.frames]
    assert names[0] == "Server.setupListenHandle [as _listen2]"
    assert "emitErrorNT" not in names
    assert names[-1] == "<anonymous>"  # "at node:internal/main/run_main_module:23:47"
    assert [(f.name, f.file, f.line) for f in failure.app_frames()] == [
        ("Object.<anonymous>", "/srv/shop/server.js", 14)
    ]


def test_node_express_anonymous_frames_and_node_modules() -> None:
    failure = parse("node_express_undefined.txt", app="/srv/shop")
    assert failure.exception == "TypeError"
    assert failure.message == "Cannot read properties of undefined (reading 'id')"
    assert [(f.name, f.line) for f in failure.app_frames()] == [
        ("<anonymous>", 12),
        ("getUser", 30),
    ]
    assert [f.name for f in failure.frames][-2:] == ["async Promise.all", "new Promise"]


def test_node_unhandled_rejection_without_frames() -> None:
    failure = parse("node_unhandled_rejection.txt")
    assert failure.exception == "UnhandledPromiseRejection"
    assert 'reason "db down"' in failure.message
    assert failure.frames == []


def test_node_error_cause_chain_windows_paths() -> None:
    failure = parse("node_cause.txt")
    assert failure.exception == "ECONNREFUSED"
    assert failure.causes == ["Error: startup failed"]
    assert [(f.name, f.file, f.line) for f in failure.app_frames()] == [
        ("connect", "C:\\work\\shop\\db.js", 4),
        ("start", "C:/work/shop/index.mjs", 9),
        ("<anonymous>", "C:/work/shop/index.mjs", 14),
    ]


def test_node_error_with_code_in_brackets() -> None:
    text = (
        "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'express' imported from "
        "/srv/app/index.mjs\n"
        "    at packageResolve (node:internal/modules/esm/resolve:853:9)\n"
        "    at moduleResolve (node:internal/modules/esm/resolve:910:20) {\n"
        "  code: 'ERR_MODULE_NOT_FOUND'\n"
        "}\n"
    )
    failure = extract_failure(text)
    assert failure is not None
    assert failure.exception == "ERR_MODULE_NOT_FOUND"
    assert failure.app_frames() == []


# --- several traces ------------------------------------------------------------------------


def test_parse_traces_finds_every_trace_and_extract_takes_the_last() -> None:
    text = "\n".join(
        [
            "booting",
            load("fastapi_uvicorn.txt"),
            "INFO: retrying",
            load("node_express_undefined.txt"),
            load("kotlin_seed2.txt"),
            "shutdown",
        ]
    )
    failures = parse_traces(text)
    assert [(f.language, f.exception) for f in failures] == [
        ("python", "KeyError"),
        ("node", "TypeError"),
        ("jvm", "java.lang.IndexOutOfBoundsException"),
    ]
    last = extract_failure(text)
    assert last is not None and last.exception == "java.lang.IndexOutOfBoundsException"


def test_no_trace_and_ansi_colours() -> None:
    assert extract_failure("") is None
    assert extract_failure("server started on :3000\nGET / 200\n") is None
    coloured = "\x1b[31mTraceback (most recent call last):\x1b[0m\n" + (
        '  File "/srv/app/app.py", line 1, in <module>\n\x1b[1;31mValueError\x1b[0m: bad\n'
    )
    failure = extract_failure(coloured)
    assert failure is not None
    assert (failure.exception, failure.message) == ("ValueError", "bad")
