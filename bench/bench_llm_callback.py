"""How much the token-ledger callback adds to an LLM call (goal: < 1 ms per call).

Two measurements, side by side in one run:

1. The callback alone: ``on_chat_model_start`` + ``on_llm_end`` (usage extraction,
   pricing, context read) with the row insert into a WAL SQLite file, and without it.
2. End to end: the same calls through the real ``ChatOpenAI`` against the loopback
   OpenAI-compatible server, with the factory's ledger callback and without any
   callback, interleaved in rounds so load on the machine hits both alike.

Run: ``/work/venv/bin/python bench/bench_llm_callback.py [--calls N] [--rounds R]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, LLMResult  # noqa: E402

from console.llm.context import llm_context  # noqa: E402
from console.llm.factory import ChatModelFactory, per_loop_async_client  # noqa: E402
from console.llm.ledger import LedgerCallback  # noqa: E402
from console.settings import LlmSettings, ModelConfig, Price, Settings  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.llm_calls import list_calls  # noqa: E402
from tests.support.openai_server import OpenAIServer  # noqa: E402


def _result() -> LLMResult:
    message = AIMessage(
        content="ok",
        usage_metadata={
            "input_tokens": 1200,
            "output_tokens": 300,
            "total_tokens": 1500,
            "input_token_details": {"cache_read": 1000},
            "output_token_details": {"reasoning": 120},
        },
    )
    return LLMResult(generations=[[ChatGeneration(message=message)]])


def bench_callback(calls: int, db: Database) -> tuple[float, float]:
    """Microseconds per call: (callback + insert, callback with a no-op sink)."""
    price = Price(input=2.0, cached_input=0.5, output=10.0)
    factory = ChatModelFactory(Settings(), db)
    timings = []
    for sink in (None, lambda call: None):
        callback = (
            factory.ledger_callback("bench-model")
            if sink is None
            else LedgerCallback("bench-model", price, sink)
        )
        result = _result()
        with llm_context(user="bench", feature="generate", job_id="j1", sandbox="pod-1"):
            start = time.perf_counter()
            for _ in range(calls):
                run_id = uuid.uuid4()
                callback.on_chat_model_start({}, [[]], run_id=run_id)
                callback.on_llm_end(result, run_id=run_id)
            timings.append((time.perf_counter() - start) / calls * 1e6)
    return timings[0], timings[1]


async def _run_calls(model: object, calls: int) -> list[float]:
    out = []
    for i in range(calls):
        start = time.perf_counter()
        with llm_context(user="bench", feature="generate", job_id=f"j{i}"):
            await model.ainvoke("hello")  # type: ignore[attr-defined]
        out.append((time.perf_counter() - start) * 1000.0)
    return out


async def bench_end_to_end(
    calls: int, rounds: int, settings: Settings, db: Database
) -> tuple[list[float], list[float]]:
    """Per-call milliseconds with the ledger callback and without any callback."""
    from langchain_openai import ChatOpenAI

    llm = settings.llm
    with_ledger = ChatModelFactory(settings, db).create()
    plain = ChatOpenAI(
        model=llm.model or "",
        base_url=llm.base_url,
        api_key=llm.api_key,  # type: ignore[arg-type]
        timeout=llm.timeout,
        max_retries=llm.max_retries,
        stream_usage=True,
        http_async_client=per_loop_async_client(),
    )
    await _run_calls(with_ledger, 20)  # warm up connections and imports
    await _run_calls(plain, 20)
    ledger_ms: list[float] = []
    plain_ms: list[float] = []
    for _ in range(rounds):
        ledger_ms += await _run_calls(with_ledger, calls)
        plain_ms += await _run_calls(plain, calls)
    return ledger_ms, plain_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per round (end to end)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--direct", type=int, default=5000, help="calls of the callback alone")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, OpenAIServer() as server:
        db = Database(Path(tmp) / "bench.db")
        with_insert, no_insert = bench_callback(args.direct, db)
        print(f"callback alone, {args.direct} calls (start + end, usage, price, context):")
        print(f"  with insert into llm_calls (WAL file) : {with_insert:8.1f} us/call")
        print(f"  with a no-op sink                     : {no_insert:8.1f} us/call")

        settings = Settings(
            llm=LlmSettings(
                base_url=server.base_url,
                model="bench-model",
                api_key="sk-bench",
                timeout=30.0,
                max_retries=0,
                models={"bench-model": ModelConfig(price=Price(input=2.0, output=10.0))},
            )
        )
        before = len(list_calls(db))
        ledger_ms, plain_ms = asyncio.run(bench_end_to_end(args.calls, args.rounds, settings, db))
        recorded = len(list_calls(db)) - before
        n = len(ledger_ms)
        med_l, med_p = statistics.median(ledger_ms), statistics.median(plain_ms)
        mean_l, mean_p = statistics.fmean(ledger_ms), statistics.fmean(plain_ms)
        print(f"end to end, {n} ainvoke calls each, loopback server, interleaved rounds:")
        print(f"  with ledger callback : median {med_l:7.3f} ms  mean {mean_l:7.3f} ms")
        print(f"  without callbacks    : median {med_p:7.3f} ms  mean {mean_p:7.3f} ms")
        print(
            f"  overhead per call    : median {med_l - med_p:+7.3f} ms  "
            f"mean {mean_l - mean_p:+7.3f} ms  (ratio {med_l / med_p:.3f}x)"
        )
        print(f"  rows recorded        : {recorded} (expected {n + 20})")
        db.close()


if __name__ == "__main__":
    main()
