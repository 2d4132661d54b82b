"""Explain a failure: app frames, API operation, signatures, redaction, then the LLM or the
offline triage; the result is stored and reused for the same fingerprint.

The pipeline up to the prompt (:func:`prepare`) is pure and fast; :func:`explain_failure`
adds the cache, the model call (validated, one repair retry, ``unavailable`` on failure)
and storage.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from console.errors import UsageError
from console.explain.inputs import FailureInput
from console.explain.offline import LANGS, TRIAGE_VERSION, TriageInput, triage
from console.explain.openapi import Operation, match_operation
from console.explain.prompt import (
    LANGUAGES,
    PROMPT_VERSION,
    FrameInput,
    PromptInput,
    build_messages,
    render_input,
    repair_message,
    response_format,
)
from console.explain.redact import Redactor
from console.explain.signatures import app_signatures
from console.fingerprint import fingerprint as failure_fingerprint
from console.model import Explanation, Failure, Frame, Verdict
from console.settings import Settings

if TYPE_CHECKING:
    from console.llm.factory import ChatModelFactory
    from storage.db import Database

Source = Literal["llm", "offline", "cached", "unavailable"]
MAX_APP_FRAMES = 12
_SERVICE_CLASS = re.compile(r"(?:Service|UseCase|Usecase|Handler|Interactor|Controller)$")
#: The answer languages: those both the offline triage and the prompt can write in.
SUPPORTED_LANGS = tuple(lang for lang in LANGS if lang in LANGUAGES)


class AppFrame(BaseModel):
    """An application frame in the result."""

    name: str
    file: str | None = None
    line: int | None = None
    signature: str | None = None


class ExplainResult(BaseModel):
    """The outcome of one explanation; ``to_json`` is the ``--json`` contract."""

    exception: str | None = None
    message: str = ""
    app_frames: list[AppFrame] = Field(default_factory=list)
    operation: Operation | None = None
    explanation: Explanation | None = None
    source: Source
    redactions: int = 0
    explanation_id: int | None = None
    error: str | None = None
    model: str | None = None
    fingerprint: str | None = None
    run_id: str | None = None
    rule: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``verdict explain --json`` prints."""
        return {
            "exception": self.exception,
            "message": self.message,
            "app_frames": [f.model_dump() for f in self.app_frames],
            "operation": self.operation.to_json() if self.operation else None,
            "explanation": self.explanation.model_dump() if self.explanation else None,
            "source": self.source,
            "redactions": self.redactions,
            "explanation_id": self.explanation_id,
            "error": self.error,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "run_id": self.run_id,
        }


class _Answer(BaseModel):
    """The model's answer, validated strictly."""

    action: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    guide: str = Field(min_length=1)
    inference: str = Field(min_length=1)
    confidence: float = Field(ge=0.0, le=1.0)

    @field_validator("action", "reason", "guide", "inference")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


@dataclass
class Prepared:
    """The offline pipeline's output: what would be sent, already redacted."""

    failure: Failure | None
    prompt: PromptInput
    app_frames: list[AppFrame]
    operation: Operation | None
    rendered: str
    redactions: int


def as_cached(base: Any, stored: Any) -> Any:
    """``base`` (an outcome without an answer) carrying a stored explanation as ``cached``."""
    return base.model_copy(
        update={
            "explanation": Explanation(
                action=stored.action,
                reason=stored.reason,
                guide=stored.guide,
                inference=stored.inference,
                confidence=stored.confidence if stored.confidence is not None else 0.5,
            ),
            "source": "cached",
            "explanation_id": stored.id,
            "model": stored.model,
            "rule": stored.rule,
        }
    )


def _service_class(frames: list[Frame]) -> str | None:
    names = [f.name.rsplit(".", 1)[0] for f in frames if "." in f.name]
    for name in names:
        if _SERVICE_CLASS.search(name.split("$", 1)[0]):
            return name.split("$", 1)[0]
    return names[0].split("$", 1)[0] if names else None


# --- the offline pipeline ----------------------------------------------------------------


