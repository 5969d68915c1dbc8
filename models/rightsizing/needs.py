"""What each resource used over the lookback, from its utilisation samples.

Statistics are over the samples themselves (whatever their interval). The CPU need is
not the sample percentile itself but its distribution-free *upper confidence bound*: of
``n`` samples sorted ascending, the ``k``-th, with ``k`` the smallest rank such that
``P(Binomial(n, q) ≤ k − 1) ≥ confidence`` (q = 0.99 for p99, confidence 0.95 by
default). Whatever the workload's distribution, the true q-quantile lies at or below that
sample with probability ≥ ``confidence``; with few samples the bound is the maximum. With
14 days of 5-minute data (4,032 samples) the bound of p99 is the 29th-largest sample
instead of the 40th; with hourly data (336) it is the maximum. ``confidence = 0`` uses the
plain sample percentile (``higher`` rule: never interpolated down). Memory need is the
maximum. Hours observed and days covered count the distinct clock hours and UTC dates that
hold at least one CPU sample.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl


@dataclass(frozen=True)
class Usage:
    resource_id: str
    percentile: float
    cpu_samples: int = 0
    hours_observed: int = 0
    days_covered: int = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    cpu_p: float | None = None  # the need: upper confidence bound of the percentile
    cpu_p_sample: float | None = None  # the plain sample percentile
    bound_rank: int | None = None  # rank (1 = smallest) of the sample used as the bound
    cpu_p95: float | None = None
    cpu_max: float | None = None
    cpu_mean: float | None = None
    mem_samples: int = 0
    mem_max: float | None = None
    net_samples: int = 0
    net_total: float | None = None
    net_daily_max: float | None = None  # the busiest UTC day's network bytes
    disk_total: float | None = None
    hourly_cpu: tuple[float, ...] = ()  # mean CPU % of each observed hour, in order
    daily: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def memory_observed(self) -> bool:
        return self.mem_samples > 0 and self.mem_max is not None

    def span_hours(self, as_of: dt.datetime, window_start: dt.datetime) -> float:
        """Hours from the first observed hour (or the window's start) to ``as_of``."""
        first = self.first or window_start
        begin = max(window_start, first.replace(minute=0, second=0, microsecond=0))
        return max((as_of - begin).total_seconds() / 3600.0, 1.0)

    def running_share(self, as_of: dt.datetime, window_start: dt.datetime) -> float:
        """Share of the time since it was first seen that it ran (had samples)."""
        return min(1.0, self.hours_observed / self.span_hours(as_of, window_start))


def _pct(p: float) -> str:
    return f"p{p:g}"


def bound_rank(n: int, q: float, confidence: float) -> int:
    """The rank k (1-based, capped at n) of the order statistic that bounds the q-quantile
    from above with probability ≥ ``confidence``; the ``higher``-rule rank when 0."""
    if n <= 0:
        return 0
    plain = min(n, math.ceil(q * (n - 1)) + 1)  # numpy's and polars' "higher" rule
    if confidence <= 0:
        return plain
    if q >= 1.0:
        return n
    # P(Binomial(n, q) ≤ j), accumulated from j = 0 in log space.
    log_q, log_1q = math.log(q), math.log1p(-q)
    cdf = 0.0
    for j in range(n):
        cdf += math.exp(math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
                        + j * log_q + (n - j) * log_1q)
        if cdf >= confidence:
            return max(plain, min(n, j + 1))
    return n


def usage_by_resource(util: pl.DataFrame, *, percentile: float,
                      confidence: float = 0.95) -> dict[str, Usage]:
    """:class:`Usage` of every resource with samples in ``util`` (timestamp, resource_id,
    metric, value), already limited to the lookback window."""
    if util.is_empty():
        return {}
    q = percentile / 100.0
    ts = pl.col("timestamp")
    cpu = util.filter(pl.col("metric") == "cpu_percent")
    mem = util.filter(pl.col("metric") == "memory_percent")
    net = util.filter(pl.col("metric") == "network_bytes")
    disk = util.filter(pl.col("metric") == "disk_bytes")
    v = pl.col("value")
    counts = cpu.group_by("resource_id").agg(pl.len().alias("_n"))
    ranks = {n: bound_rank(n, q, confidence) for n in counts["_n"].unique().to_list()}
    cpu = cpu.join(counts.with_columns(
        pl.col("_n").replace_strict(ranks, return_dtype=pl.Int64).alias("_rank")), on="resource_id")
    cpu_stats = cpu.group_by("resource_id").agg(
        v.sort().get(pl.col("_rank").first() - 1).alias("cpu_p"), pl.col("_rank").first().alias("_rank"),
        pl.len().alias("cpu_samples"),
        ts.dt.truncate("1h").n_unique().alias("hours_observed"),
        ts.dt.date().n_unique().alias("days_covered"),
        ts.min().alias("first"), ts.max().alias("last"),
        v.quantile(q, "higher").alias("cpu_p_sample"), v.quantile(0.95, "higher").alias("cpu_p95"),
        v.max().alias("cpu_max"), v.mean().alias("cpu_mean"),
    )
    hourly = (cpu.group_by("resource_id", ts.dt.truncate("1h").alias("hour")).agg(v.mean())
              .sort("resource_id", "hour").group_by("resource_id", maintain_order=True)
              .agg(v.alias("hourly_cpu")))
    mem_stats = mem.group_by("resource_id").agg(pl.len().alias("mem_samples"), v.max().alias("mem_max"))
    net_day = net.group_by("resource_id", ts.dt.date().alias("date")).agg(v.sum().alias("net_bytes"))
    net_stats = net.group_by("resource_id").agg(pl.len().alias("net_samples"), v.sum().alias("net_total")
                                                ).join(net_day.group_by("resource_id").agg(
                                                    pl.col("net_bytes").max().alias("net_daily_max")),
                                                    on="resource_id")
    disk_stats = disk.group_by("resource_id").agg(v.sum().alias("disk_total"))
    day = ts.dt.date().alias("date")
    daily = (
        cpu.group_by("resource_id", day).agg(v.quantile(q, "higher").alias("cpu_p"),
                                             v.max().alias("cpu_max"))
        .join(mem.group_by("resource_id", day).agg(v.max().alias("memory_max")),
              on=["resource_id", "date"], how="full", coalesce=True)
        .join(net_day, on=["resource_id", "date"], how="full", coalesce=True)
        .sort("resource_id", "date")
        .group_by("resource_id", maintain_order=True)
        .agg(pl.struct("date", "cpu_p", "cpu_max", "memory_max", "net_bytes").alias("daily"))
    )
    ids = pl.concat([f.select("resource_id") for f in (cpu_stats, mem_stats, net_stats, disk_stats)]
                    ).unique()
    table = ids
    for part in (cpu_stats, hourly, mem_stats, net_stats, disk_stats, daily):
        table = table.join(part, on="resource_id", how="left")
    out: dict[str, Usage] = {}
    label = _pct(percentile)
    for r in table.iter_rows(named=True):
        days = tuple(
            {"date": d["date"].isoformat(), f"cpu_{label}": _round(d["cpu_p"]),
             "cpu_max": _round(d["cpu_max"]), "memory_max": _round(d["memory_max"]),
             "network_bytes": None if d["net_bytes"] is None else round(d["net_bytes"])}
            for d in (r["daily"] or [])
        )
        out[r["resource_id"]] = Usage(
            r["resource_id"], percentile, int(r["cpu_samples"] or 0), int(r["hours_observed"] or 0),
            int(r["days_covered"] or 0), r["first"], r["last"], r["cpu_p"], r["cpu_p_sample"], r["_rank"],
            r["cpu_p95"], r["cpu_max"],
            r["cpu_mean"], int(r["mem_samples"] or 0), r["mem_max"], int(r["net_samples"] or 0),
            r["net_total"], r["net_daily_max"], r["disk_total"], tuple(r["hourly_cpu"] or ()), days,
        )
    return out


def _round(x: float | None, places: int = 2) -> float | None:
    return None if x is None else round(float(x), places)
