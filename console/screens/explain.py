"""The explain pane: what would be sent first, then the answer as it streams in.

The call runs as an app-level async worker (group ``llm-<run>``), and its progress lives in
an :class:`ExplainState` kept per app and run: the pane can be left and re-entered while
the model is still answering, and the console never waits on it.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

if TYPE_CHECKING:
    from console.explain.explainer import ExplainResult
    from console.explain.session import ExplainPreview

REDRAW_INTERVAL = 0.05  # at most 20 redraws a second while an answer streams in
LABELS = ("action", "reason", "guide", "inference")


@dataclass
class ExplainState:
    """One run's explanation in progress (shared by every pane opened on the run)."""

    run_id: str
    preview: ExplainPreview | None = None
    problem: str | None = None  # why there is nothing to explain
    status: str = "loading"  # loading, preview, asking, done
    partial: dict[str, str] = field(default_factory=dict)
    result: ExplainResult | None = None
    call: str = ""  # model, tokens and cost of the call
    version: int = 0

    def touch(self) -> None:
        """Mark the state changed (panes redraw on their next tick)."""
        self.version += 1


_STATES: weakref.WeakKeyDictionary[App[Any], dict[str, ExplainState]] = (
    weakref.WeakKeyDictionary()
)


def explain_state(app: App[Any], run_id: str) -> ExplainState:
    """The state of ``run_id``'s explanation in ``app`` (created on first use)."""
    return _STATES.setdefault(app, {}).setdefault(run_id, ExplainState(run_id))


def render_preview(preview: ExplainPreview) -> RenderableType:
    """What would be sent: exception, app frames with signatures, operation, redactions."""
    prepared = preview.prepared
    prompt = prepared.prompt
    parts: list[RenderableType] = [
        Text.assemble(("exception  ", "bold"), (prompt.exception or "-", "red")),
        Text.assemble(("message    ", "bold"), prompt.error_message or "-"),
    ]
    frames = Table(box=None, show_header=False, padding=(0, 1, 0, 0))
    frames.add_column(style="cyan")
    frames.add_column()
    for frame in prepared.app_frames:
        where = f"{frame.file}:{frame.line}" if frame.file else ""
        frames.add_row(Text(frame.name), Text(f"{where} {frame.signature or ''}".strip()))
    parts.append(Text("app frames", style="bold") if prepared.app_frames
                 else Text("app frames -", style="bold"))
    if prepared.app_frames:
        parts.append(frames)
    if prepared.operation is not None:
        op = prepared.operation
        parts.append(Text.assemble(("operation  ", "bold"), f"{op.method} {op.path} ",
                                   (op.summary or "", "dim")))
    else:
        parts.append(Text.assemble(("operation  ", "bold"), (prompt.service or "-", "dim"),
                                   (" (no OpenAPI operation: service)", "dim")))
    fixed = f"; fixed by {preview.fixed_by}" if preview.fixed_by else "; not fixed yet"
    parts.append(Text.assemble(("redactions ", "bold"), str(prepared.redactions)))
    parts.append(Text.assemble(("fingerprint ", "bold"), preview.fingerprint[:16],
                               f" · {preview.same_fingerprint} run(s){fixed}"))
    return Group(*parts)


def render_answer(state: ExplainState) -> RenderableType:
    """The answer so far: the four fields, confidence, source, model, tokens and cost."""
    result = state.result
    if state.status == "asking" and result is None:
        fields = state.partial
        head = Text("asking the model… (esc leaves; the answer keeps coming)", style="yellow")
    elif result is not None and result.explanation is not None:
        fields = result.explanation.model_dump()
        head = Text.assemble(("source ", "bold"), (result.source, "green"),
                             f"  {result.model or ''}  {state.call}".rstrip(),
                             f"  confidence {result.explanation.confidence:.2f}")
    elif result is not None:
        return Text.assemble(("source ", "bold"), ("unavailable", "red"),
                             f" — {result.error or 'no answer'}  (o: offline answer)")
    else:
        return Text("e or enter: send · o: offline answer · f: fresh (ignore the stored one)",
                    style="dim")
    table = Table(box=None, show_header=False, padding=(0, 1, 0, 0), expand=True)
    table.add_column(style="bold", width=10, no_wrap=True)
    table.add_column(ratio=1)
    for label in LABELS:
        table.add_row(label, Text(str(fields.get(label, "")))) # plain text, never markup
    return Group(head, table)


