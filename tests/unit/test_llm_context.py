"""The LLM request context: nesting, tasks, threads and executors."""

from __future__ import annotations

import asyncio
import getpass
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from console.llm.context import (
    LlmContext,
    bind_context,
    current_context,
    llm_context,
    os_user,
    run_in_executor,
    run_with_context,
)
from console.model import Combination


def test_no_context_outside_any_block() -> None:
    assert current_context() is None


def test_user_defaults_to_the_os_user() -> None:
    assert LlmContext().user == getpass.getuser()
    with llm_context(feature="explain") as ctx:
        assert ctx.user == getpass.getuser()


def test_os_user_survives_a_missing_passwd_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> str:
        raise KeyError("uid not found")

    monkeypatch.setattr(getpass, "getuser", broken)
    assert os_user() == ""
    assert LlmContext().user == ""


def test_nested_contexts_override_fields_and_restore_on_exit() -> None:
    with llm_context(user="ana", feature="generate", job_id="j1") as outer:
        assert current_context() == outer
        with llm_context(feature="explain", sandbox="pod-7") as inner:
            assert inner == LlmContext(user="ana", feature="explain", job_id="j1", sandbox="pod-7")
            assert current_context() == inner
        assert current_context() == outer
    assert current_context() is None


def test_context_is_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), llm_context(feature="generate"):
        raise RuntimeError("boom")
    assert current_context() is None


def test_combination_is_stored_as_its_key_and_unknown_fields_are_refused() -> None:
    combo = Combination(spec="todo-api", prompt="v2", model="m1")
    with llm_context(combination=combo) as ctx:
        assert ctx.combination == "todo-api/v2/m1"
    with pytest.raises(TypeError, match="colour"), llm_context(colour="red"):
        pass


async def test_concurrent_tasks_keep_their_own_context() -> None:
    started = 0
    all_started = asyncio.Event()
    seen: dict[str, LlmContext | None] = {}

    async def work(name: str) -> None:
        nonlocal started
        with llm_context(job_id=name):
            started += 1
            if started == 20:
                all_started.set()
            # Every task is inside its block at the same time before any reads.
            await asyncio.wait_for(all_started.wait(), timeout=10)
            await asyncio.sleep(0)
            seen[name] = current_context()

    await asyncio.gather(*(work(f"job-{i}") for i in range(20)))
    assert {name: ctx.job_id if ctx else None for name, ctx in seen.items()} == {
        f"job-{i}": f"job-{i}" for i in range(20)
    }
    assert current_context() is None


async def test_run_with_context_sets_and_restores() -> None:
    ctx = LlmContext(user="bo", feature="explain")

    async def read(offset: int) -> tuple[LlmContext | None, int]:
        await asyncio.sleep(0)
        return current_context(), offset + 1

    with llm_context(feature="outer") as outer:
        assert await run_with_context(ctx, read, 1) == (ctx, 2)
        assert current_context() == outer
        task = asyncio.create_task(run_with_context(ctx, read, 5))
        assert await task == (ctx, 6)
        # None clears the context inside.
        assert (await run_with_context(None, read, 0))[0] is None
        assert current_context() == outer


async def test_to_thread_and_executors_keep_the_callers_context() -> None:
    with llm_context(feature="generate", job_id="j9") as ctx:
        assert await asyncio.to_thread(current_context) == ctx
        with ThreadPoolExecutor(max_workers=1) as pool:
            assert await run_in_executor(pool, current_context) == ctx
            # The plain executor call does not carry it: the helper is needed.
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(pool, current_context) is None
            assert pool.submit(bind_context(current_context)).result(timeout=10) == ctx


def test_bound_function_keeps_context_in_a_plain_thread() -> None:
    result: list[LlmContext | None] = []
    with llm_context(sandbox="run-1") as ctx:
        fn = bind_context(current_context)
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(timeout=10)
    assert result == [ctx]
