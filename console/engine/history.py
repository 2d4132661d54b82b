"""Read models of the console's history: pages of past runs and explanations, and the
timeline of one fingerprint.  Blocking SQLite reads: call them from a thread worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from storage import history as store
from storage.history import HistoryQuery

if TYPE_CHECKING:
    from storage.db import Database

PAGE = 50


@dataclass(frozen=True)
class HistoryRow:
    """One line of the history: a run, or an explanation."""

    kind: Literal["run", "explanation"]
    key: str  # run id, or the explanation's id
    ts: float
    combination: str
    verdict: str  # a run's verdict (or status); an explanation's source
    summary: str  # the exception and reason, or the explanation's action
    fingerprint: str | None
    run_id: str | None


@dataclass
class HistoryPage:
    """A page of the history and where the next one starts."""

    rows: list[HistoryRow]
    next_cursor: Cursor | None


@dataclass(frozen=True)
class Cursor:
    """Where a page ended, per kind (keyset paging: nothing is loaded whole)."""

    run: tuple[float, Any] | None = None  # (started, run id or index position)
    explanation: tuple[float, int] | None = None
    runs_done: bool = False
    explanations_done: bool = False


def _combination(row: dict[str, Any]) -> str:
    return f"{row['spec']}/{row['prompt']}/{row['model']}" if row.get("spec") else "(check)"


def _run_row(row: dict[str, Any]) -> HistoryRow:
    summary = " · ".join(part for part in (row.get("exception"), row.get("reason")) if part)
    return HistoryRow(
        kind="run",
        key=row["run_id"],
        ts=float(row["started"] or 0.0),
        combination=_combination(row),
        verdict=row["verdict"] or row["status"] or "?",
        summary=summary,
        fingerprint=row["fingerprint"],
        run_id=row["run_id"],
    )


def _explanation_row(row: dict[str, Any], runs: dict[str, dict[str, Any]]) -> HistoryRow:
    run = runs.get(row["run_id"] or "")
    return HistoryRow(
        kind="explanation",
        key=str(row["id"]),
        ts=float(row["created"]),
        combination=_combination(run) if run else "(trace)",
        verdict=row["source"],
        summary=" · ".join(p for p in (row["exception"], row["action"] or row["reason"]) if p),
        fingerprint=row["fingerprint"],
        run_id=row["run_id"],
    )


def history_page(
    db: Database, query: HistoryQuery, cursor: Cursor | None = None, limit: int = PAGE
) -> HistoryPage:
    """Runs and explanations matching ``query``, newest first, ``limit`` at a time.

    Each kind is read in its own order by its own index, ``limit`` rows at most, and the
    two streams are merged by time: a page costs the same on the first and the
    thousandth page, and each stream's cursor is where its taken rows end.
    """
    cursor = cursor or Cursor()
    runs = (
        []
        if cursor.runs_done
        else store.history_runs(db, query, before=cursor.run, limit=limit)
    )
    explanations = (
        []
        if cursor.explanations_done
        else store.history_explanations(db, query, before=cursor.explanation, limit=limit)
    )
    linked = {r["run_id"] for r in explanations if r["run_id"]}
    run_info = {r["run_id"]: r for r in store.runs_by_id(db, sorted(linked))}
    run_rows = [_run_row(r) for r in runs]
    expl_rows = [_explanation_row(r, run_info) for r in explanations]
    merged: list[HistoryRow] = []
    i = j = 0
    while len(merged) < limit and (i < len(run_rows) or j < len(expl_rows)):
        if j >= len(expl_rows) or (i < len(run_rows) and run_rows[i].ts >= expl_rows[j].ts):
            merged.append(run_rows[i])
            i += 1
        else:
            merged.append(expl_rows[j])
            j += 1
    next_cursor = Cursor(
        run=(run_rows[i - 1].ts, runs[i - 1]["position"]) if i else cursor.run,
        explanation=(expl_rows[j - 1].ts, int(expl_rows[j - 1].key)) if j else cursor.explanation,
        runs_done=cursor.runs_done or (len(runs) < limit and i == len(runs)),
        explanations_done=cursor.explanations_done
        or (len(explanations) < limit and j == len(explanations)),
    )
    more = not (next_cursor.runs_done and next_cursor.explanations_done)
    return HistoryPage(merged, next_cursor if more else None)


# --- a fingerprint's timeline ----------------------------------------------------------


@dataclass(frozen=True)
class TimelineEvent:
    """One moment in a fingerprint's life."""

    ts: float
    kind: Literal["seen", "fixed", "returned", "still_failing"]
    run_id: str
    combination: str
    how: str  # "first run", "rerun", "fan-out", "later attempt", ...


