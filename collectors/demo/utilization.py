"""Right-sizing inputs: hourly utilisation of compute resources, and the inventory.

Utilisation follows each resource's profile (busy, normal, over-provisioned, idle) with
a daily and weekly rhythm; inventory lists what exists on the window's last day,
unattached volumes included, at the same on-demand hourly price the billing rows use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from collectors.demo.infrastructure import BUSY, IDLE, NORMAL, OVER
from collectors.demo.window import Window, midnight

DAYS: Final = 30
# Resources with series at most; at large scales the file grows to this and stops.
MAX_RESOURCES: Final = 300
COMPUTE_TYPES: Final = ("ec2_instance", "rds_instance", "gce_instance", "azure_vm")
METRICS: Final = ("cpu_percent", "memory_percent", "network_bytes", "disk_bytes")
# Mean CPU and memory per profile, percent.
CPU: Final = {BUSY: 64.0, NORMAL: 38.0, OVER: 6.5, IDLE: 1.1}
MEMORY: Final = {BUSY: 72.0, NORMAL: 55.0, OVER: 17.0, IDLE: 8.0}
TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"


def _candidates(resources: pl.DataFrame, first_day: int, last_day: int) -> pl.DataFrame:
    alive = resources.filter(
        pl.col("resource_type").is_in(COMPUTE_TYPES)
        & (pl.col("end") >= first_day) & (pl.col("start") <= last_day)
    ).with_row_index("_order")
    if alive.height <= MAX_RESOURCES:
        return alive
    # Keep every wasteful resource there is room for: they are what right-sizing is about.
    waste = alive.filter(pl.col("util").is_in([OVER, IDLE])).head(MAX_RESOURCES // 2)
    rest = alive.filter(~pl.col("_order").is_in(waste["_order"].implode()))
    return pl.concat([waste, rest.head(MAX_RESOURCES - waste.height)]).sort("_order")


def utilization_frame(resources: pl.DataFrame, window: Window, rng: np.random.Generator
                      ) -> pl.DataFrame:
    last_day = window.n_days - 1
    first_day = max(0, last_day - DAYS + 1)
    chosen = _candidates(resources, first_day, last_day)
    n_res = chosen.height
    hours = (last_day - first_day + 1) * 24
    hour_of_day = np.tile(np.arange(24), hours // 24)
    weekday = np.repeat(window.weekday[first_day:], 24)
    day_index = np.repeat(np.arange(first_day, last_day + 1), 24)
    # Load peaks in the US afternoon (UTC evening) and falls at weekends.
    diurnal = 0.55 + 0.45 * np.cos(2 * np.pi * (hour_of_day - 19) / 24)
    weekly = np.where(weekday >= 5, 0.62, 1.0)
    util = chosen["util"].to_list()
    cpu_mean = np.array([CPU[u] for u in util])[:, None]
    mem_mean = np.array([MEMORY[u] for u in util])[:, None]
    rhythm = np.where(np.array([u == IDLE for u in util])[:, None], 1.0,
                      (0.55 + 0.45 * diurnal) * weekly)
    noise = np.exp(rng.normal(0.0, 0.12, (n_res, hours)))
    cpu = np.clip(cpu_mean * rhythm * noise, 0.05, 100.0)
    mem = np.clip(mem_mean * (0.93 + 0.07 * rhythm) * np.exp(rng.normal(0.0, 0.03,
                                                                        (n_res, hours))), 1, 99)
    vcpu = np.maximum(chosen["vcpu"].to_numpy(), 1)[:, None]
    net_noise = np.exp(rng.normal(0.0, 0.3, (n_res, hours)))
    is_idle = np.array([u == IDLE for u in util])[:, None]
    # An idle box only answers health checks: tens of kilobytes an hour, so the right-sizing
    # idle rule (under 5 MB a day) sees it as idle.
    net = np.where(is_idle, 3.0e4 * net_noise, cpu / 100 * vcpu * 3.5e8 * net_noise + 2e5)
    disk = cpu / 100 * vcpu * 1.8e8 * np.exp(rng.normal(0.0, 0.4, (n_res, hours))) + 5e4
    start = chosen["start"].to_numpy()[:, None]
    end = chosen["end"].to_numpy()[:, None]
    alive = (day_index[None, :] >= start) & (day_index[None, :] <= end)
    res_i, hour_i = np.nonzero(alive)
    origin = midnight(window.day(first_day)).replace(tzinfo=None)
    stamps = pl.Series(np.datetime64(origin, "us") + hour_i.astype("timedelta64[h]"))
    ids = chosen["resource_id"]
    parts = []
    for name, values, digits in (("cpu_percent", cpu, 2), ("memory_percent", mem, 2),
                                 ("network_bytes", net, 0), ("disk_bytes", disk, 0)):
        parts.append(pl.DataFrame({
            "timestamp": stamps,
            "resource_id": ids.gather(res_i),
            "metric": pl.Series([name]).gather(np.zeros(res_i.size, dtype=np.int64)),
            "value": np.round(values[res_i, hour_i], digits),
        }))
    # Metric by metric, each resource's hours in order: what a metrics export looks like.
    return pl.concat(parts)


def inventory_frame(resources: pl.DataFrame, window: Window) -> pl.DataFrame:
    """What exists on the window's last day, in the columns ``finops collect inventory``
    reads (the six it requires first)."""
    last_day = window.n_days - 1
    origin = midnight(window.start)
    volume = pl.col("resource_type").is_in(["ebs_volume", "pd_disk", "managed_disk"])
    return resources.filter(pl.col("end") >= last_day, pl.col("start") <= last_day).select(
        "resource_id", "provider", "region", "resource_type", "instance_type", "hourly_cost",
        "currency",
        pl.when(volume)
        .then(pl.when(pl.col("attached")).then(pl.lit("in-use")).otherwise(pl.lit("available")))
        .when(pl.col("resource_type") == "load_balancer").then(pl.lit("active"))
        .otherwise(pl.lit("running")).alias("state"),
        "attached",
        "size_gb",
        (pl.lit(origin) + pl.duration(days=pl.col("launched"))).alias("launch_time"),
        "account_id",
        "name",
    ).sort("provider", "resource_type", "resource_id")


def write_files(folder: Path, resources: pl.DataFrame, window: Window,
                rng: np.random.Generator) -> tuple[Path, Path, int]:
    folder.mkdir(parents=True, exist_ok=True)
    util_path = folder / "utilization.csv"
    inv_path = folder / "inventory.csv"
    util = utilization_frame(resources, window, rng)
    util.write_csv(util_path, datetime_format=TIME_FORMAT)
    inventory_frame(resources, window).write_csv(inv_path, datetime_format=TIME_FORMAT)
    return util_path, inv_path, util.height
