"""The Textual console: hosts an engine and shows what it does.

The app owns one :class:`~console.engine.Engine` on its own event loop (so ``r`` and ``R``
queue work exactly as ``verdict rerun`` does), a :class:`~console.engine.LiveState` fed by
the engine's events, and a second, read-only connection to the database that thread
workers poll for what other processes record.  Events are not drawn as they arrive: they
are gathered and applied to the widgets at most 20 times a second.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from console.engine.live import CellState, Changes, LiveState
from console.model import Event, LogBatch, LogLine
from console.queue.base import QueueUrl
from console.settings import Settings

if TYPE_CHECKING:
    from console.engine import Engine
    from console.engine.host import EngineHost
    from console.matrix import Matrix
    from storage.db import Database

log = logging.getLogger(__name__)

T = TypeVar("T")

SWITCH_INTERVAL = 0.001  # seconds a thread may hold the interpreter before handing it over
MAIN_THREAD = threading.main_thread()
DB_OPEN_WAIT = 30.0  # seconds a worker waits for the read connection at start
UI_INTERVAL = 0.05  # seconds between redraws of gathered events (20 per second)
DB_POLL_INTERVAL = 1.0  # seconds between looks at what other processes recorded


@dataclass
class ConsoleOptions:
    """How the console was started."""

    settings: Settings
    db_path: Path
    matrix: Matrix | None = None
    queue_url: QueueUrl | None = None
    slots: int | None = None
    run_engine: bool = True  # False: a read-only view (snapshots, tests)
    clock: Callable[[], float] = time.time


class VerdictApp(App[int]):
    """The Verdict operations console."""

    TITLE = "Verdict Console"
    CSS_PATH = "app.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit_console", "Quit", id="quit", priority=True),
        Binding("question_mark,f1", "help", "Help", id="help"),
    ]

    class CellsRead(Message):
        """Cells read from the database by a thread worker."""

        def __init__(self, cells: list[CellState]) -> None:
            super().__init__()
            self.cells = cells

    class Redraw(Message):
        """Gathered changes to draw (posted by the redraw timer)."""

        def __init__(self, changes: Changes, logs: dict[str, list[LogLine]]) -> None:
            super().__init__()
            self.changes = changes
            self.logs = logs

    def __init__(self, options: ConsoleOptions) -> None:
        super().__init__()
        self.options = options
        self.settings = options.settings
        self.live = LiveState()
        self.host: EngineHost | None = None
        self.engine_error: str = ""
        self._read_db: Database | None = None
        self._read_db_open = threading.Event()
        self._changes = Changes()
        self._logs: dict[str, list[LogLine]] = {}
        self._watched_logs: set[str] = set()
        self.fan_out_jobs: set[str] = set()
        self.ready = asyncio.Event()
        if self.settings.ui.keys:
            self.set_keymap(dict(self.settings.ui.keys))

    # --- start and stop ---------------------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        from console.screens.dashboard import Dashboard

        return Dashboard()

    def on_mount(self) -> None:
        # The engine's thread can be busy with a log flood; hand the interpreter over more
        # often so a key press waits at most about a millisecond for its turn.
        sys.setswitchinterval(SWITCH_INTERVAL)
        # Nothing is awaited here: the first frame is drawn at once, data follows.
        self.set_interval(UI_INTERVAL, self._send_gathered)
        self.call_after_refresh(self.open_database)  # after the first frame is on screen

    @work(group="open", exclusive=True, exit_on_error=False, description="open database")
    async def open_database(self) -> None:
        """Open the read connection, show what is recorded, then start the engine."""
        self._read_db = await asyncio.to_thread(self._open_read_db)
        self._read_db_open.set()
        cells = await asyncio.to_thread(self._read_cells)
        self._take(self.live.seed(cells))
        self.set_interval(DB_POLL_INTERVAL, self.poll_database)
        if self.options.run_engine:
            self.start_engine()
        else:
            self.ready.set()

    @property
    def read_db(self) -> Database | None:
        """The read-only connection for thread workers.

        It is opened just after the first frame; a worker asking for it before then waits
        (a little), the screen's own thread never does.
        """
        if not self._read_db_open.is_set() and threading.current_thread() is not MAIN_THREAD:
            self._read_db_open.wait(DB_OPEN_WAIT)
        return self._read_db

    def _open_read_db(self) -> Database:
        from storage.db import Database

        return Database(self.options.db_path)

    @work(group="engine", exclusive=True, exit_on_error=False, description="engine")
    async def start_engine(self) -> None:
        """Start the engine on its own thread; with a matrix, queue it."""
        from console.engine import Engine
        from console.engine.host import EngineHost
        from storage.db import Database

        options = self.options

        def make_engine() -> Engine:
            from console.sandbox.namespaces import protect_harness
            from console.sandbox.sweep import sweep_orphans

            protect_harness()  # the projects it runs cannot read its environment
            db = Database(options.db_path)
            sweep_orphans(db)  # what a killed verdict process left behind
            return Engine(self.settings, db, queue_url=options.queue_url, slots=options.slots)

        host = EngineHost(make_engine)
        try:
            await host.start()
            host.subscribe(self._on_event)
            self.host = host
            if options.matrix is not None:
                matrix = options.matrix
                await host.call(lambda engine: engine.submit_matrix(matrix))
        except Exception as exc:  # noqa: BLE001 - shown in the queue line, console stays up
            self.engine_error = f"engine: {exc}"
            log.exception("the engine did not start")
        finally:
            self.ready.set()

    @property
    def engine(self) -> Engine | None:
        """The running engine (read its state; act on it through :meth:`engine_call`)."""
        return self.host.engine if self.host is not None else None

    async def engine_call(self, work: Callable[[Engine], Coroutine[Any, Any, T]]) -> T:
        """Run ``work(engine)`` on the engine's thread and return its result here.

        Raises:
            RuntimeError: no engine is running in this console.
        """
        if self.host is None:
            raise RuntimeError("no engine is running in this console")
        return await self.host.call(work)

    def action_quit_console(self) -> None:
        """Quit; asks once while jobs run.  Queued work stays queued."""
        counts = self.live.counts()
        if (counts["running"] or counts["queued"]) and self.engine is not None:
            from console.screens.confirm import ConfirmQuit

            self.push_screen(ConfirmQuit(counts["running"], counts["queued"]), self._quit_if)
            return
        self._quit_if(True)

    def _quit_if(self, confirmed: bool | None) -> None:
        if confirmed:
            self.run_worker(self._shutdown_and_exit(), group="quit", exclusive=True)

    async def _shutdown_and_exit(self) -> None:
        await self.shutdown()
        self.exit(0)

    async def shutdown(self) -> None:
        """Stop the engine: sandboxes end, running jobs go back to the queue."""
        host, self.host = self.host, None
        if host is not None:
            await host.stop(grace=0.0)
            if host.engine is not None:
                await asyncio.to_thread(host.engine.db.close)
        if self._read_db is not None:
            db, self._read_db = self._read_db, None
            await asyncio.to_thread(db.close)

    def action_help(self) -> None:
        """Show every key."""
        from console.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every action of the app and of the current screen, for the command palette."""
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for binding in [*self.BINDINGS, *getattr(screen, "BINDINGS", [])]:
            if isinstance(binding, Binding) and binding.description and binding.id:
                if binding.id in seen:
                    continue
                seen.add(binding.id)
                target = self if binding in self.BINDINGS else screen
                yield SystemCommand(
                    binding.description,
                    binding.tooltip or binding.description,
                    _runner(target, binding.action),
                )

    # --- events in, changes out --------------------------------------------------------------
    def watch_log(self, run_id: str | None) -> None:
        """Gather log batches of ``run_id`` only (the one the log pane shows)."""
        self._watched_logs = {run_id} if run_id else set()
        self._logs = {k: v for k, v in self._logs.items() if k in self._watched_logs}

    def _on_event(self, event: Event) -> None:
        # Called on this loop by the engine: gather only, draw later.
        if isinstance(event, LogBatch):
            if event.run_id in self._watched_logs:
                self._logs.setdefault(event.run_id, []).extend(event.lines)
            return
        self._changes.merge(self.live.apply(event))

    def _take(self, changes: Changes) -> None:
        self._changes.merge(changes)

    def _send_gathered(self) -> None:
        if not self._changes and not self._logs:
            return
        changes, self._changes = self._changes, Changes()
        logs, self._logs = self._logs, {}
        self.screen.post_message(self.Redraw(changes, logs))
        for screen in self.screen_stack:
            if screen is not self.screen:
                screen.post_message(self.Redraw(Changes(changes.cells, changes.sandboxes), {}))

    @work(thread=True, group="poll", exclusive=True, exit_on_error=False, description="poll db")
    def poll_database(self) -> None:
        """Read what other processes recorded (a ``verdict run`` in another terminal)."""
        if self.read_db is None:
            return
        self.post_message(self.CellsRead(self._read_cells()))

    def _read_cells(self) -> list[CellState]:
        from console.engine.views import matrix_state

        if self.read_db is None:
            return []
        matrix = self.options.matrix
        return matrix_state(self.read_db, matrix.combinations() if matrix else None)

    def on_verdict_app_cells_read(self, message: CellsRead) -> None:
        self._take(self.live.seed(message.cells))


def _runner(target: Any, action: str) -> Callable[[], Any]:
    async def run() -> None:
        await target.run_action(action)

    return run
