"""Cost per query: warehouse bills split to the queries that used them, and to tenants.

Snowflake (the method of dbt-snowflake-monitoring's ``cost_per_query``, made exact):

- A query executes in ``[END_TIME - EXECUTION_TIME, END_TIME]``: queued, compilation and
  blocked time come first and are excluded. A query that spans hours is split into one
  piece per hour, weighted by its execution microseconds in that hour.
- Each warehouse-hour's metered compute cost (CREDITS_USED_COMPUTE x credit price) is
  split across that hour's pieces by execution-time share::

      cost(piece) = cost(hour) x exec_us(piece) / sum(exec_us of the hour's pieces)

  Where QUERY_ATTRIBUTION_HISTORY covers the hour, Snowflake's own per-query credits are
  the weights instead, and what the hour metered beyond them is idle::

      cost(piece) = cost(hour) x a(piece) / max(credits(hour), sum(a)),
      idle(hour)  = cost(hour) x (1 - sum(a) / max(credits(hour), sum(a)))

- Idle cost (metered hours with no query, and the unattributed remainder above) follows
  the declared :class:`~models.query_rules.IdlePolicy`: ``tenant_share`` (the default)
  splits a warehouse-day's idle cost by each tenant's execution time on that warehouse
  that day, and a day with no query at all stays ``idle``; ``owner`` charges it to the
  warehouse's owner (``idle`` when none is declared); ``idle`` keeps it all as ``idle``.
- Cloud services are billed only above the daily allowance (10% of the day's compute
  credits): ``billed(day) = max(0, cs(day) - 0.1 x compute(day))`` from the metering
  history; the billed cost is split across the day's queries by their
  CREDITS_USED_CLOUD_SERVICES (on the query's last piece); a day whose queries used none
  leaves it ``unallocated``, visibly.
- Money is exact: each piece's cost is the float share cast to Decimal(38, 12), and the
  rounding remainder of each pool goes to its largest piece (or to its idle cost), so a
  month's query cost equals metered credits x price exactly, not just to the cent.

BigQuery: on-demand jobs cost ``total_bytes_billed / 2^40 x price per TiB``; jobs in a
reservation share the reservation-hour's cost by slot-ms (capacity from
``reservation_capacity`` when collected, else the slot-ms used) x the edition's slot-hour
price. Databricks: each usage record costs ``usage_quantity x list price`` (the price in
force at the record's start); RETRACTION rows are negative and RESTATEMENT rows restate,
so sums are corrected by construction.

Results: ``query_cost`` (one row per query-hour, idle warehouse-day-tenant or usage
record) and ``query_shares`` (per day, service key and tenant: the share of that day's
warehouse cost), keyed ``source`` and ``month``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa

from finops.errors import BadInputError, ConfigError, StageError, near_names
from finops.focus import MONEY, TIMESTAMP
from finops.progress import progress
from finops.state import PeriodTotal, State
from finops.warehouse import Warehouse
from models.query_rules import (
    IDLE,
    UNALLOCATED,
    IdlePolicy,
    QueryCostConfig,
    load_config,
    resolve_tenant_codes,
    resolve_tenants,
    rule_ids,
)
from models.query_store import (
    ATTRIBUTION,
    CAPACITY,
    DBX_PRICES,
    DBX_USAGE,
    METERING,
    MONTH,
    QUERIES,
    RATES,
)

QUERY_COST: Final = "query_cost"
QUERY_SHARES: Final = "query_shares"
METHOD: Final = "usage:query_history"
CENT: Final = Decimal("0.01")
HOUR: Final = dt.timedelta(hours=1)
TIB: Final = 2**40
TB: Final = 1e12
CLOUD_SERVICES: Final = "CLOUD_SERVICES"

COST_SCHEMA: Final[dict[str, pl.DataType]] = {
    "kind": pl.String(),  # query | idle | cloud_services | usage
    "day": pl.Date(),
    "hour": TIMESTAMP,
    "query_id": pl.String(),
    "query_hash": pl.String(),
    "warehouse": pl.String(),
    "user_name": pl.String(),
    "role_name": pl.String(),
    "database_name": pl.String(),
    "execution_status": pl.String(),
    "tenant": pl.String(),
    "tenant_rule": pl.String(),
    "method": pl.String(),
    "service_key": pl.String(),
    "queries": pl.Int32(),  # 1 on a query's last piece, so sums count queries
    "execution_ms": pl.Float64(),
    "tb_scanned": pl.Float64(),
    "compute_credits": pl.Float64(),
    "cloud_services_credits": pl.Float64(),
    "credits": pl.Float64(),
    "cost": MONEY,
    "currency": pl.String(),
}
SHARES_SCHEMA: Final[dict[str, pl.DataType]] = {
    "day": pl.Date(),
    "service_key": pl.String(),
    "warehouse": pl.String(),
    "tenant": pl.String(),
    "credits": pl.Float64(),
    "cost": MONEY,
    "currency": pl.String(),
    "share": pl.Float64(),
}
# Query attributes carried from the ``queries`` dataset to each piece.
ATTRS: Final = ("query_id", "query_hash", "warehouse", "user_name", "role_name", "database_name",
                "execution_status", "tenant", "tenant_rule")


def conform(lf: pl.LazyFrame, schema: dict[str, pl.DataType] = COST_SCHEMA) -> pl.LazyFrame:
    names = lf.collect_schema().names()
    return lf.select([(pl.col(n).cast(t) if n in names else pl.lit(None, t)).alias(n)
                      for n, t in schema.items()])


def _money(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Float64).cast(MONEY)


# ---- the pool engine ---------------------------------------------------------------------
@dataclass
class PoolSplit:
    pieces: pl.DataFrame  # the input pieces with pool_credits and pool_cost
    idle: pl.DataFrame  # pool, hour, day, currency, idle_credits, idle_cost (non-zero only)
    usage: pl.DataFrame  # pool, day, tenant, usage: what idle shares are split by
    hours: pl.DataFrame  # pool, hour, currency: the pools, by ``hpos``


def split_pools(pieces: pl.DataFrame, pools: pl.DataFrame) -> PoolSplit:
    """Split each pool-hour's cost across its pieces by weight, exactly.

    ``pieces``: ``idx`` (unique within a pool-hour), ``pool``, ``hour``, ``weight``
    (>= 0), ``usage`` (what idle is shared by) and ``tenant``; other columns pass through.
    ``pools``: ``pool``, ``hour``, ``credits`` (Float64), ``cost`` (Decimal), ``currency``
    and ``capacity`` (in weight units; null means the pieces share the whole pool). A
    pool-hour without weight is all idle; with a capacity above the weight used, the
    difference is idle. Each pool-hour's rounding remainder goes to its idle cost, or to
    its piece of largest weight, so the pieces and idle sum to the pool's cost exactly.

    Pieces are never joined (a join copies every column): each piece finds its pool-hour
    by position (``hpos``) and pool-hour values are gathered.
    """
    keys = ["pool", "hour"]
    agg = (
        pieces.lazy().filter(pl.col("pool").is_not_null())
        .group_by(keys)
        .agg(pl.col("weight").sum().alias("W"),
             pl.col("idx").get(pl.col("weight").arg_max()).alias("anchor"))
    )
    hours = (
        pools.lazy().join(agg, on=keys, how="left")
        .with_columns(pl.col("W").fill_null(0.0))
        .with_columns(
            pl.when(pl.col("W") <= 0).then(None)
            .when(pl.col("capacity").is_null()).then(pl.col("W"))
            .otherwise(pl.max_horizontal("capacity", "W")).alias("T"))
        .with_columns(
            (pl.col("T").is_null() | (pl.col("T") > pl.col("W"))).alias("has_idle"),
            (pl.col("cost").cast(pl.Float64) / pl.col("T")).alias("cost_per_w"),
            (pl.col("credits") / pl.col("T")).alias("credits_per_w"),
        )
        .with_row_index("hpos")
        .collect()
    )
    hpos = (pieces.select(keys).join(hours.select(*keys, "hpos"), on=keys, how="left",
                                     maintain_order="left")["hpos"])
    pieces = pieces.with_columns(hpos.alias("hpos"))
    del hpos
    pieces = pieces.with_columns(
        (pl.col("weight") * pl.lit(hours["credits_per_w"]).gather(pl.col("hpos")))
        .fill_null(0.0).alias("pool_credits"),
        _money(pl.col("weight") * pl.lit(hours["cost_per_w"]).gather(pl.col("hpos")))
        .fill_null(Decimal(0)).alias("pool_cost"),
    )
    by_tenant = (
        pieces.lazy().filter(pl.col("hpos").is_not_null())
        .group_by("hpos", "tenant")
        .agg(pl.col("pool_cost").sum().alias("raw"), pl.col("pool_credits").sum().alias("cr"),
             pl.col("usage").sum())
        .collect()
    )
    sums = by_tenant.lazy().group_by("hpos").agg(pl.col("raw").sum(), pl.col("cr").sum())
    settled = (
        hours.lazy().join(sums, on="hpos", how="left").sort("hpos")
        .with_columns(pl.col("raw").fill_null(Decimal(0)), pl.col("cr").fill_null(0.0))
        .with_columns(
            pl.when(pl.col("has_idle")).then(pl.col("cost") - pl.col("raw"))
            .otherwise(Decimal(0)).cast(MONEY).alias("idle_cost"),
            pl.when(pl.col("has_idle")).then(pl.col("credits") - pl.col("cr"))
            .otherwise(0.0).alias("idle_credits"),
            pl.when(pl.col("has_idle")).then(Decimal(0))
            .otherwise(pl.col("cost") - pl.col("raw")).cast(MONEY).alias("residual"),
        )
        .collect()
    )
    # The remainder goes to the anchor piece of each pool-hour without idle.
    anchors = (pieces.lazy().with_row_index("_pos")
               .filter(pl.col("idx") == pl.lit(settled["anchor"]).gather(pl.col("hpos")))
               .select("_pos", (pl.col("pool_cost") + pl.lit(settled["residual"])
                                .gather(pl.col("hpos"))).cast(MONEY).alias("fixed"))
               .collect())
    if anchors.height:
        pieces = pieces.with_columns(pieces["pool_cost"].scatter(anchors["_pos"], anchors["fixed"]))
    idle = settled.filter(pl.col("has_idle") & ((pl.col("idle_cost") != 0)
                                                | (pl.col("idle_credits") != 0))).select(
        *keys, pl.col("hour").dt.date().alias("day"), "currency", "idle_credits", "idle_cost")
    usage = (by_tenant.lazy().join(hours.lazy().select("hpos", *keys), on="hpos")
             .group_by("pool", pl.col("hour").dt.date().alias("day"), "tenant")
             .agg(pl.col("usage").sum()).collect())
    return PoolSplit(pieces, idle, usage, hours.select("hpos", *keys, "currency"))


def settle_idle(split: PoolSplit, config: QueryCostConfig) -> pl.DataFrame:
    """Idle cost per pool-day placed by the idle policy, exactly (rows of COST_SCHEMA)."""
    idle = split.idle.with_columns(pl.col("pool").cast(pl.String))
    daily = (idle.lazy().group_by("pool", "day", "currency")
             .agg(pl.col("idle_cost").sum(), pl.col("idle_credits").sum()))
    policy = config.idle_policy
    if policy == IdlePolicy.tenant_share:
        usage = (split.usage.lazy().filter(pl.col("usage") > 0)
                 .with_columns(pl.col("pool", "tenant").cast(pl.String)))
        g = ["pool", "day", "currency"]
        shared = (
            daily.join(usage, on=["pool", "day"], how="left")
            .with_columns((pl.col("usage") / pl.col("usage").sum().over(g)).alias("share"))
            .with_columns(
                pl.col("tenant").fill_null(IDLE),
                pl.col("share").fill_null(1.0),
                pl.when(pl.col("tenant").is_null()).then(pl.lit("idle:no-queries-that-day"))
                .otherwise(pl.lit("idle:tenant_share")).alias("tenant_rule"),
            )
            .with_columns(_money(pl.col("idle_cost").cast(pl.Float64) * pl.col("share")).alias("raw"),
                          (pl.col("idle_credits") * pl.col("share")).alias("credits"))
            .with_columns(
                (pl.col("idle_cost") - pl.col("raw").sum().over(g)).alias("residual"),
                (pl.int_range(pl.len()).over(g) == pl.col("share").arg_max().over(g)).alias("anchor"),
            )
            .with_columns(
                (pl.col("raw") + pl.when(pl.col("anchor")).then(pl.col("residual"))
                 .otherwise(Decimal(0))).cast(MONEY).alias("cost"))
        )
    else:
        owners = {k.upper(): v.strip().lower() for k, v in config.warehouse_owners.items()}
        owner = (pl.col("pool").str.to_uppercase().replace_strict(owners, default=None,
                                                                  return_dtype=pl.String)
                 if policy == IdlePolicy.owner and owners else pl.lit(None, pl.String))
        shared = daily.with_columns(
            owner.fill_null(IDLE).alias("tenant"),
            pl.when(owner.is_not_null()).then(pl.lit("idle:owner"))
            .otherwise(pl.lit(f"idle:{policy.value}" if policy != IdlePolicy.owner
                              else "idle:no-owner")).alias("tenant_rule"),
            pl.col("idle_cost").alias("cost"), pl.col("idle_credits").alias("credits"),
        )
    return shared.select(
        pl.lit("idle").alias("kind"), "day", pl.col("pool").alias("warehouse"), "tenant",
        "tenant_rule", pl.lit(f"idle:{policy.value}").alias("method"),
        pl.lit(0, pl.Int32).alias("queries"),
        pl.col("credits").alias("compute_credits"), pl.lit(0.0).alias("cloud_services_credits"),
        "credits", pl.col("cost").cast(MONEY), "currency",
    ).collect()


def split_exact(frame: pl.DataFrame, by: Sequence[str], weight: str, total: str,
                out: str) -> pl.DataFrame:
    """``frame[out]`` = ``total`` (Decimal, constant per ``by``) split by ``weight``, exactly."""
    g = list(by)
    return (
        frame.lazy()
        .with_columns((pl.col(weight) / pl.col(weight).sum().over(g)).alias("_share"))
        .with_columns(_money(pl.col(total).cast(pl.Float64) * pl.col("_share")).alias("_raw"))
        .with_columns(
            (pl.col(total).first().over(g) - pl.col("_raw").sum().over(g)).alias("_res"),
            (pl.int_range(pl.len()).over(g) == pl.col(weight).arg_max().over(g)).alias("_anchor"),
        )
        .with_columns((pl.col("_raw") + pl.when(pl.col("_anchor")).then(pl.col("_res"))
                       .otherwise(Decimal(0))).cast(MONEY).alias(out))
        .drop("_share", "_raw", "_res", "_anchor")
        .collect()
    )


# ---- Snowflake ---------------------------------------------------------------------------
def snowflake_prices(rates: pl.LazyFrame | None, days: Sequence[dt.date],
                     config: QueryCostConfig) -> pl.DataFrame:
    """``day, compute_price, cs_price, currency`` for each day: the rate sheet, else the setting."""
    base = pl.DataFrame({"day": sorted(set(days))}, schema={"day": pl.Date})
    if rates is not None:
        sheet = (
            rates.select(pl.col("date").alias("day"), "usage_type", "currency", "rate").collect()
            .pivot(on="usage_type", index=["day", "currency"], values="rate",
                   aggregate_function="first")
        )
        for name in ("compute", "cloud services"):
            if name not in sheet.columns:
                sheet = sheet.with_columns(pl.lit(None, MONEY).alias(name))
        sheet = sheet.select(
            "day", pl.col("compute").alias("compute_price"),
            pl.coalesce("cloud services", "compute").alias("cs_price"), "currency",
        ).filter(pl.col("compute_price").is_not_null())
        base = base.join(sheet, on="day", how="left")
    else:
        base = base.with_columns(pl.lit(None, MONEY).alias("compute_price"),
                                 pl.lit(None, MONEY).alias("cs_price"),
                                 pl.lit(None, pl.String).alias("currency"))
    fallback = config.credit_price
    if fallback is not None:
        price = pl.lit(fallback).cast(MONEY)
        base = base.with_columns(
            pl.when(pl.col("compute_price").is_null()).then(pl.lit(config.currency))
            .otherwise(pl.col("currency")).alias("currency"),
            pl.col("compute_price").fill_null(price),
            pl.col("cs_price").fill_null(price),
        )
    unpriced = base.filter(pl.col("compute_price").is_null())["day"].to_list()
    if unpriced:
        shown = ", ".join(str(d) for d in unpriced[:5]) + (" …" if len(unpriced) > 5 else "")
        raise ConfigError(
            f"no Snowflake credit price for {len(unpriced)} day(s): {shown}",
            hint="Set FINOPS_SNOWFLAKE__CREDIT_PRICE (or [snowflake] credit_price in finops.toml), "
            "or collect rate_sheet_daily with `finops collect snowflake`.",
        )
    return base.with_columns(pl.col("compute_price", "cs_price").cast(MONEY))


def _ts(value: dt.datetime | None) -> pl.Expr:
    return pl.lit(value, TIMESTAMP)


def _in_window(column: str, start: dt.datetime | None, end: dt.datetime | None) -> pl.Expr:
    cond = pl.lit(True)
    if start is not None:
        cond = cond & (pl.col(column) >= _ts(start))
    if end is not None:
        cond = cond & (pl.col(column) < _ts(end))
    return cond


def snowflake_pieces(narrow: pl.LazyFrame, *, start: dt.datetime | None = None,
                     end: dt.datetime | None = None) -> pl.DataFrame:
    """One row per query-hour of execution, from ``idx, pool, start_time, end_time,
    execution_ms`` (and any other columns, carried): adds ``hour``, ``usage`` (execution µs
    in the hour) and ``is_last``; the attributed credits ``a_weight`` where given.

    Execution is ``[max(end - EXECUTION_TIME, start), end]``. Every query gets at least one
    piece, its last hour, which carries ``is_last``; pieces outside ``[start, end)`` are
    dropped.
    """
    q = narrow.with_columns(
        pl.max_horizontal(
            pl.col("end_time") - pl.duration(milliseconds=pl.col("execution_ms").fill_null(0)
                                             .clip(lower_bound=0)),
            pl.col("start_time")).alias("exec_start"),
        (pl.col("end_time") - pl.duration(microseconds=1)).dt.truncate("1h").alias("h_last"),
    ).with_columns(
        pl.when(pl.col("end_time") > pl.col("exec_start"))
        .then(pl.col("exec_start").dt.truncate("1h")).otherwise(pl.col("h_last")).alias("h_first"),
    ).drop("start_time", "execution_ms")
    single = (q.filter(pl.col("h_first") == pl.col("h_last"))
              .with_columns(pl.col("h_last").alias("hour"),
                            (pl.col("end_time") - pl.col("exec_start")).dt.total_microseconds()
                            .cast(pl.Float64).alias("usage")))
    multi = (q.filter(pl.col("h_first") != pl.col("h_last"))
             .with_columns(pl.datetime_ranges("h_first", "h_last", "1h").alias("hour"))
             .explode("hour")
             .with_columns((pl.min_horizontal("end_time", pl.col("hour") + pl.duration(hours=1))
                            - pl.max_horizontal("exec_start", "hour")).dt.total_microseconds()
                           .cast(pl.Float64).alias("usage")))
    # Both halves are in query order: merged, each query's pieces are together, in hour order.
    pieces = single.merge_sorted(multi, key="idx").filter(_in_window("hour", start, end))
    names = q.collect_schema().names()
    extra = []
    if "a_credits" in names:
        exec_us = (pl.col("end_time") - pl.col("exec_start")).dt.total_microseconds()
        extra.append(pl.when(exec_us > 0).then(pl.col("a_credits") * pl.col("usage") / exec_us)
                     .otherwise(pl.when(pl.col("hour") == pl.col("h_last")).then(pl.col("a_credits")))
                     .alias("a_weight"))
    return (pieces.with_columns((pl.col("hour") == pl.col("h_last")).alias("is_last"), *extra)
            .drop("exec_start", "end_time", "h_first", "h_last", "a_credits", strict=False)
            .collect(engine="streaming").rechunk())


def snowflake_cost(
    queries: pl.LazyFrame,
    metering: pl.LazyFrame,
    config: QueryCostConfig,
    *,
    rates: pl.LazyFrame | None = None,
    attribution: pl.LazyFrame | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> pl.LazyFrame:
    """``query_cost`` rows for Snowflake queries and metering within ``[start, end)``.

    Two passes over ``queries``: a narrow one (numbers and tenant codes) that settles
    every piece's cost in memory, then one that streams the query attributes and pairs
    each query, row by row, with its list of pieces. The result is lazy: a caller streams
    it to Parquet without ever holding 10M query ids and names at once.
    """
    if "source" not in queries.collect_schema().names():
        queries = queries.with_columns(pl.lit("snowflake").alias("source"))
    base = queries.filter(pl.col("end_time").is_not_null() & pl.col("start_time").is_not_null())
    if start is not None:
        base = base.filter(pl.col("end_time") > _ts(start))
    if end is not None:
        base = base.filter(pl.col("start_time") < _ts(end))
    rules = config.rules
    narrow, tenants = resolve_tenant_codes(base.with_row_index("idx"), rules)
    cols = [
        pl.col("idx"), pl.col("warehouse").cast(pl.Categorical).alias("pool"),
        "start_time", "end_time", "execution_ms",
        pl.col("tenant_i").alias("tenant"), "tenant_rule_i",
        pl.col("cloud_services_credits").fill_null(0.0).alias("cs_q"),
    ]
    if attribution is not None:
        narrow = narrow.join(attribution.select(
            "query_id", pl.col("credits_attributed_compute").alias("a_credits")),
            on="query_id", how="left", maintain_order="left")
        cols.append("a_credits")
    n_rows = int(base.select(pl.len()).collect(engine="streaming").item())
    pieces = snowflake_pieces(narrow.select(cols), start=start, end=end)
    if "a_weight" in pieces.columns:
        attributed = (pieces.lazy().filter(pl.col("a_weight").is_not_null())
                      .select("pool", "hour").unique().with_columns(pl.lit(True).alias("attr")))
        flag = (pieces.lazy().select("pool", "hour")
                .join(attributed, on=["pool", "hour"], how="left", maintain_order="left")
                .collect()["attr"].fill_null(False))
        pieces = pieces.with_columns(flag.alias("attr")).with_columns(
            pl.when(pl.col("attr")).then(pl.col("a_weight").fill_null(0.0))
            .otherwise(pl.col("usage")).alias("weight")).drop("a_weight")
    else:
        pieces = pieces.with_columns(pl.lit(False).alias("attr"), pl.col("usage").alias("weight"))

    meter_df = (metering.with_columns(pl.col("start_time").dt.truncate("1h").alias("hour"))
                .filter(_in_window("hour", start, end))
                .group_by(pl.col("warehouse").cast(pl.Categorical).alias("pool"), "hour")
                .agg(pl.col("credits_compute").sum(), pl.col("credits_cloud_services").sum())
                .with_columns(pl.col("hour").dt.date().alias("day")).collect())
    # Only metered days cost money, so only they need a price.
    days = sorted(set(meter_df["day"].to_list()))
    prices = snowflake_prices(rates, days, config)
    # Attribution hours: the pieces share at most the metered credits; the rest is idle.
    attr_hours = (pieces.lazy().filter(pl.col("attr")).select("pool", "hour").unique()
                  .with_columns(pl.lit(True).alias("attr")))
    pools = (
        meter_df.lazy().join(prices.lazy(), on="day", how="left")
        .join(attr_hours, on=["pool", "hour"], how="left")
        .select(
            "pool", "hour",
            pl.col("credits_compute").cast(pl.Float64).alias("credits"),
            (pl.col("credits_compute") * pl.col("compute_price")).cast(MONEY).alias("cost"),
            "currency",
            pl.when(pl.col("attr")).then(pl.col("credits_compute").cast(pl.Float64))
            .alias("capacity"),
        )
        .filter(pl.col("credits") != 0)
        .collect()
    )
    split = split_pools(pieces, pools)
    pieces = split.pieces.drop("pool", "weight")
    split.pieces = pieces.clear()
    names = dict(enumerate(tenants))
    split.usage = split.usage.with_columns(
        pl.col("tenant").replace_strict(names, return_dtype=pl.String))

    # Cloud services above the daily allowance, split by the day's queries' own CS credits.
    daily = (
        meter_df.lazy().group_by("day")
        .agg(pl.col("credits_compute").sum(), pl.col("credits_cloud_services").sum())
        .join(prices.lazy(), on="day", how="left")
        .with_columns(
            (pl.col("credits_cloud_services")
             - pl.col("credits_compute") * pl.lit(config.cloud_services_allowance).cast(MONEY))
            .clip(lower_bound=Decimal(0)).cast(MONEY).alias("cs_billed"))
        .with_columns((pl.col("cs_billed") * pl.col("cs_price")).cast(MONEY).alias("cs_cost"))
        .filter(pl.col("cs_billed") > 0)
        .select("day", "cs_billed", "cs_cost", pl.col("currency").alias("cs_currency"))
        .collect()
    )
    # Per piece: cost x cs_q / sum(cs_q) of its day, by gathering day-level ratios (no
    # copy of the pieces); each day's remainder goes to its largest user.
    first_day = min(days) if days else dt.date(1970, 1, 1)
    day_i = (pl.col("hour").dt.date() - pl.lit(first_day)).dt.total_days().cast(pl.Int32)
    takes = pl.col("is_last") & (pl.col("cs_q") > 0)
    by_day = (pieces.lazy().with_row_index("_pos").filter(takes)
              .group_by(day_i.alias("day_i"))
              .agg(pl.col("cs_q").sum().alias("total"),
                   pl.col("_pos").get(pl.col("cs_q").arg_max()).alias("anchor"))
              .with_columns((pl.lit(first_day) + pl.duration(days=pl.col("day_i"))).alias("day"))
              .join(daily.lazy(), on="day", how="inner").collect())
    users = by_day.select("day")
    cs_alloc = pl.repeat(Decimal(0), pieces.height, dtype=MONEY, eager=True)
    cs_credits = pl.repeat(0.0, pieces.height, dtype=pl.Float64, eager=True)
    if by_day.height:
        span = int(by_day["day_i"].cast(pl.Int64).max() or 0) + 1  # type: ignore[arg-type]
        lookup = pl.DataFrame({"day_i": pl.int_range(span, dtype=pl.Int32, eager=True)}).join(
            by_day.select("day_i", "total", pl.col("cs_cost").cast(pl.Float64).alias("cost"),
                          pl.col("cs_billed").cast(pl.Float64).alias("billed")),
            on="day_i", how="left", maintain_order="left")
        in_range = takes & (day_i >= 0) & (day_i < span)
        safe_i = day_i.clip(0, span - 1)  # gathered for every row, used where in range

        def day_value(name: str) -> pl.Expr:
            return pl.lit(lookup[name]).gather(safe_i)

        # The share first (at most 1), then the amount: cost / total overflows when a day's
        # total is a subnormal float. The denominator is null out of range, since a
        # when/then still computes (and may cast) its masked side.
        share = pl.col("cs_q") / pl.when(in_range).then(day_value("total"))
        gathered = pieces.select(
            _money(share * day_value("cost")).fill_null(Decimal(0)).alias("cs_alloc"),
            (share * day_value("billed")).fill_null(0.0).alias("cs_credits"),
        )
        cs_alloc, cs_credits = gathered["cs_alloc"], gathered["cs_credits"]
        del gathered
        sums = (pieces.lazy().select(day_i.alias("day_i"), cs_alloc.alias("a"))
                .group_by("day_i").agg(pl.col("a").sum()).collect())
        fix = by_day.join(sums, on="day_i").select(
            "anchor", (pl.col("cs_cost") - pl.col("a")).alias("residual"))
        cs_alloc = cs_alloc.scatter(fix["anchor"], (cs_alloc.gather(fix["anchor"])
                                                    + fix["residual"]).cast(MONEY))
    # A day whose queries used no cloud services (or had none) keeps its bill, unallocated.
    orphan = daily.join(users.select("day").unique(), on="day", how="anti")
    cs_rows = orphan.select(
        pl.lit("cloud_services").alias("kind"), "day",
        pl.lit(CLOUD_SERVICES).alias("warehouse"), pl.lit(UNALLOCATED).alias("tenant"),
        pl.lit("cloud_services:no-query-credits").alias("tenant_rule"),
        pl.lit("cloud_services").alias("method"), pl.lit(0, pl.Int32).alias("queries"),
        pl.col("cs_billed").cast(pl.Float64).alias("cloud_services_credits"),
        pl.col("cs_billed").cast(pl.Float64).alias("credits"),
        pl.col("cs_cost").alias("cost"), pl.col("cs_currency").alias("currency"))

    # Each query's settled pieces as one list, aligned row by row with ``base``: the
    # pieces are in query order (then hour order); offsets come from the pieces per query.
    struct = pieces.select(pl.struct(
        "hour", "usage", "is_last", "attr", "tenant", "tenant_rule_i",
        pl.col("pool_credits").alias("compute_credits"),
        cs_credits.alias("cloud_services_credits"),
        (pl.col("pool_cost") + cs_alloc).cast(MONEY).alias("cost"),
    ).alias("piece")).to_series()
    counts = np.bincount(pieces["idx"].to_numpy(), minlength=n_rows)
    del pieces, cs_alloc, cs_credits
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
    values = struct.to_arrow()
    del struct
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    lists = pl.Series("pieces", pa.LargeListArray.from_arrays(offsets, values))
    del values
    # The currency of a piece is its day's (Snowflake prices per day).
    if prices["currency"].n_unique() <= 1:
        only = prices["currency"][0] if prices.height else config.currency
        currency = pl.lit(only, pl.String).alias("currency")
    else:
        first: dt.date = prices["day"].min()  # type: ignore[assignment]
        last: dt.date = prices["day"].max()  # type: ignore[assignment]
        currency_by_day = pl.DataFrame({"day": pl.date_range(first, last, eager=True)}).join(
            prices.select("day", "currency"), on="day", how="left", maintain_order="left")["currency"]
        offset = (pl.col("hour").dt.date() - pl.lit(first)).dt.total_days()
        span = currency_by_day.len()
        currency = (pl.when((offset >= 0) & (offset < span))
                    .then(pl.lit(currency_by_day).gather(offset.clip(0, span - 1)))
                    .otherwise(pl.lit(config.currency)).alias("currency"))
    ids = rule_ids(rules)
    attrs = base.select("query_id", "query_hash", "warehouse", "user_name", "role_name",
                        "database_name", "execution_status", "bytes_scanned")
    query_rows = (
        pl.concat([attrs, pl.DataFrame([lists]).lazy()], how="horizontal")
        .explode("pieces").filter(pl.col("pieces").is_not_null()).unnest("pieces")
        .select(
            pl.lit("query").alias("kind"), pl.col("hour").dt.date().alias("day"), "hour",
            "query_id", "query_hash", "warehouse", "user_name", "role_name", "database_name",
            "execution_status",
            # Codes to names by gathering from the small list (streams; replace_strict does not).
            pl.lit(pl.Series(tenants, dtype=pl.String)).gather(pl.col("tenant")).alias("tenant"),
            pl.lit(pl.Series(ids, dtype=pl.String)).gather(pl.col("tenant_rule_i"))
            .alias("tenant_rule"),
            pl.when(pl.col("attr")).then(pl.lit("query_attribution"))
            .otherwise(pl.lit("execution_time")).alias("method"),
            pl.col("is_last").cast(pl.Int32).alias("queries"),
            (pl.col("usage") / 1000.0).alias("execution_ms"),
            pl.when(pl.col("is_last")).then(pl.col("bytes_scanned").fill_null(0) / TB)
            .otherwise(0.0).alias("tb_scanned"),
            "compute_credits", "cloud_services_credits",
            (pl.col("compute_credits") + pl.col("cloud_services_credits")).alias("credits"),
            "cost", currency,
        )
    )
    parts = [conform(query_rows), conform(settle_idle(split, config).lazy())]
    if cs_rows.height:
        parts.append(conform(cs_rows.lazy()))
    return pl.concat(parts).with_columns(pl.lit("snowflake").alias("service_key"))


def snowflake_expected(metering: pl.LazyFrame, config: QueryCostConfig, *,
                       rates: pl.LazyFrame | None = None, start: dt.datetime | None = None,
                       end: dt.datetime | None = None) -> pl.DataFrame:
    """What the bill says: metered compute plus billed cloud services, x price, per currency."""
    meter = metering.with_columns(pl.col("start_time").dt.truncate("1h").alias("hour"))
    if start is not None:
        meter = meter.filter(pl.col("hour") >= _ts(start))
    if end is not None:
        meter = meter.filter(pl.col("hour") < _ts(end))
    m = meter.with_columns(pl.col("hour").dt.date().alias("day")).collect()
    prices = snowflake_prices(rates, m["day"].unique().to_list(), config)
    daily = (m.lazy().group_by("day").agg(pl.col("credits_compute").sum(),
                                         pl.col("credits_cloud_services").sum())
             .join(prices.lazy(), on="day")
             .with_columns((pl.col("credits_cloud_services") - pl.col("credits_compute")
                            * pl.lit(config.cloud_services_allowance).cast(MONEY))
                           .clip(lower_bound=Decimal(0)).cast(MONEY).alias("cs_billed")))
    compute = (m.lazy().join(prices.lazy(), on="day")
               .group_by("currency")
               .agg((pl.col("credits_compute") * pl.col("compute_price")).cast(MONEY).sum()
                    .alias("cost")))
    cs = daily.group_by("currency").agg((pl.col("cs_billed") * pl.col("cs_price")).cast(MONEY).sum()
                                        .alias("cost"))
    return (pl.concat([compute, cs]).group_by("currency").agg(pl.col("cost").sum())
            .sort("currency").collect())


# ---- BigQuery ----------------------------------------------------------------------------
def bigquery_cost(
    jobs: pl.LazyFrame,
    config: QueryCostConfig,
    *,
    capacity: pl.LazyFrame | None = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> pl.DataFrame:
    """``query_cost`` rows for BigQuery jobs (on-demand bytes; reservations by slot-ms)."""
    if "source" not in jobs.collect_schema().names():
        jobs = jobs.with_columns(pl.lit("bigquery").alias("source"))
    q = (resolve_tenants(jobs, config.rules)
         .select(*ATTRS, "start_time", "end_time", "bytes_scanned", "bytes_billed", "slot_ms",
                 "pricing_model", "edition", "execution_ms")
         .with_columns(pl.coalesce("start_time", "end_time").alias("start_time"))
         .with_columns((pl.col("end_time") - pl.duration(microseconds=1)).dt.truncate("1h")
                       .alias("h_last")))
    if start is not None:
        q = q.filter(pl.col("end_time") > _ts(start))
    if end is not None:
        q = q.filter(pl.col("start_time") < _ts(end))
    qd = q.with_row_index("idx").collect()
    price = pl.lit(config.bigquery_price_per_tib).cast(MONEY)
    on_demand = qd.lazy().filter(pl.col("pricing_model") == "on_demand").filter(
        (pl.col("h_last") >= _ts(start)) if start is not None else pl.lit(True)).filter(
        (pl.col("h_last") < _ts(end)) if end is not None else pl.lit(True))
    od_rows = on_demand.select(
        pl.lit("query").alias("kind"), pl.col("h_last").dt.date().alias("day"),
        pl.col("h_last").alias("hour"), *ATTRS, pl.lit("on_demand_bytes").alias("method"),
        pl.lit("bigquery:on_demand").alias("service_key"),
        pl.lit(1, pl.Int32).alias("queries"), pl.col("execution_ms").cast(pl.Float64),
        (pl.col("bytes_scanned").fill_null(0) / TB).alias("tb_scanned"),
        pl.lit(0.0).alias("compute_credits"), pl.lit(0.0).alias("cloud_services_credits"),
        pl.lit(0.0).alias("credits"),
        ((pl.col("bytes_billed").fill_null(0).cast(MONEY) * price) / pl.lit(TIB).cast(MONEY))
        .cast(MONEY).alias("cost"),
        pl.lit(config.currency).alias("currency"),
    )
    reserved = qd.lazy().filter(pl.col("pricing_model") != "on_demand")
    # A job's slot-ms are spread over its run time, hour by hour.
    spans = reserved.with_columns(
        pl.col("start_time").dt.truncate("1h").alias("h_first"),
        (pl.col("end_time") - pl.col("start_time")).dt.total_microseconds().alias("run_us"),
    ).with_columns(pl.min_horizontal("h_first", "h_last").alias("h_first"))
    exploded = (spans.with_columns(pl.datetime_ranges("h_first", "h_last", "1h").alias("hour"))
                .explode("hour"))
    overlap = (pl.min_horizontal("end_time", pl.col("hour") + pl.duration(hours=1))
               - pl.max_horizontal("start_time", "hour")).dt.total_microseconds()
    pieces = exploded.with_columns(
        pl.when(pl.col("run_us") > 0)
        .then(pl.col("slot_ms").fill_null(0).cast(pl.Float64) * overlap.clip(lower_bound=0)
              / pl.col("run_us"))
        .otherwise(pl.when(pl.col("hour") == pl.col("h_last"))
                   .then(pl.col("slot_ms").fill_null(0).cast(pl.Float64)).otherwise(0.0))
        .alias("weight"),
        (pl.col("hour") == pl.col("h_last")).alias("is_last"),
    )
    if start is not None:
        pieces = pieces.filter(pl.col("hour") >= _ts(start))
    if end is not None:
        pieces = pieces.filter(pl.col("hour") < _ts(end))
    pdf = pieces.with_columns(pl.col("weight").alias("usage")).collect()
    slot_prices = {k.upper(): v for k, v in config.bigquery_slot_hour_prices.items()}
    default_price = slot_prices.get(config.bigquery_default_edition.upper())
    if default_price is None:
        raise ConfigError(f"no slot-hour price for edition {config.bigquery_default_edition}",
                          hint="Add it to query_cost.bigquery_slot_hour_prices.")

    def edition_price(col: str) -> pl.Expr:
        return (pl.col(col).fill_null(config.bigquery_default_edition).str.to_uppercase()
                .str.replace_all(r"[ \-]", "_")
                .replace_strict({k: str(v) for k, v in slot_prices.items()}, default=str(default_price),
                                return_dtype=pl.String).cast(MONEY))

    used = (pdf.lazy().group_by(pl.col("warehouse").alias("pool"), "hour")
            .agg(pl.col("weight").sum().alias("used"), pl.col("edition").drop_nulls().first()))
    if capacity is not None:
        cap = capacity.select(pl.col("warehouse").alias("pool"), "hour",
                              pl.col("slot_ms").alias("capacity"),
                              pl.col("edition").alias("cap_edition"))
        if start is not None:
            cap = cap.filter(pl.col("hour") >= _ts(start))
        if end is not None:
            cap = cap.filter(pl.col("hour") < _ts(end))
        pools = used.join(cap, on=["pool", "hour"], how="full", coalesce=True).with_columns(
            pl.coalesce("cap_edition", "edition").alias("edition"))
    else:
        pools = used.with_columns(pl.lit(None, pl.Float64).alias("capacity"))
    pools_df = pools.with_columns(
        pl.coalesce("capacity", "used").fill_null(0.0).alias("slot_ms_billed"),
    ).with_columns(
        (pl.col("slot_ms_billed") / 3_600_000).alias("credits"),
        ((pl.col("slot_ms_billed") / 3_600_000).cast(MONEY) * edition_price("edition"))
        .cast(MONEY).alias("cost"),
        pl.lit(config.currency).alias("currency"),
        pl.col("capacity").cast(pl.Float64),
    ).select("pool", "hour", "credits", "cost", "currency", "capacity").filter(
        pl.col("pool").is_not_null() & (pl.col("credits") > 0)).collect()
    split = split_pools(pdf.select("idx", pl.col("warehouse").alias("pool"), "hour",
                                   "weight", "usage", "tenant", "is_last"), pools_df)
    p = split.pieces
    attrs = qd.select(*ATTRS, "bytes_scanned", "execution_ms").select(pl.all().gather(p["idx"]))
    res_rows = pl.concat([p.drop("tenant"), attrs], how="horizontal").lazy().select(
        pl.lit("query").alias("kind"), pl.col("hour").dt.date().alias("day"), "hour", *ATTRS,
        pl.lit("reservation_slot_ms").alias("method"),
        pl.lit("bigquery:reservation").alias("service_key"),
        pl.col("is_last").cast(pl.Int32).alias("queries"),
        pl.when(pl.col("is_last")).then(pl.col("execution_ms").cast(pl.Float64)).otherwise(0.0)
        .alias("execution_ms"),
        pl.when(pl.col("is_last")).then(pl.col("bytes_scanned").fill_null(0) / TB).otherwise(0.0)
        .alias("tb_scanned"),
        pl.col("pool_credits").alias("compute_credits"), pl.lit(0.0).alias("cloud_services_credits"),
        pl.col("pool_credits").alias("credits"), pl.col("pool_cost").alias("cost"),
        pl.lit(config.currency).alias("currency"),
    )
    idle = settle_idle(split, config).with_columns(pl.lit("bigquery:reservation").alias("service_key"))
    return pl.concat([conform(od_rows), conform(res_rows), conform(idle.lazy())]).collect()


# ---- Databricks --------------------------------------------------------------------------
def databricks_cost(usage: pl.LazyFrame, prices: pl.LazyFrame, config: QueryCostConfig) -> pl.DataFrame:
    """``query_cost`` rows for Databricks usage records priced at the list price in force."""
    u = usage.with_columns(pl.lit("databricks").alias("source"))
    u = resolve_tenants(u, config.rules)
    p = prices.select("sku_name", "usage_unit", "currency", "price_start_time", "price_end_time",
                      "price").sort("price_start_time")
    priced = (
        u.sort("usage_start_time")
        .join_asof(p, left_on="usage_start_time", right_on="price_start_time",
                   by=["sku_name", "usage_unit"], strategy="backward", check_sortedness=False)
        .with_columns(
            pl.when(pl.col("price_end_time").is_null()
                    | (pl.col("usage_start_time") < pl.col("price_end_time")))
            .then(pl.col("price")).alias("price"))
    )
    return conform(priced.select(
        pl.lit("usage").alias("kind"), "usage_date", pl.col("usage_date").alias("day"),
        pl.col("usage_start_time").dt.truncate("1h").alias("hour"),
        pl.col("record_id").alias("query_id"), "warehouse", "user_name", "tenant", "tenant_rule",
        pl.when(pl.col("price").is_null()).then(pl.lit("unpriced"))
        .otherwise(pl.lit("list_price")).alias("method"),
        pl.lit("databricks").alias("service_key"),
        pl.lit(0, pl.Int32).alias("queries"),
        pl.col("usage_quantity").cast(pl.Float64).alias("credits"),
        pl.col("usage_quantity").cast(pl.Float64).alias("compute_credits"),
        (pl.col("usage_quantity") * pl.col("price").fill_null(Decimal(0))).cast(MONEY).alias("cost"),
        pl.col("currency").fill_null(config.currency),
        pl.col("record_type").alias("execution_status"),
    )).collect()


# ---- shares for the bill -----------------------------------------------------------------
def shares_frame(cost: pl.LazyFrame) -> pl.LazyFrame:
    """Per day, service key, warehouse and tenant: cost and its share of the service-day.

    ``share`` sums to 1 per (day, service_key, currency) over warehouses and tenants;
    days whose total is not positive carry no share (nothing to split by).
    """
    g = ["day", "service_key", "currency"]
    return (
        cost.group_by(*g, "warehouse", "tenant")
        .agg(pl.col("credits").sum(), pl.col("cost").sum())
        .with_columns(pl.col("cost").sum().over(g).alias("_total"))
        .with_columns(pl.when(pl.col("_total") > 0)
                      .then(pl.col("cost").cast(pl.Float64) / pl.col("_total").cast(pl.Float64))
                      .alias("share"))
        .drop("_total")
        .select(list(SHARES_SCHEMA))
        .sort("day", "service_key", "warehouse", "tenant", nulls_last=True)
    )


def bridge_shares(wh: Warehouse) -> pl.LazyFrame:
    """``day, service_key, tenant, share``: how each service-day's bill splits to tenants.

    The allocation engine splits a billing line whose :func:`service_key_expr` matches a
    ``service_key`` here, on a day present here, by ``share`` (method ``usage:query_history``).
    """
    if not wh.has_data(QUERY_SHARES):
        return pl.LazyFrame(schema={"day": pl.Date, "service_key": pl.String, "tenant": pl.String,
                                    "share": pl.Float64})
    lf = wh.scan(QUERY_SHARES).filter(pl.col("share").is_not_null())
    g = ["day", "service_key"]
    return (
        lf.group_by(*g, "tenant").agg(pl.col("cost").cast(pl.Float64).sum().alias("c"))
        .with_columns((pl.col("c") / pl.col("c").sum().over(g)).alias("share"))
        .filter(pl.col("c").sum().over(g) > 0)
        .select(*g, "tenant", "share")
        .sort(*g, "tenant")
    )


# Which billing lines each service key's shares split (FOCUS columns, case-insensitive).
BILL_MATCHERS: Final[tuple[tuple[str, str, str], ...]] = (
    # (service_key, column, regular expression)
    ("snowflake", "PublisherName", r"(?i)snowflake"),
    ("snowflake", "ServiceName", r"(?i)snowflake"),
    ("bigquery:reservation", "ServiceName", r"(?i)^bigquery reservation"),
    ("bigquery:on_demand", "ServiceName", r"(?i)^bigquery$"),
    ("databricks", "PublisherName", r"(?i)databricks"),
    ("databricks", "ServiceName", r"(?i)databricks"),
)


def service_key_expr(columns: Sequence[str]) -> pl.Expr:
    """The service key a FOCUS billing row belongs to (null when none)."""
    expr: pl.Expr = pl.lit(None, pl.String)
    for key, column, pattern in reversed(BILL_MATCHERS):
        if column in columns:
            expr = pl.when(pl.col(column).fill_null("").str.contains(pattern)).then(pl.lit(key)
                                                                                   ).otherwise(expr)
    return expr.alias("service_key")


def split_by_shares(billing: pl.LazyFrame, shares: pl.LazyFrame,
                    cost_columns: Sequence[str] = ("BilledCost", "EffectiveCost")) -> pl.LazyFrame:
    """Billing rows matched to shares become one row per tenant, cost split exactly.

    Matching rows (service key and day of ChargePeriodStart) get ``x_Tenant``,
    ``x_AllocationMethod`` = ``usage:query_history`` and ``x_AllocationRule`` =
    ``query_history:<service_key>``; the rounding remainder of each row goes to its
    largest share, so every row's cost is preserved exactly. Other rows pass unchanged.
    """
    names = billing.collect_schema().names()
    keyed = billing.with_row_index("_row").with_columns(
        service_key_expr(names).alias("_service_key"),
        pl.col("ChargePeriodStart").dt.date().alias("_day"))
    sh = shares.select(pl.col("day").alias("_day"), pl.col("service_key").alias("_service_key"),
                       pl.col("tenant").alias("_tenant"), "share")
    matched = keyed.join(sh, on=["_day", "_service_key"], how="inner")
    anchor = (pl.int_range(pl.len()).over("_row") == pl.col("share").arg_max().over("_row"))
    split = matched.with_columns(
        *[(_money(pl.col(c).cast(pl.Float64) * pl.col("share"))).alias(f"_raw_{c}") for c in cost_columns]
    ).with_columns(
        *[(pl.col(f"_raw_{c}") + pl.when(anchor).then(pl.col(c) - pl.col(f"_raw_{c}").sum().over("_row"))
           .otherwise(Decimal(0))).cast(MONEY).alias(c) for c in cost_columns],
        pl.col("_tenant").alias("x_Tenant"),
        pl.lit(METHOD).alias("x_AllocationMethod"),
        pl.concat_str(pl.lit("query_history:"), pl.col("_service_key")).alias("x_AllocationRule"),
    ).drop([f"_raw_{c}" for c in cost_columns] + ["_tenant", "share"])
    unmatched = keyed.join(sh.select("_day", "_service_key").unique(), on=["_day", "_service_key"],
                           how="anti")
    extra = [c for c in ("x_Tenant", "x_AllocationMethod", "x_AllocationRule") if c not in names]
    unmatched = unmatched.with_columns(pl.lit(None, pl.String).alias(c) for c in extra)
    return (pl.concat([split, unmatched], how="diagonal_relaxed").sort("_row")
            .drop("_row", "_service_key", "_day"))


# ---- the stage ---------------------------------------------------------------------------
def _month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    first = dt.datetime.strptime(month, "%Y-%m").replace(tzinfo=dt.UTC)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return first, nxt


def _next_month(month: str) -> str:
    return _month_bounds(month)[1].strftime("%Y-%m")


def _months(wh: Warehouse, dataset: str, source: str) -> set[str]:
    return {k[MONTH] for k in wh.partitions(dataset) if k.get("source") == source and MONTH in k}


def _scan(wh: Warehouse, dataset: str, source: str, months: Sequence[str] | None = None
          ) -> pl.LazyFrame | None:
    where: dict[str, str | Sequence[str]] = {"source": source}
    if months is not None:
        have = _months(wh, dataset, source)
        months = [m for m in months if m in have]
        if not months:
            return None
        where[MONTH] = months
    elif not any(k.get("source") == source for k in wh.partitions(dataset)):
        return None
    lf = wh.scan(dataset, where=where)
    return lf.drop([c for c in ("source", MONTH) if c in lf.collect_schema().names()])


@dataclass
class StageResult:
    run_id: str
    months: dict[str, list[str]]  # source -> months computed
    totals: list[PeriodTotal]
    notes: list[str] = field(default_factory=list)


def _empty() -> pl.LazyFrame:
    return conform(pl.LazyFrame(schema=COST_SCHEMA))


def compute_month(wh: Warehouse, source: str, month: str, config: QueryCostConfig) -> pl.LazyFrame:
    """The month's ``query_cost`` rows (lazy: stream it to Parquet)."""
    start, end = _month_bounds(month)
    window = [month, _next_month(month)]
    if source == "snowflake":
        queries = _scan(wh, QUERIES, source, window)
        metering = _scan(wh, METERING, source, [month])
        if metering is None:
            return _empty()
        if queries is None:
            from models.query_store import QUERY_SCHEMA

            queries = pl.LazyFrame(schema=QUERY_SCHEMA)
        return snowflake_cost(queries, metering, config, rates=_scan(wh, RATES, source),
                              attribution=_scan(wh, ATTRIBUTION, source, window),
                              start=start, end=end)
    if source == "bigquery":
        jobs = _scan(wh, QUERIES, source, window)
        if jobs is None:
            return _empty()
        return bigquery_cost(jobs, config, capacity=_scan(wh, CAPACITY, source, [month]),
                             start=start, end=end).lazy()
    usage = _scan(wh, DBX_USAGE, source, [month])
    prices = _scan(wh, DBX_PRICES, source)
    if usage is None:
        return _empty()
    if prices is None:
        raise BadInputError("Databricks usage was collected without list prices",
                            hint="Collect list_prices.csv with `finops collect databricks`.")
    return databricks_cost(usage, prices, config).lazy()


