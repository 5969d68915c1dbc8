""""Why is this mine?": where a resource's cost went, or what a rule placed, and why."""

from __future__ import annotations

import polars as pl

from finops.errors import BadInputError
from finops.ingest import PERIOD
from finops.warehouse import Warehouse
from models.allocation.ledger import ALLOCATED


def _allocated(wh: Warehouse, period: str | None) -> pl.LazyFrame:
    if not wh.has_data(ALLOCATED):
        raise BadInputError(f"no allocated data in {wh.home}", hint="Run `finops allocate` first.")
    return wh.scan(ALLOCATED, where={PERIOD: period} if period else None)


def explain_resource(wh: Warehouse, resource_id: str, *, period: str | None = None) -> pl.DataFrame:
    """One row per (period, tenant, method, rule) of the resource's cost, with its share."""
    df = (
        _allocated(wh, period)
        .filter(pl.col("ResourceId") == resource_id)
        .group_by(PERIOD, "x_Tenant", "x_Team", "x_AllocationMethod", "x_AllocationRule",
                  "BillingCurrency")
        .agg(
            pl.col("BilledCost").sum().alias("billed_cost"),
            pl.col("EffectiveCost").sum().alias("effective_cost"),
            pl.col("x_AllocationShare").mean().alias("share"),
            pl.len().alias("rows"),
            pl.col("ServiceName").first().alias("service"),
        )
        .sort(PERIOD, "effective_cost", descending=[False, True])
        .collect(engine="streaming")
    )
    if df.is_empty():
        raise BadInputError(f"resource {resource_id!r} has no allocated cost"
                            + (f" in {period}" if period else ""),
                            hint="Check the id (ResourceId as in the bill), or the period.")
    return df.rename({PERIOD: "period", "x_Tenant": "tenant", "x_Team": "team",
                      "x_AllocationMethod": "method", "x_AllocationRule": "rule",
                      "BillingCurrency": "currency"})


def explain_rule(wh: Warehouse, rule_id: str, *, period: str | None = None) -> pl.DataFrame:
    """What a rule or pool placed: cost per period and tenant, rows, resources."""
    df = (
        _allocated(wh, period)
        .filter(pl.col("x_AllocationRule") == rule_id)
        .group_by(PERIOD, "x_Tenant", "x_AllocationMethod", "BillingCurrency")
        .agg(
            pl.col("BilledCost").sum().alias("billed_cost"),
            pl.col("EffectiveCost").sum().alias("effective_cost"),
            pl.len().alias("rows"),
            pl.col("ResourceId").n_unique().alias("resources"),
        )
        .sort(PERIOD, "effective_cost", descending=[False, True])
        .collect(engine="streaming")
    )
    if df.is_empty():
        rules = (_allocated(wh, period).select(pl.col("x_AllocationRule").unique())
                 .collect().to_series().drop_nulls().to_list())
        from finops.errors import near_names

        raise BadInputError(f"rule {rule_id!r} placed no cost" + near_names(rule_id, rules),
                            hint=f"Rules that placed cost: {', '.join(sorted(rules)[:20])}")
    return df.rename({PERIOD: "period", "x_Tenant": "tenant", "x_AllocationMethod": "method",
                      "BillingCurrency": "currency"})
