"""Stop cleanly on SIGINT and SIGTERM: set an event or cancel a coroutine, then clean up.

Handlers are installed on the running loop explicitly, so a process started in the
background (where SIGINT is inherited as ignored) or stopped with ``kill`` still ends its
work through the normal cleanup path and never leaves sandboxed processes behind.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignals:
    """Inside the block, SIGINT/SIGTERM set ``stop`` (and are remembered in ``received``)."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.received: int | None = None
        self._installed: list[int] = []

    def _on_signal(self, sig: int) -> None:
        self.received = self.received or sig
        self.stop.set()

    def __enter__(self) -> StopOnSignals:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._installed.append(sig)
            except (NotImplementedError, RuntimeError):
                pass  # not the main thread, or no signals on this platform
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)


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
