"""Typed FOCUS rows written straight into a warehouse, for model tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import polars as pl

from finops.focus import SCHEMA
from finops.ingest import ensure_focus_columns
from finops.warehouse import Warehouse


def line(day: str, cost: str, *, tags: dict[str, str] | None = None, effective: str | None = None,
         service: str = "Amazon EC2", account: str = "111", resource: str | None = "r-1",
         category: str = "Usage", currency: str = "USD", provider: str = "AWS",
         pricing: str | None = "Standard", status: str | None = None, charge_class: str | None = None,
         region: str = "us-east-1", source: str = "t") -> dict[str, Any]:
    d = dt.date.fromisoformat(day)
    start = dt.datetime(d.year, d.month, 1, tzinfo=dt.UTC)
    end = dt.datetime(d.year + d.month // 12, d.month % 12 + 1, 1, tzinfo=dt.UTC)
    charge = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
    return {
        "BilledCost": Decimal(cost), "EffectiveCost": Decimal(effective if effective is not None else cost),
        "ListCost": Decimal(cost), "ContractedCost": Decimal(cost),
        "BillingAccountId": "payer", "BillingCurrency": currency,
        "BillingPeriodStart": start, "BillingPeriodEnd": end,
        "ChargePeriodStart": charge, "ChargePeriodEnd": charge + dt.timedelta(days=1),
        "ChargeCategory": category, "ChargeClass": charge_class, "ServiceName": service,
        "ServiceCategory": "Compute", "SubAccountId": account, "ResourceId": resource,
        "ProviderName": provider, "PublisherName": provider, "InvoiceIssuerName": provider,
        "PricingCategory": pricing, "CommitmentDiscountStatus": status,
        "CommitmentDiscountId": "cd-1" if status else None, "RegionId": region,
        "Tags": tags, "__source": source,
    }


def write_billing(wh: Warehouse, rows: Sequence[dict[str, Any]]) -> None:
    frame = pl.DataFrame(
        [dict(r) for r in rows],
        schema={**{k: SCHEMA[k] for k in rows[0] if k in SCHEMA}, "__source": pl.String},
    )
    frame = frame.with_row_index("x_SourceRow", offset=1).with_columns(
        pl.col("x_SourceRow").cast(pl.Int64), pl.lit("test").alias("x_SourceFile"),
        pl.col("BillingPeriodStart").dt.strftime("%Y-%m").alias("__period"),
    )
    for (source, period), part in frame.group_by("__source", "__period"):
        typed = ensure_focus_columns(part.drop("__source", "__period").lazy()).collect()
        wh.replace_partition("billing", {"source": str(source), "billing_period": str(period)}, typed,
                             run_id="test")
    wh.drop_staging("test")
