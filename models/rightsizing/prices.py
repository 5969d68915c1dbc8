"""Prices actually paid, from the bill: EffectiveCost per resource-hour over the lookback.

For each ResourceId, over usage and credit rows (credits are discounts on the resource):

- ``hourly`` = Σ EffectiveCost of the rows billed by time (a unit naming hours: ``Hrs``,
  ``Hours``, ``vCPU-Hours``…, or none, as credits have) ÷ running hours, where running hours
  are Σ ConsumedQuantity of instance-hour rows (``Hrs``/``Hours``), or, when the bill has
  none (GCP bills vCPU-hours and GiB-hours), the hours its charge periods span;
- ``monthly`` = Σ EffectiveCost of every row × 730 ÷ the hours its charge periods span
  (storage, addresses: what the resource costs a month).

Data transfer (GB) and other per-unit charges on an instance are left out of its hourly
price: resizing does not change them. A resource is matched on its full id, then on the
id in lower case, then on its last path segment (``arn:…:db:name`` → ``name``) when that
is unique.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import polars as pl

from finops.warehouse import Warehouse

BILLING: Final = "billing"
HOURS_UNITS: Final = ("hrs", "hours", "hour", "hr", "h")
HOURS_PER_MONTH: Final = Decimal(730)
_TIME_UNIT = r"(?i)(hour|hrs\b|^h$|^hr$)"


@dataclass(frozen=True)
class PaidPrice:
    resource_id: str
    hourly: Decimal | None  # EffectiveCost per running hour (None: no time-billed rows)
    monthly: Decimal  # everything the resource costs, per 730 hours
    running_hours: float
    span_hours: float
    cost: Decimal
    currency: str
    committed_share: float  # share of instance-hours priced by a commitment


def short_id(resource_id: str) -> str:
    return re.split(r"[:/]", resource_id.rstrip("/"))[-1].lower()


def _empty() -> pl.DataFrame:
    return pl.DataFrame()


def bill_frame(wh: Warehouse, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Per ResourceId sums over [start, end) (see the module docstring)."""
    if not wh.has_data(BILLING):
        return _empty()
    lf = wh.scan(BILLING)
    names = lf.collect_schema().names()
    need = ["ResourceId", "ChargePeriodStart", "ChargePeriodEnd", "EffectiveCost", "ChargeCategory"]
    if any(n not in names for n in need):
        return _empty()
    def col(name: str, dtype: pl.DataType) -> pl.Expr:
        return pl.col(name) if name in names else pl.lit(None, dtype).alias(name)
    unit = col("ConsumedUnit", pl.String()).str.strip_chars().str.to_lowercase()
    qty = col("ConsumedQuantity", pl.Float64()).cast(pl.Float64)
    is_hours = unit.is_in(list(HOURS_UNITS)) & (pl.col("ChargeCategory") == "Usage")
    is_time = unit.is_null() | unit.str.contains(_TIME_UNIT)
    committed = col("PricingCategory", pl.String()) == "Committed"
    span = (pl.col("ChargePeriodEnd") - pl.col("ChargePeriodStart")).dt.total_seconds() / 3600.0
    rows = (
        lf.filter(pl.col("ResourceId").is_not_null()
                  & pl.col("ChargeCategory").is_in(["Usage", "Credit"])
                  & (pl.col("ChargePeriodStart") >= start) & (pl.col("ChargePeriodStart") < end))
        .with_columns(is_hours.fill_null(False).alias("_h"), is_time.fill_null(False).alias("_t"),
                      qty.alias("_q"), committed.fill_null(False).alias("_c"),
                      col("BillingCurrency", pl.String()).alias("_cur"))
    )
    sums = rows.group_by("ResourceId").agg(
        pl.col("EffectiveCost").filter(pl.col("_t")).sum().alias("time_cost"),
        pl.col("EffectiveCost").sum().alias("cost"),
        pl.col("_q").filter(pl.col("_h")).sum().alias("instance_hours"),
        pl.col("_q").filter(pl.col("_h") & pl.col("_c")).sum().alias("committed_hours"),
        pl.col("_t").any().alias("has_time"),
        pl.col("_cur").drop_nulls().mode().first().alias("currency"),
    )
    spans = (
        rows.select("ResourceId", "ChargePeriodStart", "ChargePeriodEnd").unique()
        .group_by("ResourceId").agg(span.sum().alias("span_hours"))
    )
    return sums.join(spans, on="ResourceId", how="left").collect(engine="streaming")


class BillPrices:
    """Look-ups of what each resource costs, from :func:`bill_frame`."""

    def __init__(self, frame: pl.DataFrame) -> None:
        self.by_id: dict[str, PaidPrice] = {}
        self.by_lower: dict[str, PaidPrice] = {}
        self.by_short: dict[str, PaidPrice] = {}
        short: dict[str, list[PaidPrice]] = {}
        if frame.is_empty():
            return
        for r in frame.iter_rows(named=True):
            span = float(r["span_hours"] or 0.0)
            inst = float(r["instance_hours"] or 0.0)
            running = inst if inst > 0 else span
            time_cost = r["time_cost"] or Decimal(0)
            cost = r["cost"] or Decimal(0)
            hourly = (Decimal(time_cost) / Decimal(repr(running))
                      if r["has_time"] and running > 0 else None)
            monthly = (Decimal(cost) * HOURS_PER_MONTH / Decimal(repr(span))) if span > 0 else Decimal(0)
            committed = float(r["committed_hours"] or 0.0) / inst if inst > 0 else 0.0
            price = PaidPrice(r["ResourceId"], hourly, monthly, running, span, Decimal(cost),
                              r["currency"] or "USD", committed)
            self.by_id[r["ResourceId"]] = price
            self.by_lower[r["ResourceId"].lower()] = price
            short.setdefault(short_id(r["ResourceId"]), []).append(price)
        self.by_short = {k: v[0] for k, v in short.items() if len(v) == 1}

    def get(self, resource_id: str) -> PaidPrice | None:
        return (self.by_id.get(resource_id) or self.by_lower.get(resource_id.lower())
                or self.by_short.get(short_id(resource_id)))

    def __len__(self) -> int:
        return len(self.by_id)


def load_bill_prices(wh: Warehouse, start: dt.datetime, end: dt.datetime) -> BillPrices:
    return BillPrices(bill_frame(wh, start, end))
