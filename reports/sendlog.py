"""The send log in ``state.db``: one row per (report, week, recipient).

A recipient is claimed (``sending``) before the message goes out and marked ``sent`` or
``failed`` after, so a re-run for the same week skips whoever already has the report, and
two runs at the same time do not both send. A claim left by a process that died is taken
over (the message may then arrive twice: at least once, never silently lost).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from finops.state import State, _pid_alive, now_utc

SCHEMA = """
CREATE TABLE IF NOT EXISTS report_sends (
    report TEXT NOT NULL,
    week TEXT NOT NULL,
    recipient TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    sends INTEGER NOT NULL DEFAULT 0,
    message_id TEXT,
    error TEXT,
    pid INTEGER,
    host TEXT,
    updated_at TEXT NOT NULL,
    sent_at TEXT,
    PRIMARY KEY (report, week, recipient)
);
"""


@dataclass(frozen=True)
class SendRecord:
    report: str
    week: str
    recipient: str
    status: str
    attempts: int
    sends: int
    message_id: str | None
    error: str | None
    updated_at: str
    sent_at: str | None


class SendLog:
    def __init__(self, state: State) -> None:
        self.state = state
        state.db.executescript(SCHEMA)

    def get(self, report: str, week: str, recipient: str) -> SendRecord | None:
        row = self.state.db.execute(
            "SELECT report, week, recipient, status, attempts, sends, message_id, error, updated_at,"
            " sent_at FROM report_sends WHERE report=? AND week=? AND recipient=?",
            (report, week, recipient.lower()),
        ).fetchone()
        return SendRecord(*row) if row else None

    def claim(self, report: str, week: str, recipient: str, *, force: bool = False) -> str | None:
        """Claim the send; None when claimed, else why not (already sent, being sent)."""
        host, pid = os.uname().nodename, os.getpid()
        with self.state.tx() as db:
            row = db.execute(
                "SELECT status, pid, host, sent_at FROM report_sends"
                " WHERE report=? AND week=? AND recipient=?",
                (report, week, recipient.lower()),
            ).fetchone()
            if row is not None:
                if row["status"] == "sent" and not force:
                    return f"already sent at {row['sent_at']}"
                if (row["status"] == "sending" and row["pid"] != pid and row["host"] == host
                        and _pid_alive(int(row["pid"]))):
                    return f"being sent by process {row['pid']}"
            db.execute(
                "INSERT INTO report_sends (report, week, recipient, status, pid, host, updated_at)"
                " VALUES (?, ?, ?, 'sending', ?, ?, ?)"
                " ON CONFLICT (report, week, recipient) DO UPDATE SET status='sending',"
                " pid=excluded.pid, host=excluded.host, updated_at=excluded.updated_at, error=NULL",
                (report, week, recipient.lower(), pid, host, now_utc()),
            )
        return None

    def mark_sent(self, report: str, week: str, recipient: str, *, message_id: str,
                  attempts: int) -> None:
        now = now_utc()
        with self.state.tx() as db:
            db.execute(
                "UPDATE report_sends SET status='sent', attempts=?, sends=sends+1, message_id=?,"
                " error=NULL, updated_at=?, sent_at=? WHERE report=? AND week=? AND recipient=?",
                (attempts, message_id, now, now, report, week, recipient.lower()),
            )

    def mark_failed(self, report: str, week: str, recipient: str, *, error: str,
                    attempts: int) -> None:
        with self.state.tx() as db:
            db.execute(
                "UPDATE report_sends SET status='failed', attempts=?, error=?, updated_at=?"
                " WHERE report=? AND week=? AND recipient=?",
                (attempts, error[:2000], now_utc(), report, week, recipient.lower()),
            )

    def records(self, report: str | None = None, week: str | None = None) -> list[SendRecord]:
        sql = ("SELECT report, week, recipient, status, attempts, sends, message_id, error,"
               " updated_at, sent_at FROM report_sends WHERE (? IS NULL OR report=?)"
               " AND (? IS NULL OR week=?) ORDER BY week, recipient")
        rows = self.state.db.execute(sql, (report, report, week, week)).fetchall()
        return [SendRecord(*r) for r in rows]
