"""An explanation as the console's explain pane drives it, step by step: first a preview of
what would be sent (nothing leaves the machine), then an answer that streams in from the
model, or the offline triage, or the stored one for the same fingerprint.

:func:`load_preview` and :func:`offline_answer` block (SQLite, source files): call them
from a thread.  :func:`stream_answer` is async and never blocks its loop.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from console.explain.explainer import (
    ExplainResult,
    Prepared,
    _operation_phrase,
    _store,
    as_cached,
    input_fingerprint,
    parse_answer,
    prepare,
)
from console.explain.inputs import FailureInput, from_run
from console.explain.offline import TRIAGE_VERSION, TriageInput, triage
from console.explain.prompt import build_messages, response_format
from console.explain.redact import Redactor
from console.model import Explanation

if TYPE_CHECKING:
    from console.llm.factory import ChatModelFactory
    from console.settings import Settings
    from storage.db import Database
    from storage.explanations import StoredExplanation

FIELDS = ("action", "reason", "guide", "inference")


@dataclass
class ExplainPreview:
    """What would be sent for one run, and what is already known about its fingerprint."""

    data: FailureInput
    prepared: Prepared
    fingerprint: str
    same_fingerprint: int  # runs that share it (this one included)
    fixed_by: str | None  # a later run that passed where this fingerprint failed
    cached: ExplainResult | None
    llm_configured: bool

    @property
    def base(self) -> ExplainResult:
        """The result before any answer: exception, frames, operation, redactions."""
        prepared = self.prepared
        return ExplainResult(
            exception=prepared.prompt.exception if prepared.failure else None,
            message=prepared.prompt.error_message,
            app_frames=prepared.app_frames,
            operation=prepared.operation,
            source="offline",
            redactions=prepared.redactions,
            fingerprint=self.fingerprint,
            run_id=self.data.run_id,
        )


def _cached(db: Database, key: str, lang: str) -> StoredExplanation | None:
    from storage.explanations import find_cached

    found = find_cached(db, key, lang=lang, sources=("llm", "offline"))
    if found is not None and found.source == "offline" and found.prompt_version != TRIAGE_VERSION:
        found = find_cached(db, key, lang=lang, sources=("llm",))  # an older triage's words
    return found


def load_preview(db: Database, settings: Settings, run_id: str, lang: str) -> ExplainPreview:
    """Prepare the explanation of a recorded run without sending anything.

    Raises:
        UsageError: no such run, or it passed, or it has no verdict yet.
    """
    from console.engine.history import fingerprint_timeline
    from console.llm.factory import ChatModelFactory
    from storage.runs import count_with_fingerprint

    data = from_run(db, run_id)
    prepared = prepare(data, Redactor.from_settings(settings),
                       max_chars=settings.explain.max_input_chars)
    key = input_fingerprint(data, prepared.operation)
    timeline = fingerprint_timeline(db, key)
    fix = next((e for e in timeline.events if e.kind == "fixed"), None)
    preview = ExplainPreview(
        data=data,
        prepared=prepared,
        fingerprint=key,
        same_fingerprint=count_with_fingerprint(db, key),
        fixed_by=fix.run_id if fix else None,
        cached=None,
        llm_configured=ChatModelFactory(settings, db).is_configured(),
    )
    stored = _cached(db, key, lang)
    if stored is not None:
        preview.cached = as_cached(preview.base, stored)
    return preview


def offline_answer(db: Database, preview: ExplainPreview, lang: str) -> ExplainResult:
    """The offline triage's answer, stored like any other."""
    prepared = preview.prepared
    explanation, rule = triage(
        TriageInput(
            failure=prepared.failure,
            log=prepared.prompt.log_excerpt,
            exit_class=preview.data.exit_class,
            verdict=preview.data.verdict,
            operation=_operation_phrase(prepared.operation),
            service=prepared.prompt.service,
            reason=preview.data.reason,
            project_root=preview.data.project_root,
            project_files=preview.data.project_files,
        ),
        lang,
    )
    result = preview.base.model_copy(update={"explanation": explanation, "rule": rule})
    result.explanation_id = _store(db, preview.data, prepared, result, lang)
    return result


# --- streaming ----------------------------------------------------------------------------

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def partial_fields(text: str) -> dict[str, str]:
    """The string fields of a JSON object that is still arriving, as far as they go.

    ``{"action": "Open the po`` gives ``{"action": "Open the po"}``: the first words are
    shown before the object is complete.
    """
    found: dict[str, str] = {}
    for name in FIELDS:
        match = re.search(r'"' + name + r'"\s*:\s*"', text)
        if not match:
            continue
        out: list[str] = []
        i = match.end()
        while i < len(text):
            char = text[i]
            if char == '"':
                break
            if char == "\\":
                if i + 1 >= len(text):
                    break
                code = text[i + 1]
                if code == "u":
                    digits = text[i + 2 : i + 6]
                    if len(digits) < 4:
                        break
                    out.append(chr(int(digits, 16)) if re.fullmatch(r"[0-9a-fA-F]{4}", digits)
                               else "")
                    i += 6
                    continue
                out.append(_ESCAPES.get(code, code))
                i += 2
                continue
            out.append(char)
            i += 1
        found[name] = "".join(out)
    return found


