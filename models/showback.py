"""Showback: allocated cost per group for a period, with the change from the one before.

Reads the daily cube (small, one row per day × owner × service × account), so the app
and the CLI answer in milliseconds whatever the size of the bill.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import polars as pl

from finops.errors import BadInputError, near_names
from finops.ingest import PERIOD
from finops.warehouse import Warehouse
from models.allocation import CUBE, UNALLOCATED

GROUPS: Final[dict[str, str]] = {
    "tenant": "x_Tenant",
    "team": "x_Team",
    "cost_center": "x_CostCenter",
    "service": "ServiceName",
    "service_category": "ServiceCategory",
    "account": "SubAccountId",
    "account_name": "SubAccountName",
    "provider": "ProviderName",
    "region": "RegionId",
    "charge_category": "ChargeCategory",
    "method": "x_AllocationMethod",
    "currency": "BillingCurrency",
}
COSTS: Final = ("billed_cost", "effective_cost")


def parse_period(text: str) -> str:
    try:
        return dt.datetime.strptime(text, "%Y-%m").strftime("%Y-%m")
    except ValueError:
        raise BadInputError(f"--period {text!r} is not a month",
                            hint="Write the period as YYYY-MM, for example 2026-05.") from None


def previous_period(period: str) -> str:
    first = dt.datetime.strptime(period, "%Y-%m").date()
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


def check_groups(by: list[str]) -> list[str]:
    for name in by:
        if name not in GROUPS:
            raise BadInputError(
                f"--by {name!r} is not a grouping." + near_names(name, GROUPS),
                hint=f"Use one of: {', '.join(GROUPS)}.",
            )
    return by


def periods_available(wh: Warehouse) -> list[str]:
    return sorted({k[PERIOD] for k in wh.partitions(CUBE)})


def cube(wh: Warehouse, periods: list[str] | None = None) -> pl.LazyFrame:
    return wh.scan(CUBE, where={PERIOD: periods} if periods else None)


def showback(wh: Warehouse, period: str, by: list[str]) -> pl.DataFrame:
    """One row per group: the group keys (named after ``by``), billed and effective cost.

    When the period holds more than one billing currency, ``currency`` is added as a
    key, so no row ever adds dollars to euros.
    """
    check_groups(by)
    if period not in periods_available(wh):
        have = periods_available(wh)
        raise BadInputError(
            f"no allocated data for {period}",
            hint=(f"Periods with data: {', '.join(have)}." if have else
                  "Collect billing data and run `finops allocate` first."),
        )
    lf = cube(wh, [period])
    keys = list(by)
    if "currency" not in keys and lf.select(pl.col("BillingCurrency").n_unique()).collect().item() > 1:
        keys.append("currency")
    return (
        lf.group_by([pl.col(GROUPS[k]).alias(k) for k in keys])
        .agg(pl.col("BilledCost").sum().alias("billed_cost"),
             pl.col("EffectiveCost").sum().alias("effective_cost"))
        .sort("effective_cost", *keys, descending=[True, *[False] * len(keys)], nulls_last=True)
        .collect()
    )


@dataclass
class Comparison:
    period: str
    previous: str
    table: pl.DataFrame  # keys, cost, previous_cost, change, change_pct
    total: pl.DataFrame  # currency, cost, previous_cost
    unallocated: pl.DataFrame  # currency, cost, share


def compare(wh: Warehouse, period: str, by: list[str], *, cost: str = "effective_cost") -> Comparison:
    """Showback for ``period`` beside the previous month, and the unallocated share."""
    if cost not in COSTS:
        raise BadInputError(f"cost {cost!r} is not one of {', '.join(COSTS)}")
    prev = previous_period(period)
    keys = [*by, "currency"] if "currency" not in by else list(by)
    now = showback(wh, period, keys).select(*keys, pl.col(cost).alias("cost"))
    if prev in periods_available(wh):
        before = showback(wh, prev, keys).select(*keys, pl.col(cost).alias("previous_cost"))
    else:
        before = pl.DataFrame(schema={**dict.fromkeys(keys, pl.String),
                                      "previous_cost": now.schema["cost"]})
    table = (
        now.join(before, on=keys, how="full", coalesce=True, nulls_equal=True)
        .with_columns(pl.col("cost", "previous_cost").fill_null(0))
        .with_columns((pl.col("cost") - pl.col("previous_cost")).alias("change"))
        .with_columns(
            pl.when(pl.col("previous_cost") != 0)
            .then(pl.col("change").cast(pl.Float64) / pl.col("previous_cost").cast(pl.Float64))
            .otherwise(None).alias("change_pct")
        )
        .sort("cost", descending=True)
    )
    total = table.group_by("currency").agg(pl.col("cost").sum(), pl.col("previous_cost").sum())
    by_method = showback(wh, period, ["method", "currency"])
    unallocated = (
        by_method.group_by("currency")
        .agg(
            pl.col(cost).filter(pl.col("method") == UNALLOCATED).sum().alias("cost"),
            pl.col(cost).sum().alias("total"),
        )
        .with_columns(
            pl.when(pl.col("total") != 0)
            .then(pl.col("cost").cast(pl.Float64) / pl.col("total").cast(pl.Float64))
            .otherwise(0.0).alias("share")
        )
        .sort("currency")
    )
    return Comparison(period, prev, table, total.sort("currency"), unallocated)


def top_unallocated_resources(wh: Warehouse, period: str, *, limit: int = 20,
                              cost: str = "EffectiveCost", currency: str | None = None) -> pl.DataFrame:
    from models.allocation import ALLOCATED

    lf = wh.scan(ALLOCATED, where={PERIOD: period})
    if currency is not None:
        lf = lf.filter(pl.col("BillingCurrency") == currency)
    return (
        lf.filter(pl.col("x_AllocationMethod") == UNALLOCATED)
        .group_by("ProviderName", "ServiceName", "ResourceId", "BillingCurrency")
        .agg(pl.col(cost).sum().alias("cost"))
        .sort("cost", descending=True)
        .head(limit)
        .collect(engine="streaming")
    )
