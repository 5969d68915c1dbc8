"""Decisions on recommendations, kept in ``state.db``: new, accepted, dismissed or done.

Tables (created on first use):

- ``recommendation_decisions``: the latest decision per recommendation id, with who, when,
  the comment and what the recommendation said then (current, recommended, savings);
- ``recommendation_decision_log``: every decision ever made, in order.

A decision holds while the recommendation's evidence is the same. It *changes materially*
when the current or the recommended value differs from the one decided on, or when the
monthly savings moved by more than ``material_change`` (20%) of the decided savings (in
either direction). Then the status shown is ``new`` again (a dismissed recommendation
stays dismissed until then), and the evidence says why it came back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from finops.errors import BadInputError
from finops.state import State, now_utc
from models.rightsizing.base import STATUSES

TABLES: Final = (
    """CREATE TABLE IF NOT EXISTS recommendation_decisions (
    recommendation_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('new', 'accepted', 'dismissed', 'done')),
    who TEXT,
    comment TEXT,
    decided_at TEXT NOT NULL,
    current TEXT,
    recommended TEXT,
    monthly_savings TEXT NOT NULL,
    currency TEXT
)""",
    """CREATE TABLE IF NOT EXISTS recommendation_decision_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    recommendation_id TEXT NOT NULL,
    status TEXT NOT NULL,
    who TEXT,
    comment TEXT,
    decided_at TEXT NOT NULL,
    current TEXT,
    recommended TEXT,
    monthly_savings TEXT NOT NULL
)""",
)


@dataclass(frozen=True)
class Decision:
    recommendation_id: str
    kind: str
    resource_id: str
    status: str
    who: str | None
    comment: str | None
    decided_at: str
    current: str | None
    recommended: str | None
    monthly_savings: Decimal
    currency: str | None


def ensure_tables(state: State) -> None:
    with state.tx() as db:
        for sql in TABLES:
            db.execute(sql)


def _decision(row: Mapping[str, Any]) -> Decision:
    return Decision(row["recommendation_id"], row["kind"], row["resource_id"], row["status"],
                    row["who"], row["comment"], row["decided_at"], row["current"], row["recommended"],
                    Decimal(row["monthly_savings"]), row["currency"])


def load_decisions(state: State) -> dict[str, Decision]:
    ensure_tables(state)
    rows = state.db.execute("SELECT * FROM recommendation_decisions").fetchall()
    return {r["recommendation_id"]: _decision(r) for r in rows}


def decision_log(state: State, recommendation_id: str | None = None) -> list[dict[str, Any]]:
    ensure_tables(state)
    sql = "SELECT * FROM recommendation_decision_log"
    args: tuple[str, ...] = ()
    if recommendation_id:
        sql += " WHERE recommendation_id = ?"
        args = (recommendation_id,)
    return [dict(r) for r in state.db.execute(sql + " ORDER BY seq", args).fetchall()]


def record_decision(state: State, rec: Mapping[str, Any], status: str, *, who: str | None,
                    comment: str | None) -> Decision:
    """Record ``status`` for the recommendation ``rec`` (a row of the recommendations dataset)."""
    if status not in STATUSES:
        raise BadInputError(f"status {status!r} is not one of {', '.join(STATUSES)}",
                            hint="Use --status accepted, dismissed or done.")
    ensure_tables(state)
    when = now_utc()
    savings = str(rec["monthly_savings"])
    with state.tx() as db:
        db.execute(
            "INSERT OR REPLACE INTO recommendation_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec["recommendation_id"], rec["kind"], rec["resource_id"], status, who, comment, when,
             rec["current"], rec["recommended"], savings, rec.get("currency")),
        )
        db.execute(
            "INSERT INTO recommendation_decision_log (recommendation_id, status, who, comment,"
            " decided_at, current, recommended, monthly_savings) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (rec["recommendation_id"], status, who, comment, when, rec["current"], rec["recommended"],
             savings),
        )
    return load_decisions(state)[rec["recommendation_id"]]


def material_change(decision: Decision, current: str | None, recommended: str | None,
                    monthly_savings: Decimal, threshold: float) -> str | None:
    """Why the recommendation differs materially from what was decided, or None."""
    if (decision.current or "") != (current or ""):
        return f"current changed from {decision.current} to {current}"
    if (decision.recommended or "") != (recommended or ""):
        return f"recommended changed from {decision.recommended} to {recommended}"
    old = decision.monthly_savings
    limit = abs(old) * Decimal(repr(threshold))
    if abs(monthly_savings - old) > limit:
        return f"monthly savings moved from {old} to {monthly_savings} (more than {threshold:.0%})"
    return None


def effective_status(decision: Decision | None, current: str | None, recommended: str | None,
                     monthly_savings: Decimal, threshold: float) -> tuple[str, str | None]:
    """(status to show, why a decision no longer applies)."""
    if decision is None:
        return "new", None
    why = material_change(decision, current, recommended, monthly_savings, threshold)
    if why is not None:
        return "new", f"{decision.status} by {decision.who or 'someone'} at {decision.decided_at}; {why}"
    return decision.status, None
