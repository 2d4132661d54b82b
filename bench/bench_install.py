"""Install benchmark: a Flask and an Express project, with and without the shared cache.

    .venv/bin/python bench/bench_install.py [--cells 12] [--slots 4] [--repeat 3]

For each project (``tests/fixtures/projects/flask-hello`` and ``express-hello``) it runs
the whole ``run_check`` (copy → install → start → port → GET / → settle) and prints the
install time (restore + install stages) and the whole check time in three states:

* ``no cache`` — ``VERDICT_DEP_CACHE=off``: every check installs from the registry in its
  sandbox, as a platform without a cache would (median of ``--repeat``);
* ``cold``     — an empty cache: the first check builds the set from the registry;
* ``warm``     — the same dependencies again (median of ``--repeat``).

Then a matrix of ``--cells`` checks (half Flask, half Express) at ``--slots`` concurrent
checks: wall time with no cache, with a cold cache, and warm.  The goal is a warm check
≥ 5× faster than a cold one.  Needs PyPI and the npm registry.

Measured on the 2-core shared machine (median of 3): install 5.1 s → 0.34 s (Flask) and
5.8 s → 0.22 s (Express), 15–29× faster; whole check 7.1 s → 2.95 s and 7.7 s → 2.5 s
(2.4–3.5×: a warm check is now mostly the app's start, GET / and the 1 s settle window);
12 cells at 4 slots 53.6 s without the cache, 35.8 s cold, 22.8 s warm.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from console.checker import run_check  # noqa: E402
from console.model import CheckResult, CheckSpec, Verdict  # noqa: E402
from console.settings import SandboxSettings  # noqa: E402

PROJECTS = {
    "flask": ROOT / "tests/fixtures/projects/flask-hello",
    "express": ROOT / "tests/fixtures/projects/express-hello",
}


def install_ms(result: CheckResult) -> float:
    return sum(s.ms for s in result.stages if s.name in ("restore", "install"))


async def one(project: Path, settings: SandboxSettings) -> tuple[float, float]:
    started = time.monotonic()
    result = await run_check(CheckSpec(project=project), settings=settings)
    wall = time.monotonic() - started
    if result.verdict != Verdict.PASS:
        raise SystemExit(f"{project.name}: {result.verdict.value}: {result.reason}")
    return install_ms(result) / 1000, wall


async def matrix(cells: int, slots: int, settings: SandboxSettings) -> float:
    gate = asyncio.Semaphore(slots)
    names = [("flask", "express")[i % 2] for i in range(cells)]

    async def cell(name: str) -> None:
        async with gate:
            await one(PROJECTS[name], settings)

    started = time.monotonic()
    await asyncio.gather(*(cell(name) for name in names))
    return time.monotonic() - started


def use_cache(path: Path | None) -> None:
    os.environ["VERDICT_DEP_CACHE"] = str(path) if path else "off"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=12)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-install-"))
    os.environ["XDG_DATA_HOME"] = str(scratch / "data")  # run directories go here
    settings = SandboxSettings()
    print(f"{'project':8} {'state':9} {'install s':>10} {'check s':>8}")
    ratios = []
    for name, project in PROJECTS.items():
        rows: dict[str, tuple[float, float]] = {}
        use_cache(None)
        runs = [await one(project, settings) for _ in range(args.repeat)]
        rows["no cache"] = (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
        )
        use_cache(scratch / f"cache-{name}")
        rows["cold"] = await one(project, settings)
        runs = [await one(project, settings) for _ in range(args.repeat)]
        rows["warm"] = (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
        )
        for state, (install, check) in rows.items():
            print(f"{name:8} {state:9} {install:10.2f} {check:8.2f}")
        ratios.append(
            f"{name}: warm check {rows['no cache'][1] / rows['warm'][1]:.1f}x faster than no"
            f" cache, {rows['cold'][1] / rows['warm'][1]:.1f}x than a cold cache; install"
            f" {rows['no cache'][0] / max(rows['warm'][0], 1e-3):.0f}x / "
            f"{rows['cold'][0] / max(rows['warm'][0], 1e-3):.0f}x"
        )
    print(*ratios, sep="\n")
    use_cache(None)
    plain = await matrix(args.cells, args.slots, settings)
    use_cache(scratch / "cache-matrix")
    cold = await matrix(args.cells, args.slots, settings)
    warm = await matrix(args.cells, args.slots, settings)
    print(
        f"matrix {args.cells} cells at {args.slots} slots: no cache {plain:.1f} s,"
        f" cold cache {cold:.1f} s, warm {warm:.1f} s"
        f" ({plain / warm:.1f}x / {cold / warm:.1f}x)"
    )


if __name__ == "__main__":
    asyncio.run(main())