def expected_total(wh: Warehouse, source: str, month: str, config: QueryCostConfig
                   ) -> pl.DataFrame | None:
    """The source's own total for the month, independently of the split (None: no pools)."""
    if source != "snowflake":
        return None
    start, end = _month_bounds(month)
    metering = _scan(wh, METERING, source, [month])
    if metering is None:
        return None
    return snowflake_expected(metering, config, rates=_scan(wh, RATES, source), start=start, end=end)


def run_query_cost(wh: Warehouse, state: State, config: QueryCostConfig, *,
                   sources: Sequence[str] | None = None) -> StageResult:
    """Compute ``query_cost`` and ``query_shares`` for every collected month."""
    todo: list[tuple[str, str]] = []
    for source in sources or ("snowflake", "bigquery", "databricks"):
        if source == "snowflake":
            months = _months(wh, METERING, source) | _months(wh, QUERIES, source)
        elif source == "bigquery":
            months = _months(wh, QUERIES, source)
        else:
            months = _months(wh, DBX_USAGE, source)
        todo.extend((source, m) for m in sorted(months))
    run_id = state.start_run("query_cost", None, [f"{s}/{m}" for s, m in todo])
    totals: list[PeriodTotal] = []
    notes: list[str] = []
    try:
        with progress("query cost", len(todo)) as step:
            for source, month in todo:
                keys = {"source": source, MONTH: month}
                written = wh.replace_partition(QUERY_COST, keys,
                                               compute_month(wh, source, month, config),
                                               run_id=run_id)
                cost = pl.scan_parquet(written.path)
                expected = expected_total(wh, source, month, config)
                got = (cost.group_by("currency").agg(pl.col("cost").sum(), pl.len().alias("rows"))
                       .sort("currency").collect())
                if expected is not None:
                    exp = {r["currency"]: r["cost"] for r in expected.iter_rows(named=True)}
                    have = {r["currency"]: r["cost"] for r in got.iter_rows(named=True)}
                    for cur in set(exp) | set(have):
                        diff = (exp.get(cur) or Decimal(0)) - (have.get(cur) or Decimal(0))
                        if abs(diff) >= CENT / 2:
                            # The month is not replaced with a split that lost money.
                            wh.delete_partition(QUERY_COST, keys)
                            raise StageError(f"query cost {source} {month} {cur}: split "
                                             f"{have.get(cur)} but metered {exp.get(cur)}")
                wh.replace_partition(QUERY_SHARES, keys, shares_frame(cost).collect(),
                                     run_id=run_id)
                unpriced = cost.filter(pl.col("method") == "unpriced").select(pl.len()).collect().item()
                if unpriced:
                    notes.append(f"{source} {month}: {unpriced} usage records have no list price "
                                 "in force (cost 0); collect list_prices again")
                for r in got.iter_rows(named=True):
                    totals.append(PeriodTotal(f"{source}/{month}", r["currency"] or "?", r["rows"],
                                              r["cost"] or Decimal(0), r["cost"] or Decimal(0)))
                step.advance(f"{source} {month}")
        # Months no longer collected must not linger.
        keep = set(todo)
        for ds in (QUERY_COST, QUERY_SHARES):
            for keys in wh.partitions(ds):
                if (keys.get("source"), keys.get(MONTH)) not in keep and (
                        sources is None or keys.get("source") in sources):
                    wh.delete_partition(ds, keys)
        state.finish_run(run_id, status="succeeded", rows_out=sum(t.rows for t in totals),
                         totals=totals, message="; ".join(notes)[:2000] or None)
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=str(exc)[:2000])
        raise
    finally:
        wh.drop_staging(run_id)
    computed: dict[str, list[str]] = {}
    for source, month in todo:
        computed.setdefault(source, []).append(month)
    return StageResult(run_id, computed, totals, notes)