def prepare(data: FailureInput, redactor: Redactor, *, max_chars: int = 24_000) -> Prepared:
    """App frames, operation, signatures and redaction: everything before the model call."""
    failure = data.failure
    frames = failure.app_frames()[:MAX_APP_FRAMES] if failure else []
    signatures = app_signatures(frames, data.project_root)
    operation: Operation | None = None
    if data.spec is not None and data.method and data.url:
        operation = match_operation(data.spec, data.method, data.url)
        if operation is not None and not operation.summary:
            operation.summary = _service_class(frames)
    count = 0

    def clean(text: str | None) -> str:
        nonlocal count
        if not text:
            return ""
        result = redactor.redact(text)
        count += result.count
        return result.text

    app_frames = [
        AppFrame(name=f.name, file=clean(f.file) or None, line=f.line, signature=clean(sig) or None)
        for f, sig in zip(frames, signatures, strict=True)
    ]
    prompt = PromptInput(
        service=clean(data.service) or None,
        http_method=data.method.upper() if data.method else None,
        request_url=clean(data.url) or None,
        operation=operation.to_json() if operation else None,
        exception=clean(failure.exception) if failure else (data.verdict or "unknown"),
        error_message=clean(failure.message) if failure else clean(data.reason),
        causes=[clean(c) for c in failure.causes] if failure else [],
        app_frames=[FrameInput(**f.model_dump()) for f in app_frames],
        verdict=data.verdict,
        exit_class=data.exit_class,
    )
    # The log gets what is left of the budget; its tail is kept.
    budget = max(1000, max_chars - len(render_input(prompt)))
    log = data.log[-budget:]
    prompt.log_excerpt = clean(log)
    rendered = render_input(prompt)
    final = redactor.redact(rendered)  # the safety net over the whole message
    count += final.count
    if failure is not None:  # what is stored and triaged offline is redacted too
        failure = failure.model_copy(
            update={"message": prompt.error_message, "causes": prompt.causes}
        )
    return Prepared(failure, prompt, app_frames, operation, final.text, count)


def input_fingerprint(data: FailureInput, operation: Operation | None) -> str:
    """The run's fingerprint, or one computed from the failure and the operation."""
    if data.fingerprint:
        return data.fingerprint
    extra = f"{operation.method} {operation.path}" if operation else "trace"
    verdict = Verdict(data.verdict) if data.verdict else Verdict.CRASHED
    return failure_fingerprint(verdict, data.failure, extra=extra)


# --- the model ---------------------------------------------------------------------------


def parse_answer(content: Any) -> Explanation:
    """Validate the model's reply text as an explanation.

    Raises:
        ValueError: not JSON, or not the expected object.
    """
    if isinstance(content, list):
        content = "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in content
        )
    text = str(content or "").strip()
    fenced = re.match(r"^```(?:json)?\s*(.*?)\s*```$", text, re.S)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")
    try:
        answer = _Answer.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from exc
    return Explanation(**answer.model_dump())


