"""Install benchmark: Flask and Express projects, with and without the shared cache.

    .venv/bin/python bench/bench_install.py [--projects NAME,…] [--cells 12] [--slots 4]
        [--repeat 3]

Projects: ``flask`` and ``express`` (``tests/fixtures/projects/flask-hello`` and
``express-hello``: one dependency each, the hardest case for the ratio) and
``flask-typical`` / ``express-typical`` (``bench/projects/``: the dependency sets generated
apps usually have — SQLAlchemy, CORS, dotenv, requests; cors, helmet, morgan, joi, jwt…).
For each it runs the whole ``run_check`` (copy → install → start → port → GET / → settle)
and prints the install time (restore + install stages) and the whole check time in three
states:

* ``no cache`` — ``VERDICT_DEP_CACHE=off``: every check installs from the registry in its
  sandbox, as a platform without a cache would (median of ``--repeat``);
* ``cold``     — an empty cache: the first check builds the set from the registry;
* ``warm``     — the same dependencies again (median of ``--repeat``).

Then a matrix of ``--cells`` checks of the first two projects (half each) at ``--slots``
concurrent checks: wall time with no cache, with a cold cache, and warm.  The goal is a
warm check ≥ 5× faster than a cold one.  Needs PyPI and the npm registry.
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
    "flask-typical": ROOT / "bench/projects/flask-typical",
    "express-typical": ROOT / "bench/projects/express-typical",
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


async def matrix(
    projects: list[str], cells: int, slots: int, settings: SandboxSettings
) -> float:
    gate = asyncio.Semaphore(slots)
    names = [(projects[0], projects[-1])[i % 2] for i in range(cells)]

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
    parser.add_argument("--projects", default=",".join(PROJECTS), help="comma-separated")
    parser.add_argument("--cells", type=int, default=12)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-install-"))
    os.environ["XDG_DATA_HOME"] = str(scratch / "data")  # run directories go here
    settings = SandboxSettings()
    print(f"{'project':15} {'state':9} {'install s':>10} {'check s':>8}")
    ratios = []
    chosen = [name for name in args.projects.split(",") if name]
    unknown = [name for name in chosen if name not in PROJECTS]
    if unknown or not chosen:
        parser.error(f"--projects: choose from {', '.join(PROJECTS)}")
    for name in chosen:
        project = PROJECTS[name]
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
            print(f"{name:15} {state:9} {install:10.2f} {check:8.2f}")
        ratios.append(
            f"{name}: warm check {rows['no cache'][1] / rows['warm'][1]:.1f}x faster than no"
            f" cache, {rows['cold'][1] / rows['warm'][1]:.1f}x than a cold cache; install"
            f" {rows['no cache'][0] / max(rows['warm'][0], 1e-3):.0f}x / "
            f"{rows['cold'][0] / max(rows['warm'][0], 1e-3):.0f}x"
        )
    print(*ratios, sep="\n")
    use_cache(None)
    plain = await matrix(chosen[:2], args.cells, args.slots, settings)
    use_cache(scratch / "cache-matrix")
    cold = await matrix(chosen[:2], args.cells, args.slots, settings)
    warm = await matrix(chosen[:2], args.cells, args.slots, settings)
    print(
        f"matrix of {' and '.join(chosen[:2])}, {args.cells} cells at {args.slots} slots:"
        f" no cache {plain:.1f} s,"
        f" cold cache {cold:.1f} s, warm {warm:.1f} s"
        f" ({plain / warm:.1f}x / {cold / warm:.1f}x)"
    )


if __name__ == "__main__":
    asyncio.run(main())