def stage_config(wh: Warehouse) -> QueryCostConfig:
    from finops.settings import load_settings
    from models.allocation.engine import default_config_path

    settings = load_settings(home=wh.home)
    path = settings.allocation_config
    if path is None and default_config_path(wh.home).exists():
        path = default_config_path(wh.home)
    return load_config(path, credit_price=settings.snowflake.credit_price)


def run_stage(wh: Warehouse, state: State) -> str:
    """The pipeline stage: query cost and shares for every collected month."""
    result = run_query_cost(wh, state, stage_config(wh))
    if not result.months:
        return "no query history collected"
    by_cur: dict[str, Decimal] = {}
    for t in result.totals:
        by_cur[t.currency] = by_cur.get(t.currency, Decimal(0)) + t.billed_cost
    money = ", ".join(f"{v.quantize(CENT)} {k}" for k, v in sorted(by_cur.items()))
    parts = ", ".join(f"{s} {len(m)} month(s)" for s, m in result.months.items())
    warn = f"; {len(result.notes)} warning(s): {result.notes[0]}" if result.notes else ""
    return f"query cost: {parts}; {money}{warn}"


def is_stale(wh: Warehouse, state: State) -> bool:
    """True when a query history was collected after the last query-cost run."""
    collected = [r for r in state.runs(stage="collect", limit=200)
                 if r["status"] == "succeeded" and r["source"] in ("snowflake", "bigquery", "databricks")]
    computed = [r for r in state.runs(stage="query_cost", limit=1) if r["status"] == "succeeded"]
    if not collected:
        return False
    if not computed or not wh.has_data(QUERY_COST):
        return True
    return bool(max(r["ended_at"] for r in collected) >= computed[0]["ended_at"])


