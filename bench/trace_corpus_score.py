"""Score the trace parser on the real-world corpus (``tests/fixtures/traces``).

    .venv/bin/python bench/trace_corpus_score.py

For every stored trace: is the root exception right, the message right, and the list of
application frames exactly right; once with the app root or package each case names, once
detected automatically.  Lists the cases that miss, per runtime.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.trace_corpus import load_cases, score  # noqa: E402


def main() -> None:
    cases = load_cases()
    runtimes = Counter(case.expected["runtime"] for case in cases)
    print(f"{len(cases)} traces: " + ", ".join(f"{k} {v}" for k, v in sorted(runtimes.items())))
    for with_app, label in ((True, "app root given"), (False, "app detected")):
        result = score(cases, with_app=with_app)
        total = result["total"]
        parts = [
            f"{key} {result[key]}/{total} ({100 * result[key] / total:.0f}%)"
            for key in ("exception", "message", "frames")
        ]
        print(f"  {label:<15} " + "   ".join(parts))
        for miss in result["frame_misses"]:
            print(f"    app frames differ: {miss}")


if __name__ == "__main__":
    main()
