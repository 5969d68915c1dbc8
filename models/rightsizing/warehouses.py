"""Warehouses: Snowflake size and auto-suspend, BigQuery on-demand versus editions.

**Snowflake.** Input: one row per query, ``warehouse_name, start_time, end_time,
execution_time, queued_time`` (times in milliseconds), optionally ``warehouse_size``.
A query executes over ``[end_time − execution_time, end_time]``; the union of these is the
warehouse's *busy* time ``B``; between busy blocks lie the idle gaps. With auto-suspend
``S`` the warehouse is billed, per second with a 60-second minimum per resume, for

    T(S) = Σ over runs of max(60 s, last end − first start + S),

a run being busy blocks separated by gaps of at most ``S`` (a longer gap suspends it).
Credits = T × credits-per-hour of its size. ``S`` is the warehouse's setting when given,
else the value that makes ``T(S)`` match the metered credits when metering is given,
else ``default_auto_suspend_s`` (600 s, Snowflake's default).

- *Auto-suspend too long*: savings = (T(S) − T(S′)) × rate, with S′ =
  ``target_auto_suspend_s`` (60 s); extra resumes are charged by the model's 60 s minimum.
- *Oversized*: average running queries ``Σ execution / T(S)`` below ``max_warehouse_load``
  and queued time under ``max_queued_share`` of execution time. One size down halves the
  rate; assuming the worst case (every query runs twice as long), billed time becomes
  ``T + B``: savings = ``T × rate − (T + B) × rate / 2 = (T − B) × rate / 2``, which is never
  negative. The two savings overlap: applying both saves less than their sum.

**BigQuery.** Input: one row per job, ``project, start_time, bytes_billed, slot_ms`` and
optionally ``pricing_model``. On demand costs ``TiB billed × bq_on_demand_per_tib``;
editions cost ``slot-hours × bq_slot_hour_price × bq_autoscale_overhead`` (the autoscaler
bills in 50-slot steps with a one-minute minimum, so more slot-hours than jobs use). The
break-even is ``bq_on_demand_per_tib / (bq_slot_hour_price × overhead)`` slot-hours per TiB:
below it editions are cheaper.

Monthly figures scale the window's savings by 730 hours / the window's hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

import numpy as np
import polars as pl

from models.rightsizing.base import Recommendation, cents, clamp_confidence, confidence_label, dec
from models.rightsizing.settings import HOURS_PER_MONTH, RightsizingSettings

SIZES: Final = ("XSMALL", "SMALL", "MEDIUM", "LARGE", "XLARGE", "2XLARGE", "3XLARGE", "4XLARGE",
                "5XLARGE", "6XLARGE")
SIZE_NAMES: Final = ("X-Small", "Small", "Medium", "Large", "X-Large", "2X-Large", "3X-Large",
                     "4X-Large", "5X-Large", "6X-Large")
MIN_BILLED_S: Final = 60.0
TIB: Final = 2**40


def size_index(text: str | None) -> int | None:
    if not text:
        return None
    t = text.upper().replace("-", "").replace(" ", "").replace("_", "")
    t = {"XS": "XSMALL", "XXLARGE": "2XLARGE", "XXXLARGE": "3XLARGE", "X4LARGE": "4XLARGE",
         "X5LARGE": "5XLARGE", "X6LARGE": "6XLARGE", "S": "SMALL", "M": "MEDIUM", "L": "LARGE",
         "XL": "XLARGE"}.get(t, t)
    return SIZES.index(t) if t in SIZES else None


def credits_per_hour(size: int) -> float:
    return float(2**size)


def busy_blocks(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The union of [start, end] intervals (seconds), as sorted disjoint blocks."""
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    out_s: list[float] = []
    out_e: list[float] = []
    for a, b in zip(s.tolist(), e.tolist(), strict=True):
        if out_e and a <= out_e[-1]:
            out_e[-1] = max(out_e[-1], b)
        else:
            out_s.append(a)
            out_e.append(b)
    return np.asarray(out_s, dtype=np.float64), np.asarray(out_e, dtype=np.float64)