# ---- unit economics (pure functions for the CLI and the app) ---------------------------------
GROUPS: Final[dict[str, str]] = {
    "tenant": "tenant", "warehouse": "warehouse", "user": "user_name", "query_hash": "query_hash",
    "source": "source", "day": "day", "service": "service_key",
}


def check_group(by: str) -> str:
    if by not in GROUPS:
        raise BadInputError(f"--by {by!r} is not a grouping." + near_names(by, GROUPS),
                            hint=f"Use one of: {', '.join(GROUPS)}.")
    return by


def scan_cost(wh: Warehouse, *, since: dt.date | None = None, until: dt.date | None = None,
              source: str | None = None) -> pl.LazyFrame:
    if not wh.has_data(QUERY_COST):
        return pl.LazyFrame(schema={**COST_SCHEMA, "source": pl.String, MONTH: pl.String})
    lf = wh.scan(QUERY_COST, where={"source": source} if source else None)
    if since is not None:
        lf = lf.filter(pl.col("day") >= since)
    if until is not None:
        lf = lf.filter(pl.col("day") <= until)
    return lf


def group_key(by: str) -> pl.Expr:
    """The group value of a row; idle cost that stays idle is its own group, ``idle``."""
    column = pl.col(GROUPS[by]).cast(pl.String)
    if by in ("tenant", "warehouse", "source", "day", "service"):
        stays_idle = (pl.col("kind") == "idle") & (pl.col("tenant") == IDLE)
        return pl.when(stays_idle).then(pl.lit(IDLE)).otherwise(column.fill_null(UNALLOCATED)
                                                               ).alias(by)
    # Users and query hashes never own idle time or unattributed cloud services.
    return (pl.when(pl.col("kind") == "idle").then(pl.lit(IDLE))
            .when(pl.col("kind") == "cloud_services").then(pl.lit(UNALLOCATED))
            .otherwise(column.fill_null(UNALLOCATED)).alias(by))