@dataclass
class FingerprintTimeline:
    """Every run that had a fingerprint, when it was first seen, fixes and returns."""

    fingerprint: str
    runs: int
    first_seen: float | None
    last_seen: float | None
    events: list[TimelineEvent] = field(default_factory=list)

    @property
    def fixed_at(self) -> float | None:
        """When a rerun, fan-out or later attempt first passed after it was seen."""
        return next((e.ts for e in self.events if e.kind == "fixed"), None)

    @property
    def came_back(self) -> bool:
        """Whether the fingerprint was seen again after it was fixed."""
        return any(e.kind == "returned" for e in self.events)

    def to_json(self) -> dict[str, Any]:
        """A JSON object of the timeline."""
        return {
            "fingerprint": self.fingerprint,
            "runs": self.runs,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "fixed_at": self.fixed_at,
            "came_back": self.came_back,
            "events": [e.__dict__ for e in self.events],
        }


def fingerprint_timeline(db: Database, fingerprint: str) -> FingerprintTimeline:
    """The timeline of ``fingerprint`` (see :class:`FingerprintTimeline`).

    A fix is a passing run that reruns or fans out a run with the fingerprint, or a later
    passing attempt of a combination that had it; a return is a run with the fingerprint
    after a fix.
    """
    rows = store.fingerprint_related(db, fingerprint)
    hits = {r["run_id"] for r in rows if r["fingerprint"] == fingerprint}
    failing_combos: set[str] = set()
    events: list[TimelineEvent] = []
    fixed = False
    for row in rows:  # oldest first
        combo = _combination(row)
        ts = float(row["started"] or 0.0)
        if row["run_id"] in hits:
            if fixed:
                events.append(TimelineEvent(ts, "returned", row["run_id"], combo, "seen again"))
                fixed = False
            else:
                how = "first seen" if not events else "seen again"
                events.append(TimelineEvent(ts, "seen", row["run_id"], combo, how))
            failing_combos.add(combo)
            continue
        if row["verdict"] != "pass":
            continue
        if row["rerun_of"] in hits:
            how = "rerun" if combo in failing_combos else "fan-out"
        elif combo in failing_combos:
            how = "later attempt"
        else:
            continue
        if not fixed:
            events.append(TimelineEvent(ts, "fixed", row["run_id"], combo, how))
            fixed = True
    seen = [e.ts for e in events if e.kind in ("seen", "returned")]
    return FingerprintTimeline(
        fingerprint=fingerprint,
        runs=len(hits),
        first_seen=min(seen) if seen else None,
        last_seen=max(seen) if seen else None,
        events=events,
    )


# --- the search line ---------------------------------------------------------------------

_FILTER_NAMES = {"verdict": "verdict", "spec": "spec", "prompt": "prompt", "model": "model",
                 "fp": "fingerprint", "fingerprint": "fingerprint"}


def _date(name: str, value: str) -> float:
    from datetime import datetime

    from console.errors import UsageError

    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError as exc:
        raise UsageError(f"{name}: cannot read date {value!r}; use YYYY-MM-DD") from exc


def parse_history_query(text: str) -> HistoryQuery:
    """``verdict:crashed model:m1 since:2026-11-01 address in use`` as a query.

    Filters: verdict, spec, prompt, model, fp (fingerprint), since, until (dates); the other
    words are searched in full text.

    Raises:
        UsageError: an unreadable date.
    """
    values: dict[str, Any] = {}
    words: list[str] = []
    for token in text.split():
        name, sep, value = token.partition(":")
        if not sep or not value or " " in name:
            words.append(token)
            continue
        key = name.lower()
        if key in _FILTER_NAMES:
            values[_FILTER_NAMES[key]] = value
        elif key in ("since", "until"):
            values[key] = _date(key, value)
        else:  # "Error:" or a URL: words to search, not a filter
            words.append(token)
    return HistoryQuery(text=" ".join(words) or None, **values)