@dataclass
class StreamOutcome:
    """How a streamed call ended, besides its result."""

    first_token_s: float | None
    chunks: int


async def stream_answer(
    db: Database,
    settings: Settings,
    preview: ExplainPreview,
    lang: str,
    on_text: Callable[[dict[str, str]], None],
    *,
    factory: ChatModelFactory | None = None,
) -> tuple[ExplainResult, StreamOutcome]:
    """Ask the model, streaming: ``on_text`` gets the fields as far as they have arrived.

    A silent endpoint ends the call as ``unavailable`` after ``settings.llm.timeout``
    seconds without a chunk (the first included).  The result is stored (ledger feature
    ``explain``).  Never raises for endpoint faults.
    """
    from langchain_core.messages import HumanMessage, SystemMessage

    from console.llm.context import llm_context

    if factory is None:
        from console.llm.factory import ChatModelFactory

        factory = ChatModelFactory(settings, db)
    prepared = preview.prepared
    wait = float(settings.llm.timeout)
    started = time.monotonic()
    outcome = StreamOutcome(None, 0)
    text = ""
    error: str | None = None
    explanation: Explanation | None = None
    name: str | None = None
    with llm_context(feature="explain", sandbox=preview.data.run_id):
        try:
            model = factory.create()
            name = getattr(model, "model_name", None)
            bound = model.bind(response_format=response_format())
            (_, system), _ = build_messages(prepared.prompt, lang)
            stream = bound.astream([SystemMessage(system), HumanMessage(prepared.rendered)])
            iterator = stream.__aiter__()
            try:
                while True:
                    try:
                        chunk = await asyncio.wait_for(iterator.__anext__(), wait)
                    except StopAsyncIteration:
                        break
                    piece = _chunk_text(chunk.content)
                    if not piece:
                        continue
                    if outcome.first_token_s is None:
                        outcome.first_token_s = time.monotonic() - started
                    outcome.chunks += 1
                    text += piece
                    on_text(partial_fields(text))
            finally:
                await _close(iterator)
            explanation = parse_answer(text)
        except TimeoutError:
            error = f"the model sent nothing for {wait:g} s (timeout)"
        except ValueError as exc:
            error = f"invalid answer: {exc}"
        except Exception as exc:  # noqa: BLE001 - any transport/API fault ends as unavailable
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            error = f"{type(exc).__name__}: {first}"[:500]
    result = preview.base.model_copy(
        update={
            "explanation": explanation,
            "source": "llm" if explanation else "unavailable",
            "error": error,
            "model": name,
        }
    )
    result.explanation_id = await asyncio.to_thread(
        _store, db, preview.data, prepared, result, lang
    )
    return result, outcome


def _chunk_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content or "")


async def _close(iterator: Any) -> None:
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        try:
            await asyncio.wait_for(closer(), 1.0)
        except (TimeoutError, RuntimeError, GeneratorExit):
            pass  # a hung stream: its connection goes with the client


# --- sharing ------------------------------------------------------------------------------


def to_markdown(result: ExplainResult) -> str:
    """The explanation as Markdown: exception, app frames, operation, the four fields, run."""
    lines = [f"### {result.exception or 'failure'}: {result.message}".rstrip(": ")]
    if result.run_id:
        lines.append(f"run `{result.run_id}` · fingerprint `{result.fingerprint or '-'}`")
    if result.app_frames:
        lines += ["", "**App frames**"]
        for frame in result.app_frames:
            where = f" ({frame.file}:{frame.line})" if frame.file else ""
            sig = f" — `{frame.signature}`" if frame.signature else ""
            lines.append(f"- `{frame.name}`{where}{sig}")
    if result.operation is not None:
        op = result.operation
        lines += ["", f"**Operation** `{op.method} {op.path}` {op.summary or ''}".rstrip()]
    answer = result.explanation
    if answer is not None:
        lines += [
            "",
            f"**Action** {answer.action}",
            f"**Reason** {answer.reason}",
            f"**Guide** {answer.guide}",
            f"**Inference** {answer.inference}",
            f"**Confidence** {answer.confidence:.2f}",
        ]
    source = result.source + (f" ({result.model})" if result.model else "")
    lines += ["", f"_source: {source}_"]
    return "\n".join(lines)

