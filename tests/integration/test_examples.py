"""The bundled examples: every replayed cell gets the verdict its recording was made for."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from console.checker import run_check
from console.generate.replay import ReplayGenerator
from console.matrix import Matrix, load_matrix
from console.model import CheckResult, Job
from console.settings import Settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

# combination -> (verdict, text the verdict's reason must mention): what each recording does.
SHOP_EXPECTED = {
    # imports a helper module the answer never included
    "orders-api/v1/gpt-4o-mini": ("crashed", "ModuleNotFoundError"),
    # the answer was cut off mid-file
    "orders-api/v1/llama-3.1-8b-instruct": ("crashed", "SyntaxError"),
    # GET / sums a key one order lacks -> the handler answers 500
    "orders-api/v1/qwen2.5-coder-7b": ("http_error", "500"),
    "orders-api/v2/gpt-4o-mini": ("pass", "/health with 200"),
    # health check at /healthz, the spec asks for /health
    "orders-api/v2/llama-3.1-8b-instruct": ("unhealthy", "404"),
    # builds the server at import time and again in main()
    "orders-api/v2/qwen2.5-coder-7b": ("crashed", "Address already in use"),
    # ignores $PORT: hard-coded 3000 (next free one when taken), found by port detection
    "storefront/v1/gpt-4o-mini": ("pass", "listened on port"),
    # requires express, which nothing installs
    "storefront/v1/llama-3.1-8b-instruct": ("crashed", "Cannot find module 'express'"),
    # the startup block appears twice: the second listen fails
    "storefront/v1/qwen2.5-coder-7b": ("crashed", "EADDRINUSE"),
    "storefront/v2/gpt-4o-mini": ("pass", "/health with 200"),
    # one price is a string: rendering / throws, the handler answers 500
    "storefront/v2/llama-3.1-8b-instruct": ("http_error", "500"),
    "storefront/v2/qwen2.5-coder-7b": ("pass", "/health with 200"),
}


async def check_cells(matrix: Matrix, jobs: list[Job], work: Path) -> dict[str, CheckResult]:
    generator = matrix.generator(Settings())
    limit = asyncio.Semaphore(3)

    async def one(job: Job) -> tuple[str, CheckResult]:
        async with limit:
            dest = work / job.job_id
            generated = await generator.generate(job, dest)
            assert generated.ok, generated.reason
            return job.combination.key, await run_check(
                matrix.check_spec_for(job, dest, generated), job=job
            )

    return dict(await asyncio.gather(*(one(job) for job in jobs)))


def test_shop_matrix_shape() -> None:
    matrix = load_matrix(EXAMPLES / "shop.toml")
    assert len(matrix.specs) >= 2 and len(matrix.prompts) >= 2 and len(matrix.models) >= 3
    assert isinstance(matrix.generator(Settings()), ReplayGenerator)
    assert sorted(job.combination.key for job in matrix.jobs()) == sorted(SHOP_EXPECTED)
    assert {verdict for verdict, _ in SHOP_EXPECTED.values()} >= {
        "pass",
        "crashed",
        "http_error",
        "unhealthy",
    }
    v2 = matrix.jobs()[3].payload["prompt"]["text"]
    assert "PORT environment variable" in v2 and "GET /health" in v2


@needs_node
async def test_every_shop_cell_gets_its_intended_verdict(tmp_path: Path) -> None:
    matrix = load_matrix(EXAMPLES / "shop.toml")
    results = await check_cells(matrix, matrix.jobs(), tmp_path)
    got = {key: (r.verdict.value, r.reason) for key, r in results.items()}
    for key, (verdict, evidence) in SHOP_EXPECTED.items():
        assert got[key][0] == verdict, (key, got[key])
        assert evidence in got[key][1], (key, got[key])
    # The recording that ignores $PORT was still found on the port it chose.
    ignores_port = results["storefront/v1/gpt-4o-mini"]
    assert ignores_port.port is not None and 3000 <= ignores_port.port < 3100
    # Crashes carry the parsed failure for the explainer.
    failure = results["orders-api/v1/gpt-4o-mini"].failure
    assert failure is not None and failure.exception.endswith("ModuleNotFoundError")


@needs_node
@pytest.mark.parametrize("name", ["quick.toml"])
async def test_small_examples_pass(tmp_path: Path, name: str) -> None:
    matrix = load_matrix(EXAMPLES / name)
    results = await check_cells(matrix, matrix.jobs(), tmp_path)
    assert {r.verdict.value for r in results.values()} == {"pass"}
