"""`finops demo --no-serve` end to end: generate, run every stage, and show real numbers
that reconcile to the generated bill; a second run gives the same numbers."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import polars as pl

from finops.warehouse import Warehouse
from tests.core.cli import finops


def test_demo_runs_every_stage_and_reconciles(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    proc = finops("demo", "--no-serve", "--home", home, check=True, timeout=900)
    for stage in ("allocate: ok", "anomalies: ok", "forecast: ok"):
        assert stage in proc.stderr
    assert (home / "allocation.yaml").exists()
    billing = Warehouse(home).scan("billing").filter(pl.col("billing_period") == "2026-10").group_by(
        "BillingCurrency").agg(pl.col("EffectiveCost").sum()).collect()
    expected = {c: v.quantize(Decimal("0.01")) for c, v in billing.iter_rows()}
    first = finops("showback", "--period", "2026-10", "--by", "tenant", "--home", home,
                   "--format", "json", check=True).stdout
    rows = json.loads(first)
    got: dict[str, Decimal] = {}
    for row in rows:
        got[row["currency"]] = got.get(row["currency"], Decimal(0)) + Decimal(row["effective_cost"])
    # Every tenant row is rounded to the cent, so the sum may differ by half a cent a row.
    for currency, total in expected.items():
        assert abs(got[currency] - total) <= Decimal("0.005") * len(rows)
    tenants = {r["tenant"] for r in rows}
    assert {"acme", "globex", "hooli", "initech", "unallocated"} <= tenants
    unallocated = sum(Decimal(r["effective_cost"]) for r in rows
                      if r["tenant"] == "unallocated" and r["currency"] == "USD")
    assert unallocated < expected["USD"] * Decimal("0.05")  # the pools place most shared cost

    finops("demo", "--no-serve", "--home", home, check=True, timeout=900)
    again = finops("showback", "--period", "2026-10", "--by", "tenant", "--home", home,
                   "--format", "json", check=True).stdout
    assert again == first
