"""``state.db``: the log of runs and what each wrote, collector cursors, and decisions.

Every command opens it through :func:`open_state`, which first marks as failed any run
left ``running`` by a process that no longer exists (killed, crashed, powered off).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    stage TEXT NOT NULL,
    source TEXT,
    status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    rows_in INTEGER,
    rows_out INTEGER,
    rows_rejected INTEGER,
    inputs TEXT,
    message TEXT
);
CREATE INDEX IF NOT EXISTS runs_stage ON runs (stage, started_at);
CREATE TABLE IF NOT EXISTS run_totals (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    period TEXT NOT NULL,
    currency TEXT NOT NULL,
    rows INTEGER NOT NULL,
    billed_cost TEXT NOT NULL,
    effective_cost TEXT NOT NULL,
    rejected_rows INTEGER NOT NULL DEFAULT 0,
    rejected_billed_cost TEXT NOT NULL DEFAULT '0',
    checksum TEXT,
    PRIMARY KEY (run_id, period, currency)
);
CREATE TABLE IF NOT EXISTS cursors (
    collector TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (collector, key)
);
"""


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is as dead as a vanished one.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class PeriodTotal:
    period: str
    currency: str
    rows: int
    billed_cost: Decimal
    effective_cost: Decimal
    rejected_rows: int = 0
    rejected_billed_cost: Decimal = Decimal(0)
    checksum: str | None = None


class State:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---- runs ---------------------------------------------------------------------
    def fail_interrupted_runs(self) -> list[str]:
        host = os.uname().nodename
        stale = [
            row["run_id"]
            for row in self.db.execute(
                "SELECT run_id, pid, host FROM runs WHERE status = 'running'"
            ).fetchall()
            if row["host"] == host and not _pid_alive(row["pid"])
        ]
        with self.tx() as db:
            for run_id in stale:
                db.execute(
                    "UPDATE runs SET status='failed', ended_at=?, message=? WHERE run_id=?",
                    (now_utc(), "interrupted: the process ended before the run finished", run_id),
                )
        return stale

    def start_run(self, stage: str, source: str | None, inputs: Sequence[str] = ()) -> str:
        run_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        with self.tx() as db:
            db.execute(
                "INSERT INTO runs (run_id, stage, source, status, pid, host, started_at, inputs)"
                " VALUES (?, ?, ?, 'running', ?, ?, ?, ?)",
                (run_id, stage, source, os.getpid(), os.uname().nodename, now_utc(),
                 json.dumps(list(inputs))),
            )
        return run_id

    def finish_run(
        self,
        run_id: str,
        *,
        status: str,
        rows_in: int | None = None,
        rows_out: int | None = None,
        rows_rejected: int | None = None,
        totals: Sequence[PeriodTotal] = (),
        message: str | None = None,
    ) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE runs SET status=?, ended_at=?, rows_in=?, rows_out=?, rows_rejected=?,"
                " message=? WHERE run_id=?",
                (status, now_utc(), rows_in, rows_out, rows_rejected, message, run_id),
            )
            db.executemany(
                "INSERT OR REPLACE INTO run_totals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (run_id, t.period, t.currency, t.rows, str(t.billed_cost),
                     str(t.effective_cost), t.rejected_rows, str(t.rejected_billed_cost), t.checksum)
                    for t in totals
                ],
            )

    def runs(self, *, stage: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs"
        args: tuple[Any, ...] = ()
        if stage:
            sql += " WHERE stage = ?"
            args = (stage,)
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        return [dict(r) for r in self.db.execute(sql, (*args, limit)).fetchall()]

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    def run_totals(self, run_id: str) -> list[PeriodTotal]:
        rows = self.db.execute(
            "SELECT * FROM run_totals WHERE run_id = ? ORDER BY period, currency", (run_id,)
        ).fetchall()
        return [
            PeriodTotal(r["period"], r["currency"], r["rows"], Decimal(r["billed_cost"]),
                        Decimal(r["effective_cost"]), r["rejected_rows"],
                        Decimal(r["rejected_billed_cost"]), r["checksum"])
            for r in rows
        ]

    def latest_run_id(self) -> str | None:
        row = self.db.execute(
            "SELECT run_id FROM runs WHERE status='succeeded' ORDER BY ended_at DESC, rowid DESC LIMIT 1"
        ).fetchone()
        return str(row["run_id"]) if row else None

    # ---- cursors ------------------------------------------------------------------
    def get_cursor(self, collector: str, key: str) -> str | None:
        row = self.db.execute(
            "SELECT value FROM cursors WHERE collector=? AND key=?", (collector, key)
        ).fetchone()
        return str(row["value"]) if row else None

    def set_cursor(self, collector: str, key: str, value: str) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?)",
                (collector, key, value, now_utc()),
            )


def open_state(home: Path) -> State:
    state = State(Path(home) / "state.db")
    for run_id in state.fail_interrupted_runs():
        # What a killed run staged is useless now; the data it replaced is untouched.
        shutil.rmtree(Path(home) / "_staging" / run_id, ignore_errors=True)
    return state