def unit_costs(lf: pl.LazyFrame, by: Sequence[str]) -> pl.LazyFrame:
    keys = list(by)
    return (
        lf.group_by(keys)
        .agg(pl.col("queries").sum().cast(pl.Int64), pl.col("tb_scanned").sum(),
             pl.col("credits").sum(), pl.col("cost").sum())
        .with_columns(
            pl.when(pl.col("queries") > 0)
            .then(pl.col("cost").cast(pl.Float64) / pl.col("queries"))
            .alias("cost_per_query"),
            pl.when(pl.col("tb_scanned") > 0)
            .then(pl.col("cost").cast(pl.Float64) / pl.col("tb_scanned"))
            .alias("cost_per_tb"),
        )
        .with_columns(pl.col("cost_per_query", "cost_per_tb").round(6).cast(pl.Decimal(38, 6)),
                      pl.col("tb_scanned").round(6), pl.col("credits").round(6))
    )


def cost_by(wh: Warehouse, by: str, *, since: dt.date | None = None, until: dt.date | None = None,
            source: str | None = None) -> pl.DataFrame:
    """One row per group: the key (named after ``by``), queries, tb_scanned, credits, cost,
    cost_per_query, cost_per_tb; ``currency`` is added when there is more than one."""
    check_group(by)
    lf = scan_cost(wh, since=since, until=until, source=source).with_columns(group_key(by))
    keys = [by]
    if lf.select(pl.col("currency").n_unique()).collect().item() > 1:
        keys.append("currency")
    return (unit_costs(lf, keys)
            .select(*keys, "queries", "tb_scanned", "credits", "cost", "cost_per_query", "cost_per_tb")
            .sort("cost", *keys, descending=[True, *[False] * len(keys)], nulls_last=True)
            .collect())