def billed_seconds(bs: np.ndarray, be: np.ndarray, suspend_s: float) -> float:
    """T(S): seconds billed with auto-suspend ``suspend_s`` (see the module docstring)."""
    if bs.size == 0:
        return 0.0
    gaps = bs[1:] - be[:-1]
    breaks = np.flatnonzero(gaps > suspend_s)
    first = np.concatenate(([0], breaks + 1))
    last = np.concatenate((breaks, [bs.size - 1]))
    runs = be[last] - bs[first] + suspend_s
    return float(np.maximum(runs, MIN_BILLED_S).sum())


def infer_suspend(bs: np.ndarray, be: np.ndarray, metered_s: float) -> float | None:
    """The auto-suspend S whose T(S) matches ``metered_s`` (bisection; T grows with S)."""
    lo, hi = 0.0, 86_400.0
    if not billed_seconds(bs, be, lo) <= metered_s <= billed_seconds(bs, be, hi):
        return None
    for _ in range(60):
        mid = (lo + hi) / 2
        if billed_seconds(bs, be, mid) < metered_s:
            lo = mid
        else:
            hi = mid
    return round(hi)


def _month_factor(window_hours: float) -> Decimal:
    return HOURS_PER_MONTH / Decimal(repr(max(window_hours, 1.0)))


def snowflake_warehouses(
    queries: pl.DataFrame, *, settings: RightsizingSettings, credit_price: Decimal | None = None,
    auto_suspend: Mapping[str, int] | None = None, metered_credits: Mapping[str, float] | None = None,
    window: tuple[dt.datetime, dt.datetime] | None = None, currency: str = "USD",
) -> list[Recommendation]:
    """Auto-suspend and size recommendations per warehouse (see the module docstring)."""
    if queries.is_empty():
        return []
    price = credit_price or settings.credit_price
    df = queries.filter(pl.col("warehouse_name").is_not_null() & pl.col("end_time").is_not_null())
    if window is None:
        lo, hi = df["start_time"].min(), df["end_time"].max()
        assert isinstance(lo, dt.datetime)
        assert isinstance(hi, dt.datetime)
        window = (lo, hi)
    start, end = window
    df = df.filter((pl.col("end_time") >= start) & (pl.col("end_time") < end))
    has_size = "warehouse_size" in df.columns
    epoch = pl.col("end_time").dt.epoch("us").cast(pl.Float64) / 1e6
    exec_s = pl.col("execution_time").cast(pl.Float64).fill_null(0.0) / 1000.0
    df = df.with_columns(epoch.alias("_end"), (epoch - exec_s).alias("_start"), exec_s.alias("_exec"),
                         (pl.col("queued_time").cast(pl.Float64).fill_null(0.0) / 1000.0).alias("_queued"))
    out: list[Recommendation] = []
    for (key,), part in df.sort("warehouse_name").group_by("warehouse_name", maintain_order=True):
        name = str(key)
        bs, be = busy_blocks(part["_start"].to_numpy(), part["_end"].to_numpy())
        busy = float((be - bs).sum())
        execution = float(part["_exec"].sum())
        queued = float(part["_queued"].sum())
        first = float(part["_start"].min())  # type: ignore[arg-type]
        window_h = (end.timestamp() - max(start.timestamp(), first)) / 3600.0
        size = None
        if has_size:
            sizes = part["warehouse_size"].drop_nulls()
            size = size_index(str(sizes.mode().sort()[0])) if sizes.len() else None
        metered = (metered_credits or {}).get(name)
        if size is None:
            continue  # the credit rate is unknown without the size
        rate = credits_per_hour(size)
        suspend_source = "setting"
        s_now: float | None = None
        if auto_suspend and name in auto_suspend:
            s_now = float(auto_suspend[name])
        elif metered:
            s_now = infer_suspend(bs, be, metered / rate * 3600.0)
            suspend_source = "inferred from metered credits"
        if s_now is None:
            s_now = float(settings.default_auto_suspend_s)
            suspend_source = "assumed (Snowflake default)"
        t_now = billed_seconds(bs, be, s_now)
        gaps = bs[1:] - be[:-1]
        target = float(settings.target_auto_suspend_s)
        gap_stats = {
            "idle_gaps": int(gaps.size),
            "gap_p50_s": round(float(np.percentile(gaps, 50)), 1) if gaps.size else None,
            "gap_p90_s": round(float(np.percentile(gaps, 90)), 1) if gaps.size else None,
            "gaps_longer_than_target": int((gaps > target).sum()),
        }
        days = part["end_time"].dt.date().n_unique()
        common = {
            "window": {"start": start.isoformat(), "end": end.isoformat()},
            "queries": part.height, "days_with_queries": days,
            "busy_hours": round(busy / 3600, 3), "billed_hours_model": round(t_now / 3600, 3),
            "metered_credits": metered, "credits_per_hour": rate,
            "auto_suspend_s": s_now, "auto_suspend_source": suspend_source,
            "credit_price": str(price), "currency": currency, **gap_stats,
        }
        coverage = min(1.0, days / settings.lookback_days)
        factor = _month_factor(window_h)
        if s_now > target:
            t_new = billed_seconds(bs, be, target)
            saved = dec((t_now - t_new) / 3600.0 * rate) * price * factor
            monthly = cents(saved)
            if monthly >= settings.min_monthly_savings:
                factors = {"coverage": coverage,
                           "suspend_known": 1.0 if suspend_source == "setting" else
                           0.9 if suspend_source.startswith("inferred") else 0.7}
                conf = clamp_confidence(factors)
                summary = (f"{gap_stats['gaps_longer_than_target']} idle gaps longer than "
                           f"{target:.0f}s each kept it running up to {s_now:.0f}s; billed "
                           f"{t_now / 3600:.1f} h vs {t_new / 3600:.1f} h at {target:.0f}s")
                out.append(Recommendation(
                    "warehouse_auto_suspend", name, f"auto_suspend {s_now:.0f}s",
                    f"auto_suspend {target:.0f}s", monthly, conf,
                    {"summary": summary, **common, "billed_hours_at_target": round(t_new / 3600, 3),
                     "confidence_factors": factors, "confidence_label": confidence_label(conf)},
                    summary, "snowflake", None, currency, factors))
        load = execution / t_now if t_now else 0.0
        queued_share = queued / execution if execution else 0.0
        if (size > 0 and load < settings.max_warehouse_load
                and queued_share <= settings.max_queued_share):
            saved = dec((t_now - busy) / 3600.0 * rate / 2.0) * price * factor
            monthly = cents(saved)
            if monthly >= settings.min_monthly_savings:
                factors = {"coverage": coverage, "model": 0.8}
                conf = clamp_confidence(factors)
                summary = (f"average load {load:.2f} running queries, queued {queued_share:.1%} of "
                           f"execution time; busy {busy / 3600:.1f} h of {t_now / 3600:.1f} h billed")
                out.append(Recommendation(
                    "warehouse_size", name, SIZE_NAMES[size], SIZE_NAMES[size - 1], monthly, conf,
                    {"summary": summary, **common, "average_load": round(load, 4),
                     "queued_share": round(queued_share, 4),
                     "note": "savings assume every query runs twice as long on half the size",
                     "confidence_factors": factors, "confidence_label": confidence_label(conf)},
                    summary, "snowflake", None, currency, factors))
    return out


