"""Unit economics of warehouse queries: cost per query, per TB scanned and per tenant.

Pure functions over rows of the ``query_cost`` dataset (:mod:`models.query_cost`: one row
per query-hour piece, idle warehouse time, unattributed cloud services or usage record).
They take a lazy frame, so the caller decides what may be read: the app passes the
viewer's scoped rows (:class:`models.access.ScopedWarehouse`). A query's cost is the sum
of its pieces; ``queries`` counts each query once (on its last piece). Idle warehouse time
that no tenant used stays visible as its own group, ``idle``, and is part of the unit cost
(a warehouse kept running between queries is a cost of those queries).
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import polars as pl

from models.query_cost import group_key, unit_costs

QUERY_COST: Final = "query_cost"
UNIT_COLUMNS: Final = ("queries", "tb_scanned", "credits", "cost", "cost_per_query", "cost_per_tb")


def between(lf: pl.LazyFrame, start: dt.date | None, end: dt.date | None) -> pl.LazyFrame:
    """Rows whose ``day`` is in ``[start, end]`` (either bound open when None)."""
    if start is not None:
        lf = lf.filter(pl.col("day") >= start)
    if end is not None:
        lf = lf.filter(pl.col("day") <= end)
    return lf


def totals(lf: pl.LazyFrame) -> pl.DataFrame:
    """Per currency: the unit columns, plus ``idle_cost`` (warehouse time no query used)."""
    idle = (pl.col("kind") == "idle") & (pl.col("tenant").fill_null("idle") == "idle")
    base = unit_costs(lf, ["currency"]).collect()
    idle_cost = (lf.group_by("currency")
                 .agg(pl.col("cost").filter(idle).sum().alias("idle_cost"))
                 .collect())
    return (base.join(idle_cost, on="currency", how="left")
            .select("currency", *UNIT_COLUMNS, "idle_cost")
            .sort("cost", descending=True, nulls_last=True))


def by(lf: pl.LazyFrame, key: str) -> pl.DataFrame:
    """One row per ``key`` (tenant, warehouse, user, query_hash, source, day, service) and
    currency: the unit columns and ``share`` of the currency's cost, largest first."""
    grouped = unit_costs(lf.with_columns(group_key(key)), [key, "currency"]).collect()
    return (grouped.with_columns(
        (pl.col("cost").cast(pl.Float64)
         / pl.col("cost").cast(pl.Float64).sum().over("currency")).fill_nan(None).alias("share"))
        .select(key, "currency", *UNIT_COLUMNS, "share")
        .sort("cost", key, descending=[True, False], nulls_last=True))


def daily(lf: pl.LazyFrame) -> pl.DataFrame:
    """Per day and currency: the unit columns, oldest first."""
    return (unit_costs(lf, ["day", "currency"]).collect()
            .select("day", "currency", *UNIT_COLUMNS).sort("day", "currency"))


def top_queries(lf: pl.LazyFrame, *, limit: int = 100) -> pl.DataFrame:
    """The most expensive single queries: their pieces summed, largest first."""
    queries = lf.filter((pl.col("kind") == "query") & pl.col("query_id").is_not_null())
    return (
        queries.group_by("query_id", "currency")
        .agg(pl.col("day").min().alias("day"),
             pl.col("query_hash").first(), pl.col("warehouse").first(),
             pl.col("user_name").first(), pl.col("tenant").first(),
             pl.col("execution_status").first(),
             pl.col("execution_ms").sum(), pl.col("tb_scanned").sum(),
             pl.col("credits").sum(), pl.col("cost").sum())
        .sort("cost", "query_id", descending=[True, False], nulls_last=True)
        .head(limit)
        .select("query_id", "day", "warehouse", "user_name", "tenant", "query_hash",
                "execution_status", "execution_ms", "tb_scanned", "credits", "cost", "currency")
        .collect()
    )


def top_recurring(lf: pl.LazyFrame, *, limit: int = 50, min_runs: int = 2) -> pl.DataFrame:
    """The most expensive recurring queries (same parameterised hash), largest first:
    runs, total and per-run cost, TB scanned, the warehouse and tenant they mostly ran
    on and for, the users running them and the last day they ran."""
    queries = lf.filter((pl.col("kind") == "query") & pl.col("query_hash").is_not_null())
    return (
        queries.group_by("query_hash", "currency")
        .agg(pl.col("queries").sum().cast(pl.Int64).alias("runs"),
             pl.col("cost").sum(), pl.col("tb_scanned").sum(), pl.col("credits").sum(),
             pl.col("warehouse").mode().sort().first().alias("warehouse"),
             pl.col("tenant").mode().sort().first().alias("tenant"),
             pl.col("user_name").n_unique().alias("users"),
             pl.col("day").max().alias("last_day"))
        .filter(pl.col("runs") >= min_runs)
        .with_columns((pl.col("cost").cast(pl.Float64) / pl.col("runs")).alias("cost_per_run"))
        .sort("cost", "query_hash", descending=[True, False], nulls_last=True)
        .head(limit)
        .select("query_hash", "runs", "cost", "cost_per_run", "tb_scanned", "credits",
                "warehouse", "tenant", "users", "last_day", "currency")
        .collect()
    )


def months(lf: pl.LazyFrame) -> list[str]:
    """Months (``YYYY-MM``) with query cost, oldest first."""
    found = lf.select(pl.col("day").dt.strftime("%Y-%m").unique()).collect().to_series()
    return sorted(str(m) for m in found.drop_nulls().to_list())
