"""A collect killed with SIGKILL at any moment leaves every partition complete: the old
data or the new, never a mix, and the run is marked failed by the next command."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from finops.warehouse import Warehouse
from tests.core.cli import finops
from tests.core.focus_files import row

ROWS = 300_000


def big_focus_csv(path: Path, cents: int) -> Decimal:
    """A one-period FOCUS file of ROWS rows, each costing ``cents``; returns its total."""
    template = row(period="2026-04", cost="0")
    df = pl.DataFrame({k: [v] for k, v in template.items()}).select(
        pl.all().repeat_by(ROWS).explode()
    )
    cost = f"{cents // 100}.{cents % 100:02d}"
    df = df.with_columns(
        pl.lit(cost).alias("BilledCost"), pl.lit(cost).alias("EffectiveCost"),
        (pl.lit("i-") + pl.int_range(ROWS).cast(pl.String)).alias("ResourceId"),
    )
    df.write_csv(path)
    return Decimal(cents) * ROWS / 100


def running_run(home: Path) -> bool:
    db = home / "state.db"
    if not db.exists():
        return False
    try:
        with sqlite3.connect(db, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM runs WHERE status='running'").fetchone()[0] > 0
    except sqlite3.OperationalError:
        return False


def period_total(home: Path) -> Decimal:
    df = Warehouse(home).scan("billing", where={"source": "big"}).select(
        pl.col("BilledCost").sum(), pl.len()
    ).collect()
    total, rows = df.row(0)
    assert rows == ROWS, f"partition has {rows} rows, not {ROWS}: it was left half-written"
    return Decimal(total)


@pytest.mark.parametrize("delay", [0.2, 0.8, 1.6])
def test_sigkill_mid_collect_keeps_previous_partition(tmp_path: Path, delay: float) -> None:
    home = tmp_path / "wh"
    old_total = big_focus_csv(tmp_path / "old.csv", 101)
    new_total = big_focus_csv(tmp_path / "new.csv", 202)
    finops("collect", "focus", "--path", tmp_path / "old.csv", "--home", home, "--source", "big",
           check=True)
    assert period_total(home) == old_total

    proc = subprocess.Popen(
        [sys.executable, "-m", "finops.cli", "collect", "focus", "--path",
         str(tmp_path / "new.csv"), "--home", str(home), "--source", "big"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not running_run(home):
            assert proc.poll() is None, "the collect ended before it could be interrupted"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)

    # Whatever the moment, the partition is whole: the old bill or the new one.
    assert period_total(home) in (old_total, new_total)
    # The next command (any command) marks the interrupted run failed.
    finops("showback", "--period", "2026-04", "--by", "tenant", "--home", home)
    with sqlite3.connect(home / "state.db") as conn:
        statuses = conn.execute(
            "SELECT status, message FROM runs WHERE stage='collect' ORDER BY started_at, rowid"
        ).fetchall()
    assert statuses[0][0] == "succeeded"
    assert statuses[-1][0] in ("failed", "succeeded")
    if proc.returncode == -signal.SIGKILL:
        assert statuses[-1] == ("failed", "interrupted: the process ended before the run finished")
        # Its half-written staging files are cleared away too.
        assert not any((home / "_staging").iterdir())
    assert not any(s == "running" for s, _ in statuses)
    # A later collect still works and replaces the partition in full.
    finops("collect", "focus", "--path", tmp_path / "new.csv", "--home", home, "--source", "big",
           check=True)
    assert period_total(home) == new_total