def _on_demand(model: str | None) -> bool:
    return model is None or model.strip().lower().replace("-", "_") in {"on_demand", "ondemand", ""}


def bigquery_editions(jobs: pl.DataFrame, *, settings: RightsizingSettings,
                      window: tuple[dt.datetime, dt.datetime] | None = None,
                      currency: str = "USD") -> list[Recommendation]:
    """On-demand versus editions per project (see the module docstring)."""
    if jobs.is_empty():
        return []
    if window is None:
        lo, hi = jobs["start_time"].min(), jobs["start_time"].max()
        assert isinstance(lo, dt.datetime)
        assert isinstance(hi, dt.datetime)
        window = (lo, hi + dt.timedelta(hours=1))
    start, end = window
    df = jobs.filter((pl.col("start_time") >= start) & (pl.col("start_time") < end))
    if "pricing_model" not in df.columns:
        df = df.with_columns(pl.lit(None, pl.String).alias("pricing_model"))
    overhead = dec(settings.bq_autoscale_overhead)
    break_even = settings.bq_on_demand_per_tib / (settings.bq_slot_hour_price * overhead)
    out: list[Recommendation] = []
    agg = df.group_by("project").agg(
        pl.col("bytes_billed").cast(pl.Float64).fill_null(0).sum().alias("bytes"),
        pl.col("slot_ms").cast(pl.Float64).fill_null(0).sum().alias("slot_ms"),
        pl.col("pricing_model").drop_nulls().mode().first().alias("model"),
        pl.len().alias("jobs"), pl.col("start_time").min().alias("first"),
        pl.col("start_time").dt.date().n_unique().alias("days"),
    ).sort("project")
    for r in agg.iter_rows(named=True):
        tib = Decimal(repr(r["bytes"])) / Decimal(TIB)
        slot_hours = Decimal(repr(r["slot_ms"])) / Decimal(3_600_000)
        od = tib * settings.bq_on_demand_per_tib
        ed = slot_hours * settings.bq_slot_hour_price * overhead
        window_h = (end - max(start, r["first"])).total_seconds() / 3600.0
        factor = _month_factor(window_h)
        on_demand = _on_demand(r["model"])
        diff = (od - ed) if on_demand else (ed - od)
        monthly = cents(diff * factor)
        if monthly < settings.min_monthly_savings:
            continue
        current, recommended = (("on-demand", "editions (Enterprise, autoscaling)") if on_demand
                                else ("editions", "on-demand"))
        ratio = (slot_hours / tib) if tib else None
        factors = {"coverage": min(1.0, r["days"] / settings.lookback_days), "model": 0.8}
        conf = clamp_confidence(factors)
        summary = (f"{tib:.2f} TiB billed, {slot_hours:.1f} slot-hours: "
                   f"{'n/a' if ratio is None else f'{ratio:.1f}'} slot-h/TiB vs break-even "
                   f"{break_even:.1f}")
        evidence = {
            "summary": summary, "window": {"start": start.isoformat(), "end": end.isoformat()},
            "jobs": r["jobs"], "days_with_jobs": r["days"], "tib_billed": str(round(tib, 4)),
            "slot_hours": str(round(slot_hours, 3)), "on_demand_cost_window": str(cents(od)),
            "editions_cost_window": str(cents(ed)),
            "slot_hours_per_tib": None if ratio is None else str(round(ratio, 3)),
            "break_even_slot_hours_per_tib": str(round(break_even, 3)),
            "assumptions": {"on_demand_per_tib": str(settings.bq_on_demand_per_tib),
                            "slot_hour_price": str(settings.bq_slot_hour_price),
                            "autoscale_overhead": settings.bq_autoscale_overhead},
            "currency": currency, "confidence_factors": factors,
            "confidence_label": confidence_label(conf),
        }
        out.append(Recommendation("bigquery_pricing", r["project"], current, recommended, monthly,
                                  conf, evidence, summary, "gcp", None, currency, factors))
    return out