class ExplainScreen(Screen[None]):
    """Explain one run's failure (see the module docstring)."""

    DEFAULT_CSS = """
    ExplainScreen #explain { border: round $primary-darken-2; padding: 0 1; }
    ExplainScreen #explain-answer { margin-top: 1; }
    """

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="explain_back"),
        Binding("e,enter", "send", "Send", id="explain_send", tooltip="ask the model (or offline)"),
        Binding("o", "offline", "Offline", id="explain_offline", tooltip="the offline triage"),
        Binding("f", "fresh", "Fresh", id="explain_fresh", tooltip="ask again, ignoring the cache"),
        Binding("y", "copy", "Copy", id="explain_copy", tooltip="copy as Markdown (OSC 52)"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self._drawn = -1

    @property
    def state(self) -> ExplainState:
        """This run's explanation state."""
        return explain_state(self.app, self.run_id)

    @property
    def lang(self) -> str:
        """The answer language (``[explain] lang`` / ``VERDICT_EXPLAIN_LANG``)."""
        return str(self.app.settings.explain.lang)  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="explain"):
            yield Static(Text(f"preparing run {self.run_id}…", style="dim"), id="explain-preview")
            yield Static("", id="explain-answer")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#explain").border_title = f"explain {self.run_id}"
        if self.state.status == "loading" and self.state.preview is None:
            self.load_preview()
        self.set_interval(REDRAW_INTERVAL, self._redraw)
        self._redraw()

    @work(thread=True, group="explain-preview", exclusive=True, exit_on_error=False)
    def load_preview(self) -> None:
        """Prepare what would be sent, off the loop."""
        from console.errors import UsageError
        from console.explain.session import load_preview

        try:
            preview = load_preview(self.app.read_db, self.app.settings,  # type: ignore[attr-defined]
                                   self.run_id, self.lang)
        except UsageError as exc:
            self.app.call_from_thread(self._set, problem=str(exc))
            return
        self.app.call_from_thread(self._set, preview=preview)

    def _set(self, *, preview: ExplainPreview | None = None, problem: str | None = None) -> None:
        state = self.state
        state.preview, state.problem = preview, problem
        state.status = "preview"
        if preview is not None and preview.cached is not None and state.result is None:
            state.result = preview.cached  # the stored answer shows at once
            state.status = "done"
        state.touch()

    def _redraw(self) -> None:
        state = self.state
        if state.version == self._drawn:
            return
        self._drawn = state.version
        top = self.query_one("#explain-preview", Static)
        if state.problem:
            top.update(Text(state.problem, style="red"))
        elif state.preview is not None:
            top.update(render_preview(state.preview))
        self.query_one("#explain-answer", Static).update(render_answer(state))

    # --- actions -----------------------------------------------------------------------
    def _ready(self) -> ExplainPreview | None:
        state = self.state
        if state.preview is None:
            self.notify(state.problem or "still preparing", severity="warning")
            return None
        if state.status == "asking":
            self.notify("already asking; the answer is on its way")
            return None
        return state.preview

    def action_send(self) -> None:
        """Send what is shown: the model if one is configured, else the offline triage."""
        self._ask(fresh=False, offline=False)

    def action_fresh(self) -> None:
        """Ask again, ignoring the stored answer."""
        self._ask(fresh=True, offline=False)

    def action_offline(self) -> None:
        """The offline triage's answer."""
        self._ask(fresh=True, offline=True)

    def _ask(self, *, fresh: bool, offline: bool) -> None:
        preview = self._ready()
        if preview is None:
            return
        state = self.state
        answered = state.result is not None and state.result.source != "unavailable"
        if not fresh and answered:
            self.notify("answered already: f asks afresh, o asks the offline triage")
            return
        if not fresh and preview.cached is not None:
            state.result, state.status = preview.cached, "done"
            state.touch()
            return
        state.status, state.partial, state.result, state.call = "asking", {}, None, ""
        state.touch()
        use_llm = preview.llm_configured and not offline
        self.app.run_worker(
            _answer(self.app, state, preview, self.lang, use_llm),
            group=f"llm-{self.run_id}", exclusive=True, exit_on_error=False,
            description=f"explain {self.run_id}",
        )

    def action_copy(self) -> None:
        """Copy the explanation as Markdown to the terminal's clipboard (OSC 52)."""
        from console.explain.session import to_markdown

        state = self.state
        result = state.result or (state.preview.base if state.preview else None)
        if result is None:
            self.notify("nothing to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(to_markdown(result))
        self.notify("copied as Markdown")


async def _answer(
    app: App[Any], state: ExplainState, preview: ExplainPreview, lang: str, use_llm: bool
) -> None:
    """Fill ``state`` with the answer (runs on the app loop; touches no widget)."""
    from console.explain.session import offline_answer, stream_answer
    from storage.db import Database

    db = await asyncio.to_thread(Database, app.options.db_path)  # type: ignore[attr-defined]
    try:
        if use_llm:

            def on_text(fields: dict[str, str]) -> None:
                state.partial = fields
                state.touch()

            result, _ = await stream_answer(db, app.settings, preview, lang, on_text)  # type: ignore[attr-defined]
            state.call = await asyncio.to_thread(_call_line, db, preview.data.run_id)
        else:
            result = await asyncio.to_thread(offline_answer, db, preview, lang)
        state.result = result
    except Exception as exc:  # noqa: BLE001 - shown in the pane, the console stays up
        from console.explain.explainer import ExplainResult

        state.result = ExplainResult(source="unavailable", error=f"{type(exc).__name__}: {exc}")
    finally:
        state.status = "done"
        state.touch()
        await asyncio.to_thread(db.close)


def _call_line(db: Any, run_id: str | None) -> str:
    """Tokens and cost of the latest explain call for ``run_id``, from the ledger."""
    from storage.history import latest_call

    row = latest_call(db, "explain", run_id)
    if row is None:
        return ""
    return f"{row['input_tokens']}→{row['output_tokens']} tokens ${row['cost_usd']:.4f}"
