"""An engine on a thread of its own, for a process whose main loop must never wait.

The console's loop draws the screen; the engine's loop reads sandbox pipes (tens of
thousands of lines a second in a log flood), probes ports and runs jobs.  Sharing one loop
would let a burst of output delay a key press; with :class:`EngineHost` the two loops only
meet through thread-safe hand-overs: calls go to the engine loop with
``run_coroutine_threadsafe`` and events come back with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from console.model import Event

if TYPE_CHECKING:
    from console.engine.core import Engine

T = TypeVar("T")


class EngineHost:
    """Runs ``make_engine()``'s engine on a dedicated thread and event loop."""

    def __init__(self, make_engine: Callable[[], Engine]) -> None:
        self._make_engine = make_engine
        self.engine: Engine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    async def start(self) -> Engine:
        """Start the thread and the engine; returns once the engine has started."""
        self._thread = threading.Thread(target=self._run, name="verdict-engine", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._error is not None:
            raise self._error
        assert self.engine is not None
        return self.engine

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self.engine = self._make_engine()
            loop.run_until_complete(self.engine.start())
        except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def call(self, work: Callable[[Engine], Coroutine[Any, Any, T]]) -> T:
        """Run ``work(engine)`` on the engine's loop and await its result from this loop."""
        assert self._loop is not None and self.engine is not None
        future = asyncio.run_coroutine_threadsafe(work(self.engine), self._loop)
        return await asyncio.wrap_future(future)

    def subscribe(self, callback: Callable[[Event], object]) -> None:
        """Deliver every event to ``callback`` on the calling loop (never on the engine's)."""
        assert self.engine is not None
        target = asyncio.get_running_loop()

        def forward(event: Event) -> None:
            if not target.is_closed():
                target.call_soon_threadsafe(callback, event)

        self.engine.subscribe(forward)

    async def stop(self, grace: float = 0.0) -> None:
        """Stop the engine (sandboxes end, jobs go back to the queue), then the thread."""
        if self._loop is None or self.engine is None:
            return
        engine, loop = self.engine, self._loop

        async def shutdown() -> None:
            await engine.stop(grace=grace)

        try:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(shutdown(), loop))
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                await asyncio.to_thread(self._thread.join, 30)
