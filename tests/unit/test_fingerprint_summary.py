"""The per-fingerprint summary the stats read is kept by triggers: after any mix of runs
started and finished, out of order, verdicts changed and runs deleted, it equals the same
figures computed here from the runs themselves; a database written before it existed is
filled in when it is opened."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from storage.db import Database

COLUMNS = "run_id, spec, prompt, model, started, verdict, fingerprint"


def expected(db: Database) -> dict[str, dict[str, Any]]:
    """The summary from first principles: for each fingerprint of finished failing matrix
    runs, how many, first/last seen and the earliest pass of a combination after one of
    its runs there."""
    runs = db.query(f"SELECT {COLUMNS} FROM runs WHERE verdict IS NOT NULL AND model IS NOT NULL")
    passes: dict[tuple[str, str, str], list[float]] = {}
    for run in runs:
        if run["verdict"] == "pass":
            passes.setdefault((run["spec"], run["prompt"], run["model"]), []).append(
                run["started"]
            )
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run["verdict"] == "pass" or run["fingerprint"] is None:
            continue
        combo = (run["spec"], run["prompt"], run["model"])
        later = [p for p in passes.get(combo, []) if p > run["started"]]
        row = out.setdefault(
            run["fingerprint"],
            {"count": 0, "first_seen": run["started"], "last_seen": run["started"],
             "by_attempt": None},
        )
        row["count"] += 1
        row["first_seen"] = min(row["first_seen"], run["started"])
        row["last_seen"] = max(row["last_seen"], run["started"])
        if later and (row["by_attempt"] is None or min(later) < row["by_attempt"]):
            row["by_attempt"] = min(later)
    return out


def summary(db: Database) -> dict[str, dict[str, Any]]:
    return {
        row.pop("fingerprint"): row
        for row in db.query(
            "SELECT fingerprint, count, first_seen, last_seen, by_attempt FROM fingerprint_stats"
        )
    }


def random_history(db: Database, rnd: random.Random, runs: int) -> None:
    """Runs as the recorder writes them (a start, later its verdict), arriving out of order,
    plus direct inserts, changed verdicts, a moved start and deletions."""
    verdicts = ["pass", "pass", "crashed", "http_error", "timeout"]
    open_runs: list[str] = []
    for i in range(runs):
        run_id = f"r{i:04d}"
        combo = (f"s{rnd.randrange(3)}", f"v{rnd.randrange(2)}", f"m{rnd.randrange(2)}")
        started = float(rnd.randrange(150))
        verdict = rnd.choice(verdicts)
        fingerprint = None if verdict == "pass" else f"fp{rnd.randrange(6)}"
        with db.write() as w:
            if rnd.random() < 0.5:  # inserted finished (a replayed or imported run)
                w.execute(
                    f"INSERT INTO runs ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, *combo, started, verdict, fingerprint),
                )
            else:  # started now, finished later
                w.execute("INSERT INTO runs (run_id, started) VALUES (?, ?)", (run_id, 0.0))
                w.execute(
                    "UPDATE runs SET spec = ?, prompt = ?, model = ?, started = ? WHERE run_id = ?",
                    (*combo, started, run_id),
                )
                open_runs.append(run_id)
        if open_runs and rnd.random() < 0.6:
            done = open_runs.pop(rnd.randrange(len(open_runs)))
            with db.write() as w:
                w.execute(
                    "UPDATE runs SET status = 'done', verdict = ?, fingerprint = ?"
                    " WHERE run_id = ?",
                    (verdict, fingerprint, done),
                )
        if i % 9 == 8:
            victim = f"r{rnd.randrange(i):04d}"
            change = rnd.choice(["verdict", "fingerprint", "started", "delete", "same"])
            with db.write() as w:
                if change == "verdict":
                    new = rnd.choice(verdicts)
                    w.execute(
                        "UPDATE runs SET verdict = ?, fingerprint = ? WHERE run_id = ?",
                        (new, None if new == "pass" else "fp9", victim),
                    )
                elif change == "fingerprint":
                    w.execute(
                        "UPDATE runs SET fingerprint = 'fp7'"
                        " WHERE run_id = ? AND verdict != 'pass'",
                        (victim,),
                    )
                elif change == "started":
                    w.execute(
                        "UPDATE runs SET started = ? WHERE run_id = ?",
                        (float(rnd.randrange(150)), victim),
                    )
                elif change == "delete":
                    w.execute("DELETE FROM runs WHERE run_id = ?", (victim,))
                else:  # the same verdict recorded again
                    w.execute(
                        "UPDATE runs SET verdict = verdict, fingerprint = fingerprint"
                        " WHERE run_id = ?",
                        (victim,),
                    )


@pytest.mark.parametrize("seed", range(6))
def test_the_summary_equals_the_runs_after_any_history(tmp_path: Path, seed: int) -> None:
    db = Database(tmp_path / "s.db")
    random_history(db, random.Random(seed), 240)
    want = expected(db)
    assert want, "the history has failing fingerprints"
    assert summary(db) == want
    assert any(row["by_attempt"] is not None for row in want.values())


def test_a_database_from_before_the_summary_is_filled_in(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = Database(path)
    random_history(db, random.Random(42), 120)
    want = expected(db)
    with db.write() as w:  # as the file looked before the summary's migration
        for (name,) in w.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            " AND name LIKE 'fingerprint_stats_%'"
        ).fetchall():
            w.execute(f"DROP TRIGGER {name}")
        w.execute("DROP TABLE fingerprint_stats")
        w.execute("UPDATE schema_versions SET version = 1 WHERE component = 'history'")
    db.close()
    assert summary(Database(path)) == want