def tenant_daily(wh: Warehouse, *, since: dt.date | None = None, source: str | None = None
                 ) -> pl.DataFrame:
    """Cost per tenant per day, with queries, TB scanned and unit costs."""
    lf = scan_cost(wh, since=since, source=source).with_columns(group_key("tenant"))
    return unit_costs(lf, ["day", "tenant", "currency"]).sort("day", "tenant").collect()


def top_recurring(wh: Warehouse, *, limit: int = 20, min_runs: int = 2, since: dt.date | None = None,
                  source: str | None = None) -> pl.DataFrame:
    """The most expensive recurring queries (by parameterised hash) and their weekly trend.

    ``trend`` is the relative change of cost between the last two weeks with data
    (null with one week); ``weekly`` lists cost per ISO week, oldest first.
    """
    lf = scan_cost(wh, since=since, source=source).filter(
        (pl.col("kind") == "query") & pl.col("query_hash").is_not_null())
    totals = (unit_costs(lf, ["query_hash", "currency"]).filter(pl.col("queries") >= min_runs)
              .sort("cost", descending=True).head(limit))
    weekly = (lf.with_columns(pl.col("day").dt.truncate("1w").alias("week"))
              .group_by("query_hash", "currency", "week").agg(pl.col("cost").sum())
              .sort("week")
              .group_by("query_hash", "currency")
              .agg(pl.col("week"), pl.col("cost").cast(pl.Float64).alias("weekly"))
              .with_columns(
                  pl.when(pl.col("weekly").list.len() >= 2)
                  .then((pl.col("weekly").list.get(-1, null_on_oob=True)
                         - pl.col("weekly").list.get(-2, null_on_oob=True))
                        / pl.col("weekly").list.get(-2, null_on_oob=True))
                  .alias("trend")))
    examples = lf.group_by("query_hash").agg(
        pl.col("tenant").mode().first().alias("tenant"),
        pl.col("warehouse").mode().first().alias("warehouse"))
    return (totals.join(weekly, on=["query_hash", "currency"], how="left")
            .join(examples, on="query_hash", how="left")
            .sort("cost", descending=True).collect())