def queries_from_store(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Adapt the ``queries`` dataset (models/query_store.py QUERY_SCHEMA) to the inputs here:
    (Snowflake queries, BigQuery jobs)."""
    cols = set(frame.columns)
    def col(name: str, dtype: pl.DataType) -> pl.Expr:
        return pl.col(name) if name in cols else pl.lit(None, dtype).alias(name)
    source = col("source", pl.String())
    snow = frame.filter(source == "snowflake").select(
        col("warehouse", pl.String()).alias("warehouse_name"), col("start_time", pl.Datetime("us", "UTC")),
        col("end_time", pl.Datetime("us", "UTC")), col("execution_ms", pl.Int64()).alias("execution_time"),
        col("queued_ms", pl.Int64()).alias("queued_time"), col("warehouse_size", pl.String()),
    ) if "source" in cols else frame.clear().select([])
    bq = frame.filter(source == "bigquery").select(
        pl.coalesce(col("account", pl.String()), col("warehouse", pl.String())).alias("project"),
        col("start_time", pl.Datetime("us", "UTC")), col("bytes_billed", pl.Int64()),
        col("slot_ms", pl.Int64()), col("pricing_model", pl.String()),
    ) if "source" in cols else frame.clear().select([])
    return snow, bq


__all__: Sequence[str] = ["bigquery_editions", "billed_seconds", "busy_blocks", "queries_from_store",
                          "snowflake_warehouses"]
