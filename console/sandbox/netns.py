"""Reaching an app that runs without network access (``--network none``).

Such an app lives in its own network namespace holding only a loopback interface: it can
reach nothing and nothing can reach it.  The prober still must: for each port the app
opens, a relay listens in the harness's namespace on the same port of a loopback address
of its own (``127.a.b.c``, one per run, so two runs on one port never collide) and, for
every connection, opens a socket *inside* the app's namespace (``setns`` in a short-lived
thread, which then returns to ours) and copies bytes both ways.  Ports are still found
through a netlink socket created in the app's namespace (``/proc/<pid>/net/tcp`` would
walk every TCP socket of the host: milliseconds a poll).  Entering another network namespace
takes ``CAP_SYS_ADMIN``, so this is offered to a root harness only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import socket
import threading
import zlib

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def relay_address(run_id: str, attempt: int = 0) -> str:
    """A loopback address of the run's own, away from 127.0.0.1 and 127.0.0.53."""
    digest = zlib.crc32(f"{run_id}/{attempt}".encode())
    return f"127.{100 + digest % 100}.{(digest >> 8) % 256}.{1 + (digest >> 16) % 254}"


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def socket_in(
    pid: int, family: int, kind: int = socket.SOCK_STREAM, proto: int = 0
) -> socket.socket:
    """A socket created in ``pid``'s network namespace (blocking call, own thread).

    It stays in that namespace for its whole life: a TCP socket to dial the app, or the
    netlink socket that lists the namespace's listening sockets as cheaply as ours.
    """
    result: list[socket.socket | BaseException] = []

    def create() -> None:
        try:
            with (
                open("/proc/thread-self/ns/net", "rb") as ours,
                open(f"/proc/{pid}/ns/net", "rb") as theirs,
            ):
                _setns(theirs.fileno())
                try:
                    result.append(socket.socket(family, kind, proto))
                finally:
                    _setns(ours.fileno())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            result.append(exc)

    # A thread of its own: should returning to our namespace ever fail, it dies with it.
    thread = threading.Thread(target=create, name="netns-socket", daemon=True)
    thread.start()
    thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


class Relay:
    """Forwards ``address:port`` here to ``target:port`` in the app's network namespace."""

    def __init__(self, pid: int, target: str, port: int, run_id: str) -> None:
        self.pid = pid
        self.target = target
        self.port = port
        self.run_id = run_id
        self.address = ""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        """Listen; returns the address the prober dials (with the app's port)."""
        error: OSError | None = None
        for attempt in range(8):
            address = relay_address(self.run_id, attempt)
            try:
                self._server = await asyncio.start_server(self._handle, address, self.port)
            except OSError as exc:
                error = exc
                continue
            self.address = address
            return address
        raise OSError(f"no loopback address free for port {self.port}: {error}")

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        family = socket.AF_INET6 if ":" in self.target else socket.AF_INET
        try:
            sock = await asyncio.to_thread(socket_in, self.pid, family)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (self.target, self.port))
            app_r, app_w = await asyncio.open_connection(sock=sock)
        except OSError:
            client_w.close()
            return
        both = [
            asyncio.create_task(_pipe(client_r, app_w)),
            asyncio.create_task(_pipe(app_r, client_w)),
        ]
        self._tasks.update(both)
        await asyncio.gather(*both)
        self._tasks.difference_update(both)

    async def close(self) -> None:
        """Drop every relayed connection and stop listening."""
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
