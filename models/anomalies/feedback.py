"""Feedback on anomalies, kept in ``state.db``, and the repeats it suppresses.

Tables (created on first use):

- ``anomaly_events``: every event a detection run reported, so an id given on the command
  line can be checked and its series and dates kept with the feedback;
- ``anomaly_feedback``: one label per anomaly id (the latest wins), with who, when, why
  and a snapshot of the event.

Labels: ``expected`` (normal here: suppresses this event, its continuation and later
events on the same series up to ``repeat_factor`` × its impact), ``planned`` (a one-off
change such as a migration: suppresses this event and any event sharing a series with it
until ``planned_grace_days`` after its end), ``real`` (a true anomaly: kept, and marked).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from finops.errors import BadInputError
from finops.state import State, now_utc

LABELS: Final = ("expected", "planned", "real")
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS anomaly_events (
    anomaly_id TEXT PRIMARY KEY,
    currency TEXT NOT NULL,
    dimension TEXT NOT NULL,
    dimension_value TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    impact TEXT NOT NULL,
    members TEXT NOT NULL,
    root_causes TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS anomaly_feedback (
    anomaly_id TEXT PRIMARY KEY,
    label TEXT NOT NULL CHECK (label IN ('expected', 'planned', 'real')),
    who TEXT,
    comment TEXT,
    created_at TEXT NOT NULL,
    currency TEXT NOT NULL,
    dimension TEXT NOT NULL,
    dimension_value TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT NOT NULL,
    impact TEXT NOT NULL,
    members TEXT NOT NULL
);
"""


def ensure_tables(state: State) -> None:
    state.db.executescript(SCHEMA)


@dataclass(frozen=True)
class EventKey:
    """What suppression needs to know of an event."""

    anomaly_id: str
    currency: str
    dimension: str
    dimension_value: str
    start: dt.date
    end: dt.date
    impact: Decimal
    members: frozenset[str]


@dataclass(frozen=True)
class Feedback:
    event: EventKey
    label: str
    who: str | None
    comment: str | None
    created_at: str


def register_events(state: State, events: Sequence[tuple[EventKey, str]], as_of: dt.date) -> None:
    """Upsert reported events (with their root causes as JSON) into ``anomaly_events``."""
    ensure_tables(state)
    seen = as_of.isoformat()
    with state.tx() as db:
        db.executemany(
            "INSERT INTO anomaly_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (anomaly_id) DO UPDATE SET end_date=excluded.end_date,"
            " impact=excluded.impact, members=excluded.members,"
            " root_causes=excluded.root_causes,"
            " first_seen=min(first_seen, excluded.first_seen),"
            " last_seen=max(last_seen, excluded.last_seen)",
            [(k.anomaly_id, k.currency, k.dimension, k.dimension_value, k.start.isoformat(),
              k.end.isoformat(), str(k.impact), json.dumps(sorted(k.members)), causes, seen, seen)
             for k, causes in events],
        )


def _key(row: Any) -> EventKey:
    return EventKey(row["anomaly_id"], row["currency"], row["dimension"], row["dimension_value"],
                    dt.date.fromisoformat(row["start_date"]), dt.date.fromisoformat(row["end_date"]),
                    Decimal(row["impact"]), frozenset(json.loads(row["members"])))


def known_event(state: State, anomaly_id: str) -> EventKey | None:
    ensure_tables(state)
    row = state.db.execute("SELECT * FROM anomaly_events WHERE anomaly_id = ?",
                           (anomaly_id,)).fetchone()
    return _key(row) if row else None


def record_feedback(state: State, anomaly_id: str, label: str, who: str | None = None,
                    comment: str | None = None) -> Feedback:
    """Label an anomaly reported by an earlier run; the latest label of an id wins."""
    if label not in LABELS:
        raise BadInputError(f"label {label!r} is not one of {', '.join(LABELS)}",
                            hint="Use --label expected, planned or real.")
    event = known_event(state, anomaly_id)
    if event is None:
        raise BadInputError(
            f"anomaly {anomaly_id!r} is not known in {state.path}",
            hint="Run `finops anomalies` and copy an anomaly_id from its output.",
        )
    created = now_utc()
    with state.tx() as db:
        db.execute(
            "INSERT OR REPLACE INTO anomaly_feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (anomaly_id, label, who, comment, created, event.currency, event.dimension,
             event.dimension_value, event.start.isoformat(), event.end.isoformat(),
             str(event.impact), json.dumps(sorted(event.members))),
        )
    return Feedback(event, label, who, comment, created)


def load_feedback(state: State) -> list[Feedback]:
    ensure_tables(state)
    rows = state.db.execute("SELECT * FROM anomaly_feedback ORDER BY created_at").fetchall()
    return [Feedback(_key(r), r["label"], r["who"], r["comment"], r["created_at"]) for r in rows]


def matching_feedback(event: EventKey, feedback: Iterable[Feedback], *, grace_days: int,
                      repeat_factor: float) -> Feedback | None:
    """The feedback that applies to ``event``: suppressing first, then ``real``."""
    real = None
    for fb in feedback:
        old = fb.event
        if old.currency != event.currency:
            continue
        same_id = old.anomaly_id == event.anomaly_id
        if fb.label == "real":
            if same_id:
                real = fb
            continue
        if same_id:
            return fb
        shares = bool(old.members & event.members)
        grace = dt.timedelta(days=grace_days if fb.label == "planned" else 1)
        overlaps = event.start <= old.end + grace and event.end >= old.start
        if shares and overlaps:
            return fb
        same_series = (old.dimension, old.dimension_value) == (event.dimension,
                                                                event.dimension_value)
        if (fb.label == "expected" and same_series and event.start > old.end
                and abs(event.impact) <= Decimal(str(repeat_factor)) * abs(old.impact)):
            return fb
    return real
