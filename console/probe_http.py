"""HTTP probes on asyncio streams: one ``GET`` per fresh connection (no pool, small
timeouts, only the status line is read) and the health probe with its retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

HTTP_TIMEOUT = 10.0  # upper bound of one request; the start deadline may cut it shorter
HEALTH_ATTEMPTS = 3
HEALTH_INTERVAL = 0.5


@dataclass
class HttpAnswer:
    """An HTTP probe's outcome: a status, or the error that prevented one."""

    status: int | None
    error: str | None = None
    timed_out: bool = False

    def describe(self) -> str:
        if self.status is not None:
            return f"answered {self.status}"
        if self.timed_out:
            return "got no answer in time"
        return f"failed ({self.error})"


async def http_get(
    host: str, port: int, path: str = "/", *, request_timeout: float = HTTP_TIMEOUT
) -> HttpAnswer:
    """One ``GET`` over a fresh connection; reads only the status line."""
    if not path.startswith("/"):
        path = "/" + path
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(max(request_timeout, 0.01)):
            reader, writer = await asyncio.open_connection(host, port)
            authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: verdict-probe\r\n"
                "Accept: */*\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            await writer.drain()
            status_line = await reader.readline()
    except TimeoutError:
        return HttpAnswer(None, "timed out", timed_out=True)
    except ValueError:  # the stream's line limit (64 KiB) passed without a newline
        return HttpAnswer(None, "not an HTTP response: a status line without end")
    except OSError as exc:
        return HttpAnswer(None, exc.strerror or exc.__class__.__name__)
    finally:
        if writer is not None:
            writer.close()
    parts = status_line.decode("latin-1", errors="replace").split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        text = status_line[:60].decode("latin-1", errors="replace").strip()
        return HttpAnswer(None, f"not an HTTP response: {text!r}" if text else "empty response")
    return HttpAnswer(int(parts[1]))


async def probe_health(
    host: str,
    port: int,
    path: str,
    *,
    request_timeout: float = HTTP_TIMEOUT,
    attempts: int = HEALTH_ATTEMPTS,
    interval: float = HEALTH_INTERVAL,
    deadline: float | None = None,
    get: Callable[..., Awaitable[HttpAnswer]] | None = None,
) -> tuple[HttpAnswer, int]:
    """GET the health path until it answers 2xx or the attempts run out.

    ``deadline`` (``time.monotonic()``) ends the retries: the first attempt always gets
    ``request_timeout``, later ones only the time left, so a hanging endpoint cannot stretch
    the start timeout by the number of attempts.  Returns the last answer and the number of
    attempts made.  ``get`` replaces :func:`http_get` (a sandbox probing from inside).
    """
    get = get or http_get
    answer = HttpAnswer(None, "not tried")
    timeout = request_timeout
    for attempt in range(1, attempts + 1):
        answer = await get(host, port, path, request_timeout=timeout)
        if answer.status is not None and 200 <= answer.status < 300:
            return answer, attempt
        if attempt == attempts:
            break
        if deadline is not None:
            timeout = min(request_timeout, deadline - time.monotonic() - interval)
            if timeout <= 0:
                return answer, attempt
        await asyncio.sleep(interval)
    return answer, attempts
