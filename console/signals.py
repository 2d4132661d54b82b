"""Stop cleanly on SIGINT and SIGTERM: set an event or cancel a coroutine, then clean up.

Handlers are installed on the running loop explicitly, so a process started in the
background (where SIGINT is inherited as ignored) or stopped with ``kill`` still ends its
work through the normal cleanup path and never leaves sandboxed processes behind.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """SIGTERM arrived outside a block that handles it: end the command (status 128+sig)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


def end_on_sigterm() -> None:
    """Make SIGTERM end the command like Ctrl-C does, where no :class:`StopOnSignals`
    block handles it (while starting up, or while printing the result): exit 143, never
    the default silent death that skips cleanup."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_stopped)


class StopOnSignals:
    """Inside the block, SIGINT/SIGTERM set ``stop`` (and are remembered in ``received``)."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.received: int | None = None
        self._installed: list[int] = []
        self._previous: dict[int, object] = {}

    def _on_signal(self, sig: int) -> None:
        self.received = self.received or sig
        self.stop.set()

    def __enter__(self) -> StopOnSignals:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            try:
                previous = signal.getsignal(sig)
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._installed.append(sig)
                self._previous[sig] = previous
            except (NotImplementedError, RuntimeError):
                pass  # not the main thread, or no signals on this platform
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
            previous = self._previous.get(sig)
            if callable(previous) or previous in (signal.SIG_DFL, signal.SIG_IGN):
                signal.signal(sig, previous)  # type: ignore[arg-type]  # what was there before


async def run_until_signal(work: Awaitable[T]) -> tuple[T | None, int | None]:
    """Run ``work``; on SIGINT/SIGTERM cancel it and wait for its cleanup.

    Returns ``(result, None)`` when it finished, ``(None, signal_number)`` when stopped.
    """
    task = asyncio.ensure_future(work)
    stop = asyncio.Event()
    with StopOnSignals(stop) as signals:
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if task.done():
            return task.result(), None
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return None, signals.received
