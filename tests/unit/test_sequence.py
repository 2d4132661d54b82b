"""Exit classification and the HTTP probes (against real loopback servers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from console.model import ExitClass, LogLine
from console.sequence import classify_exit, describe_exit, http_get, probe_health


@pytest.mark.parametrize(
    ("code", "cls", "signal"),
    [
        (0, ExitClass.OK, None),
        (1, ExitClass.ERROR, None),
        (3, ExitClass.ERROR, None),
        (2, ExitClass.USAGE, None),
        (126, ExitClass.NOT_EXECUTABLE, None),
        (127, ExitClass.COMMAND_NOT_FOUND, None),
        (-11, ExitClass.SIGNAL, "SIGSEGV"),
        (-9, ExitClass.SIGNAL, "SIGKILL"),
        (139, ExitClass.SIGNAL, "SIGSEGV"),  # a shell's report of its child's signal
    ],
)
def test_classify_exit_codes(code: int, cls: ExitClass, signal: str | None) -> None:
    info = classify_exit(code)
    assert info.cls == cls
    assert info.signal == signal


def test_classify_exit_oom_from_watchdog_and_from_log() -> None:
    assert classify_exit(-9, oom_hint=True).cls == ExitClass.OOM
    tail = [
        LogLine(seq=1, ts=0, text="Traceback (most recent call last):"),
        LogLine(seq=2, ts=0, text="MemoryError"),
    ]
    assert classify_exit(1, log_tail=tail).cls == ExitClass.OOM
    node = ["FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"]
    assert classify_exit(-6, log_tail=node).cls == ExitClass.OOM
    assert classify_exit(1, log_tail=["ValueError: bad"]).cls == ExitClass.ERROR


def test_classify_exit_timeout_and_still_running() -> None:
    info = classify_exit(-15, killed_by_us=True)
    assert info.cls == ExitClass.TIMEOUT and info.signal == "SIGTERM"
    assert classify_exit(None).cls is None


def test_describe_exit() -> None:
    assert describe_exit(classify_exit(1)) == "status 1 (error)"
    assert describe_exit(classify_exit(127)) == "status 127 (command not found)"
    assert describe_exit(classify_exit(-11)) == "signal SIGSEGV"


Responder = Callable[[bytes], bytes | None]


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Responder], asyncio.Future[int]]]:
    servers: list[asyncio.Server] = []

    async def start(responder: Responder) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await reader.readuntil(b"\r\n\r\n")
            reply = responder(request)
            if reply is None:  # hang until the client gives up
                await reader.read()
            else:
                writer.write(reply)
                await writer.drain()
            writer.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(srv)
        return int(srv.sockets[0].getsockname()[1])

    yield start  # type: ignore[misc]
    for srv in servers:
        srv.close()
        await srv.wait_closed()


async def test_http_get_status_and_request(server) -> None:
    seen: list[bytes] = []

    def reply(request: bytes) -> bytes:
        seen.append(request)
        return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    port = await server(reply)
    answer = await http_get("127.0.0.1", port, "/x")
    assert answer.status == 404
    assert seen[0].startswith(b"GET /x HTTP/1.1\r\n")


async def test_http_get_refused_garbage_and_timeout(server) -> None:
    garbage = await server(lambda request: b"hello there\r\n")
    answer = await http_get("127.0.0.1", garbage)
    assert answer.status is None and "not an HTTP response" in (answer.error or "")
    hang = await server(lambda request: None)
    answer = await http_get("127.0.0.1", hang, request_timeout=0.3)
    assert answer.status is None and answer.timed_out
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    answer = await http_get("127.0.0.1", closed)
    assert answer.status is None and not answer.timed_out and answer.error


async def test_health_retries_until_2xx(server) -> None:
    statuses = iter([503, 503, 200])

    def reply(request: bytes) -> bytes:
        return f"HTTP/1.1 {next(statuses)} X\r\nContent-Length: 0\r\n\r\n".encode()

    port = await server(reply)
    answer, attempts = await probe_health("127.0.0.1", port, "/health", interval=0.01)
    assert answer.status == 200 and attempts == 3


async def test_health_gives_up(server) -> None:
    port = await server(lambda request: b"HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n")
    answer, attempts = await probe_health("127.0.0.1", port, "health", attempts=2, interval=0.01)
    assert answer.status == 500 and attempts == 2
