"""Snowflake size and auto-suspend, BigQuery editions break-even, and commitment purchase,
each on fixtures whose answer is worked out by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from finops.state import open_state
from finops.warehouse import Warehouse
from models.rightsizing.commitments import (
    best_level,
    commitment_purchases,
    savings_at,
    select_bill,
    utilisation,
)
from models.rightsizing.run import build_recommendations, run_recommendations
from models.rightsizing.settings import RightsizingSettings
from models.rightsizing.warehouses import (
    bigquery_editions,
    billed_seconds,
    busy_blocks,
    infer_suspend,
    snowflake_warehouses,
)
from tests.models.billing_rows import write_billing

T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
S = RightsizingSettings()


def _queries(name: str = "WH_A", size: str = "Medium", n: int = 10, every_s: int = 900,
             exec_ms: int = 60_000, queued_ms: int = 0) -> pl.DataFrame:
    ends = [T0 + dt.timedelta(seconds=i * every_s + exec_ms / 1000) for i in range(n)]
    return pl.DataFrame({
        "warehouse_name": [name] * n, "start_time": [e - dt.timedelta(milliseconds=exec_ms) for e in ends],
        "end_time": ends, "execution_time": [exec_ms] * n, "queued_time": [queued_ms] * n,
        "warehouse_size": [size] * n,
    })


def test_billed_seconds_model() -> None:
    bs, be = busy_blocks(np.array([0.0, 30.0, 1000.0]), np.array([60.0, 90.0, 1010.0]))
    assert (bs.tolist(), be.tolist()) == ([0.0, 1000.0], [90.0, 1010.0])
    # Gap 910 s > 600: two runs, 90 + 600 and max(60, 10 + 600); at 60 s: 150 and 70.
    assert billed_seconds(bs, be, 600) == 690 + 610
    assert billed_seconds(bs, be, 60) == 150 + 70
    # Gap ≤ S: one run from 0 to 1010, plus S.
    assert billed_seconds(bs, be, 1000) == 2010
    assert infer_suspend(bs, be, 690 + 610) == 600


def test_snowflake_auto_suspend_and_size() -> None:
    recs = {r.kind: r for r in snowflake_warehouses(
        _queries(), settings=S, credit_price=Decimal("3"), window=(T0, T0 + dt.timedelta(hours=24)))}
    # Ten 60 s queries 15 min apart on a Medium (4 credits/h). At the default 600 s each query
    # bills 660 s: 6600 s. At 60 s: 10 × 120 = 1200 s. Saved 5400 s = 6 credits = $18 a day,
    # × 730 / 24 = $547.50 a month.
    auto = recs["warehouse_auto_suspend"]
    assert (auto.current, auto.recommended) == ("auto_suspend 600s", "auto_suspend 60s")
    assert auto.monthly_savings == Decimal("547.50")
    assert auto.evidence["auto_suspend_source"] == "assumed (Snowflake default)"
    assert auto.evidence["gaps_longer_than_target"] == 9
    # Load 600 / 6600 < 0.5, nothing queued: one size down; worst case (6600 − 600) s × 2 credits/h
    # = 3.333 credits = $10 a day → $304.17 a month.
    size = recs["warehouse_size"]
    assert (size.current, size.recommended) == ("Medium", "Small")
    assert size.monthly_savings == Decimal("304.17")


def test_snowflake_busy_or_queued_warehouses_keep_their_size() -> None:
    window = (T0, T0 + dt.timedelta(hours=24))
    queued = snowflake_warehouses(_queries(queued_ms=5_000), settings=S, window=window)
    assert "warehouse_size" not in {r.kind for r in queued}
    busy = _queries(n=96, every_s=60, exec_ms=3_600_000)  # hour-long queries, 35 running at once
    assert "warehouse_size" not in {r.kind for r in snowflake_warehouses(busy, settings=S, window=window)}
    xs = snowflake_warehouses(_queries(size="X-Small"), settings=S, window=window)
    assert "warehouse_size" not in {r.kind for r in xs}
    # Already at 60 s: nothing to gain from auto-suspend.
    short = snowflake_warehouses(_queries(), settings=S, window=window, auto_suspend={"WH_A": 60})
    assert "warehouse_auto_suspend" not in {r.kind for r in short}


def test_bigquery_break_even() -> None:
    jobs = pl.DataFrame({
        "project": ["p-scan", "p-scan", "p-slots"], "start_time": [T0, T0, T0],
        "bytes_billed": [2**40 // 2, 2**40 // 2, 2**40 // 100],
        "slot_ms": [18_000_000, 18_000_000, 360_000_000],
        "pricing_model": ["on_demand", "on_demand", "editions"],
    })
    day = (T0, T0 + dt.timedelta(hours=24))
    recs = {r.resource_id: r for r in bigquery_editions(jobs, settings=S, window=day)}
    # p-scan: 1 TiB on demand = $6.25; 10 slot-hours × $0.06 × 1.5 = $0.90. $5.35 a day → $162.73.
    scan = recs["p-scan"]
    assert (scan.current, scan.recommended) == ("on-demand", "editions (Enterprise, autoscaling)")
    assert scan.monthly_savings == Decimal("162.73")
    assert scan.evidence["break_even_slot_hours_per_tib"] == "69.444"
    # p-slots on editions: 100 slot-hours × 0.09 = $9 vs 0.01 TiB × 6.25 = $0.0625 → on demand.
    slots = recs["p-slots"]
    assert slots.recommended == "on-demand"
    assert slots.monthly_savings == Decimal("271.85")  # (9 − 0.0625) × 730 / 24 = 271.848...


def _bill_hour(h: int, cost: str, *, pricing: str = "Standard", status: str | None = None,
               listed: str | None = None, category: str = "Usage") -> dict[str, Any]:
    start = T0 + dt.timedelta(hours=h)
    return {
        "BilledCost": Decimal(cost), "EffectiveCost": Decimal(cost), "ListCost": Decimal(listed or cost),
        "ContractedCost": Decimal(cost), "BillingAccountId": "payer", "BillingCurrency": "USD",
        "BillingPeriodStart": dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
        "BillingPeriodEnd": dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        "ChargePeriodStart": start, "ChargePeriodEnd": start + dt.timedelta(hours=1),
        "ChargeCategory": category, "ServiceName": "Amazon Elastic Compute Cloud",
        "ServiceCategory": "Compute",
        "SubAccountId": "111", "ResourceId": f"i-{h % 3}", "ProviderName": "AWS", "PublisherName": "AWS",
        "InvoiceIssuerName": "AWS", "PricingCategory": pricing, "RegionId": "us-east-1",
        "CommitmentDiscountId": "sp-1" if status else None, "CommitmentDiscountStatus": status,
        "CommitmentDiscountType": "Savings Plan" if status else None, "__source": "t",
    }


def test_commitment_purchase_maximises_savings(tmp_path: Path) -> None:
    # 24 h at $10/h on demand, then 24 h at $2/h; 28% off. S(x) = Σ min(OD, x) − 48·x·0.72:
    # S(2) = 96 − 69.12 = 26.88; S(10) = 288 − 345.6 < 0. Commit 2 × 0.72 = $1.44/h.
    wh = Warehouse(tmp_path)
    write_billing(wh, [_bill_hour(h, "10" if h < 24 else "2") for h in range(48)])
    bill = select_bill(wh.scan("billing"), T0, T0 + dt.timedelta(days=14))
    recs = commitment_purchases(bill, start=T0, end=T0 + dt.timedelta(days=14), settings=S)
    assert len(recs) == 1
    rec = recs[0]
    assert rec.recommended == "Compute Savings Plan 1.440/h, 12 months"
    assert rec.evidence["savings_over_window"] == "26.88"
    assert rec.monthly_savings == Decimal("408.80")  # 26.88 × 730 / 48
    assert rec.evidence["break_even_utilisation"] == 0.72
    assert rec.evidence["expected_utilisation"] == 1.0
    assert rec.evidence["discount_source"] == "setting"
    # No other commitment saves more (a scan of every cent per hour up to $10).
    series = [Decimal(10)] * 24 + [Decimal(2)] * 24
    best = max(savings_at(series, Decimal(c) / 100, 0.28) for c in range(1, 1000))
    assert best == Decimal("26.88")


def test_commitment_coverage_utilisation_and_discount_from_the_bill(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path)
    rows = [_bill_hour(h, "5") for h in range(48)]
    # An existing plan: covered usage at $6 effective for $10 list (40% off), some of it unused.
    rows += [_bill_hour(h, "6", pricing="Committed", status="Used", listed="10") for h in range(48)]
    rows += [_bill_hour(h, "2", pricing="Committed", status="Unused", category="Purchase") for h in range(48)]
    write_billing(wh, rows)
    bill = select_bill(wh.scan("billing"), T0, T0 + dt.timedelta(days=2))
    util = utilisation(bill)
    assert util.select("CommitmentDiscountId", "utilisation").rows() == [("sp-1", 0.75)]  # 6 / (6 + 2)
    rec = commitment_purchases(bill, start=T0, end=T0 + dt.timedelta(days=2), settings=S)[0]
    assert rec.evidence["discount_source"] == "bill"
    assert rec.evidence["discount"] == 0.4
    assert rec.evidence["coverage_now"] == round(480 / (480 + 240), 4)
    x, exact = best_level([Decimal(5)] * 48, 0.4)
    assert (x, exact) == (Decimal("5.0"), Decimal("96.0"))  # 240 − 48 × 5 × 0.6
    assert rec.evidence["commitment_per_hour"] == "3.000"
    assert rec.monthly_savings == Decimal("1460.00")  # 96 × 730 / 48


def test_warehouse_recommendations_from_the_queries_dataset(tmp_path: Path) -> None:
    """The stage reads Snowflake queries from the ``queries`` dataset (query_store schema)."""
    wh = Warehouse(tmp_path)
    q = _queries().rename({"warehouse_name": "warehouse", "execution_time": "execution_ms",
                           "queued_time": "queued_ms"}).with_columns(
        pl.col("execution_ms").cast(pl.Int64), pl.col("queued_ms").cast(pl.Int64))
    wh.replace_partition("queries", {"source": "snowflake", "month": "2026-05"}, q, run_id="t")
    wh.drop_staging("t")
    kinds = {r.kind for r in build_recommendations(wh, S).recommendations}
    assert kinds == {"warehouse_auto_suspend", "warehouse_size"}
    state = open_state(tmp_path)
    _, frame = run_recommendations(wh, state, S)
    state.close()
    assert frame.height == 2
