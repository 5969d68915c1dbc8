"""CUR 2.0 rows for tests, with every line item type whose mapping matters.

The expected totals below are computed by hand from these rows (see each comment), so a
test comparing the warehouse with them checks the mapping, not the code against itself.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

SP = "arn:aws:savingsplans::111111111111:savingsplan/sp-1"
RI = "arn:aws:ec2:us-east-1:111111111111:reserved-instances/ri-1"

# BilledCost 2026-01: 10 + 8 - 8 + 6 + 0 + 3.5 + 100 + 2 - 1.5 - 0.75 - 0.4 + 1.1 = 119.95
# EffectiveCost 2026-01: 10 + 5 + 0 + 1 + 3 + 0.5 + 0 + 2 - 1.5 - 0.75 - 0.4 + 1.1 = 19.95
EXPECTED = {
    "2026-01": (Decimal("119.95"), Decimal("19.95")),
    "2026-02": (Decimal("21.00"), Decimal("21.00")),
}
RESTATED_2026_01 = (Decimal("121.95"), Decimal("21.95"))  # i-aaa 10.00 → 12.00


def _line(period: str, kind: str, cost: str, **extra: Any) -> dict[str, Any]:
    year, month = (int(p) for p in period.split("-"))
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    day = start + dt.timedelta(days=2)
    base: dict[str, Any] = {
        "identity_line_item_id": f"{period}-{kind}-{extra.get('line_item_resource_id', '')}",
        "bill_payer_account_id": "111111111111", "bill_payer_account_name": "Payer",
        "bill_billing_period_start_date": start, "bill_billing_period_end_date": end,
        "bill_invoice_id": "INV-1", "bill_invoicing_entity": "Amazon Web Services, Inc.",
        "line_item_usage_account_id": "000222222222", "line_item_usage_account_name": "prod",
        "line_item_line_item_type": kind, "line_item_usage_start_date": day,
        "line_item_usage_end_date": day + dt.timedelta(hours=1),
        "line_item_product_code": "AmazonEC2", "line_item_usage_type": "BoxUsage:m5.large",
        "line_item_usage_amount": 1.0, "line_item_currency_code": "USD",
        "line_item_unblended_rate": cost, "line_item_unblended_cost": cost,
        "line_item_line_item_description": f"{kind} line", "line_item_resource_id": None,
        "line_item_availability_zone": "us-east-1a", "line_item_legal_entity": "Amazon Web Services, Inc.",
        "product_product_name": "Amazon Elastic Compute Cloud", "product_region_code": "us-east-1",
        "product_location": "US East (N. Virginia)", "product_sku": "SKU1", "pricing_unit": "Hrs",
        "pricing_term": "OnDemand", "pricing_rate_id": "1", "pricing_public_on_demand_cost": cost,
        "pricing_public_on_demand_rate": cost,
        "savings_plan_savings_plan_a_r_n": None, "savings_plan_savings_plan_effective_cost": None,
        "savings_plan_total_commitment_to_date": None, "savings_plan_used_commitment": None,
        "reservation_reservation_a_r_n": None, "reservation_effective_cost": None,
        "reservation_unused_amortized_upfront_fee_for_billing_period": None,
        "reservation_unused_recurring_fee": None,
        "resource_tags": {}, "product": {"servicecode": "AmazonEC2"}, "cost_category": {},
    }
    base.update(extra)
    return base


def rows(period: str, *, restated: bool = False) -> list[dict[str, Any]]:
    if period == "2026-02":
        return [
            _line(period, "Usage", "20.00", line_item_resource_id="i-aaa",
                  resource_tags={"user_tenant": "acme"}),
            _line(period, "Tax", "1.00", line_item_product_code="AmazonEC2"),
        ]
    first = "12.00" if restated else "10.00"
    return [
        _line(period, "Usage", first, line_item_resource_id="i-aaa",
              resource_tags={"user_tenant": "acme", "user_team": "data"}),
        _line(period, "SavingsPlanCoveredUsage", "8.00", line_item_resource_id="i-bbb",
              savings_plan_savings_plan_a_r_n=SP, savings_plan_savings_plan_effective_cost="5.00",
              resource_tags={"user_tenant": "globex"}),
        _line(period, "SavingsPlanNegation", "-8.00", line_item_resource_id="i-bbb",
              savings_plan_savings_plan_a_r_n=SP, resource_tags={"user_tenant": "globex"}),
        _line(period, "SavingsPlanRecurringFee", "6.00", savings_plan_savings_plan_a_r_n=SP,
              savings_plan_total_commitment_to_date="6.00", savings_plan_used_commitment="5.00",
              line_item_product_code="ComputeSavingsPlans", product_product_name="Savings Plans"),
        _line(period, "DiscountedUsage", "0.00", line_item_resource_id="i-ccc",
              reservation_reservation_a_r_n=RI, reservation_effective_cost="3.00"),
        _line(period, "RIFee", "3.50", reservation_reservation_a_r_n=RI,
              reservation_unused_amortized_upfront_fee_for_billing_period="0.20",
              reservation_unused_recurring_fee="0.30"),
        _line(period, "Fee", "100.00", reservation_reservation_a_r_n=RI),
        _line(period, "Tax", "2.00"),
        _line(period, "Credit", "-1.50"),
        _line(period, "Refund", "-0.75"),
        _line(period, "EdpDiscount", "-0.40"),
        _line(period, "Usage", "1.10", line_item_resource_id="i-spot", pricing_term="Spot",
              line_item_usage_type="SpotUsage:m5.large"),
    ]


def cur2_frame(period: str, *, restated: bool = False) -> pl.DataFrame:
    """As Data Exports writes CUR 2.0 Parquet: costs double, timestamps typed, maps."""
    df = pl.DataFrame(rows(period, restated=restated), infer_schema_length=None)
    money = [c for c in df.columns if c.endswith(("_cost", "_rate", "_to_date", "_commitment", "_fee",
                                                   "_period"))
             and df.schema[c] == pl.String]
    df = df.with_columns(pl.col(c).cast(pl.Float64) for c in money)
    return df.with_columns(
        pl.col("resource_tags").map_elements(
            lambda s: [{"key": k, "value": v} for k, v in s.items() if v is not None],
            return_dtype=pl.List(pl.Struct({"key": pl.String, "value": pl.String}))
        ).cast(pl.Map(pl.String, pl.String)),
        pl.col("product").map_elements(
            lambda s: [{"key": k, "value": v} for k, v in s.items() if v is not None],
            return_dtype=pl.List(pl.Struct({"key": pl.String, "value": pl.String}))
        ).cast(pl.Map(pl.String, pl.String)),
    ).drop("cost_category")


def write_cur2(path: Path, period: str, *, restated: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cur2_frame(period, restated=restated).write_parquet(path)
    return path
