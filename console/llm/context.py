"""The request context of LLM calls, carried by :mod:`contextvars`.

Business code never passes logging arguments: the edge that starts a piece of work (a
worker taking a job, the explain command) sets the context once with :func:`llm_context`
or :func:`run_with_context`, and the ledger callback reads it with
:func:`current_context` wherever the LLM call happens.

Each asyncio task runs in a copy of the context of the code that created it, so
concurrent tasks keep their own context; ``asyncio.to_thread`` copies the caller's
context too.  Plain executors do not, so use :func:`run_in_executor` or
:func:`bind_context` when handing work to one.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import getpass
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from typing import Any, ParamSpec, TypeVar

from console.model import Combination

P = ParamSpec("P")
T = TypeVar("T")


def os_user() -> str:
    """The name of the OS user running this process ("" when it cannot be found)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry / no env vars in a container
        return ""


@dataclass(frozen=True, slots=True)
class LlmContext:
    """Who asked for an LLM call and why; recorded with every call in the ledger.

    Attributes:
        user: the person (defaults to the OS user).
        sandbox: the pod name or local run id the call works for.
        feature: the product feature (``generate``, ``explain``, ...).
        job_id: the matrix job, if any.
        combination: ``spec/prompt/model`` of the job, if any.
    """

    user: str = field(default_factory=os_user)
    sandbox: str | None = None
    feature: str | None = None
    job_id: str | None = None
    combination: str | None = None

    def merged(self, **fields_: Any) -> LlmContext:
        """A copy with ``fields_`` replaced (``None`` values leave a field as it is)."""
        return replace(self, **_normalise(fields_))


FIELD_NAMES = frozenset(f.name for f in fields(LlmContext))

_current: contextvars.ContextVar[LlmContext | None] = contextvars.ContextVar(
    "verdict_llm_context", default=None
)


def _normalise(values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - FIELD_NAMES
    if unknown:
        raise TypeError(f"unknown LlmContext field(s): {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        if value is None:
            continue
        if isinstance(value, Combination):
            value = value.key
        out[name] = str(value)
    return out


def current_context() -> LlmContext | None:
    """The active context, or None outside any :func:`llm_context`."""
    return _current.get()


@contextmanager
def llm_context(**fields_: Any) -> Iterator[LlmContext]:
    """Make a context active for the ``with`` block.

    Fields not given are inherited from the enclosing context (or take their defaults);
    the enclosing context is restored on exit.  ``combination`` may be a
    :class:`console.model.Combination`; it is stored as its ``spec/prompt/model`` key.

    Example:
        >>> with llm_context(feature="explain", job_id="j1"):
        ...     ...  # every LLM call in here is recorded with feature="explain"
    """
    base = _current.get() or LlmContext()
    ctx = base.merged(**fields_)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


async def run_with_context(
    ctx: LlmContext | None,
    coro_fn: Callable[..., Awaitable[T]],
    *args: Any,
    **kwargs: Any,
) -> T:
    """Await ``coro_fn(*args, **kwargs)`` with ``ctx`` active (None clears the context).

    The caller's context is restored afterwards.  Typical use is spawning a task per job:
    ``asyncio.create_task(run_with_context(ctx, process, job))``.
    """
    token = _current.set(ctx)
    try:
        return await coro_fn(*args, **kwargs)
    finally:
        _current.reset(token)


def bind_context(fn: Callable[P, T]) -> Callable[P, T]:
    """Wrap ``fn`` so it runs in a copy of the current context, whichever thread calls it."""
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def bound(*args: P.args, **kwargs: P.kwargs) -> T:
        return ctx.copy().run(fn, *args, **kwargs)

    return bound


async def run_in_executor(executor: Executor | None, fn: Callable[..., T], *args: Any) -> T:
    """``loop.run_in_executor`` that keeps the caller's context (the plain one does not)."""
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    return await loop.run_in_executor(executor, functools.partial(ctx.run, fn, *args))