async def ask_model(
    factory: ChatModelFactory, prepared: Prepared, *, lang: str, deadline: float
) -> tuple[Explanation | None, str | None, str | None]:
    """(explanation, error, model name): one call, one repair retry on an invalid answer."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    try:
        model = factory.create()
        name = getattr(model, "model_name", None)
        bound = model.bind(response_format=response_format())
        (_, system), _ = build_messages(prepared.prompt, lang)
        messages: list[Any] = [SystemMessage(system), HumanMessage(prepared.rendered)]
        problem = ""
        for attempt in range(2):
            reply = await asyncio.wait_for(bound.ainvoke(messages), deadline)
            try:
                return parse_answer(reply.content), None, name
            except ValueError as exc:
                problem = str(exc)
                if attempt == 0:
                    messages += [
                        AIMessage(str(reply.content)),
                        HumanMessage(repair_message(problem)),
                    ]
        return None, f"invalid answer after one retry: {problem}", name
    except TimeoutError:
        return None, f"the model did not answer within {deadline:g} s", None
    except Exception as exc:  # any transport/API/config failure ends as "unavailable"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        why = f"{type(exc).__name__}: {message}"
        if isinstance(exc, IndexError | KeyError | TypeError | AttributeError):
            # The client choked on the completion itself (no choices, no message).
            why = f"the endpoint returned a malformed completion ({why})"
        return None, why[:500], None


# --- the whole thing ---------------------------------------------------------------------


def _store(
    database: Database,
    data: FailureInput,
    prepared: Prepared,
    result: ExplainResult,
    lang: str,
) -> int:
    from storage.explanations import StoredExplanation, insert_explanation

    explanation = result.explanation
    return insert_explanation(
        database,
        StoredExplanation(
            run_id=data.run_id,
            fingerprint=result.fingerprint,
            source=result.source,
            model=result.model,
            prompt_version=TRIAGE_VERSION if result.source == "offline" else PROMPT_VERSION,
            lang=lang,
            exception=prepared.prompt.exception,
            message=prepared.prompt.error_message,
            action=explanation.action if explanation else "",
            reason=explanation.reason if explanation else "",
            guide=explanation.guide if explanation else "",
            inference=explanation.inference if explanation else "",
            confidence=explanation.confidence if explanation else None,
            rule=result.rule,
            error=result.error,
            redactions=result.redactions,
            app_frames=[f.model_dump() for f in result.app_frames],
            operation=result.operation.to_json() if result.operation else None,
            input=prepared.rendered,
        ),
    )


async def explain_failure(
    failure_input: FailureInput,
    *,
    settings: Settings,
    db: Database,
    offline: bool = False,
    fresh: bool = False,
    lang: str = "en",
    factory: ChatModelFactory | None = None,
) -> ExplainResult:
    """Explain one failure; stores and returns the result (never raises for LLM faults).

    Args:
        failure_input: see :mod:`console.explain.inputs`.
        settings: LLM endpoint, secrets to redact, input budget.
        db: where explanations (and the LLM ledger) are stored.
        offline: use the offline triage even when an LLM is configured.
        fresh: ignore a stored explanation of the same fingerprint.
        lang: ``en`` or ``ko``: the language of the answer, from the model or the triage.
        factory: the chat-model factory (default: one built from ``settings`` and ``db``).

    Raises:
        UsageError: ``lang`` is not a supported language (checked before any work).
    """
    if lang not in SUPPORTED_LANGS:
        raise UsageError(
            f"lang: unknown language {lang!r}; use one of {', '.join(SUPPORTED_LANGS)}"
        )

    from storage.explanations import find_cached

    redactor = Redactor.from_settings(settings)
    prepared = await asyncio.to_thread(
        prepare, failure_input, redactor, max_chars=settings.explain.max_input_chars
    )
    key = input_fingerprint(failure_input, prepared.operation)
    base = ExplainResult(
        exception=prepared.prompt.exception if prepared.failure else None,
        message=prepared.prompt.error_message,
        app_frames=prepared.app_frames,
        operation=prepared.operation,
        source="offline",
        redactions=prepared.redactions,
        fingerprint=key,
        run_id=failure_input.run_id,
    )
    if factory is None:
        from console.llm.factory import ChatModelFactory

        factory = ChatModelFactory(settings, db)
    use_llm = not offline and factory.is_configured()
    if not fresh:
        sources = ("llm",) if use_llm else ("llm", "offline")
        cached = find_cached(db, key, lang=lang, sources=sources)
        if (
            cached is not None
            and cached.source == "offline"
            and cached.prompt_version != TRIAGE_VERSION
        ):  # an older triage's answer (v1 wrote English even under lang=ko): not reused
            cached = find_cached(db, key, lang=lang, sources=("llm",))
        if cached is not None:
            return as_cached(base, cached)
    if use_llm:
        from console.llm.context import llm_context

        llm = settings.llm
        guard = llm.timeout * (llm.max_retries + 1) + 5.0
        with llm_context(feature="explain", sandbox=failure_input.run_id):
            explanation, error, model = await ask_model(
                factory, prepared, lang=lang, deadline=guard
            )
        source: Source = "llm" if explanation else "unavailable"
        result = base.model_copy(
            update={"explanation": explanation, "source": source, "error": error, "model": model}
        )
    else:
        explanation, rule = triage(
            TriageInput(
                failure=prepared.failure,
                log=prepared.prompt.log_excerpt,
                exit_class=failure_input.exit_class,
                verdict=failure_input.verdict,
                operation=_operation_phrase(prepared.operation),
                service=prepared.prompt.service,
                reason=failure_input.reason,
                project_root=failure_input.project_root,
                project_files=failure_input.project_files,
            ),
            lang,
        )
        result = base.model_copy(update={"explanation": explanation, "rule": rule})
    result.explanation_id = await asyncio.to_thread(
        _store, db, failure_input, prepared, result, lang
    )
    return result


def _operation_phrase(operation: Operation | None) -> str | None:
    if operation is None:
        return None
    summary = f" ({operation.summary})" if operation.summary else ""
    return f"{operation.method} {operation.path}{summary}"
