"""Everything the report reads from the warehouse and state.db, and nothing else reads.

Other stages write these datasets (DESIGN.md names their columns): ``cube`` (allocation),
``anomalies`` (anomaly detection), ``forecasts`` (forecasting), ``recommendations``
(right-sizing), ``allocated`` and ``billing``. Each reader here uses only those column
names, tolerates extra columns, and returns None when the dataset is absent or unusable,
so the report can say "no data yet" instead of failing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl

from finops.state import State
from finops.warehouse import Warehouse

log = logging.getLogger("finops.reports")

CUBE = "cube"
ALLOCATED = "allocated"
BILLING = "billing"
ANOMALIES = "anomalies"
FORECASTS = "forecasts"
RECOMMENDATIONS = "recommendations"
PERIOD = "billing_period"
SOURCE = "source"
MONEY = pl.Decimal(38, 12)
COST_COLUMNS = {"effective_cost": "EffectiveCost", "billed_cost": "BilledCost"}
# Partition keys a dataset may be written under, one partition per run: read the latest.
RUN_KEYS = ("as_of", "run_date", "generated_on", "run_id")
CLOSED_STATUSES = frozenset({"dismissed", "rejected", "done", "applied", "implemented", "closed",
                             "resolved", "snoozed", "expired", "accepted_done", "wontfix"})

DAILY_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Date(), "tenant": pl.String(), "service": pl.String(), "currency": pl.String(),
    "usage": pl.Boolean(), "cost": MONEY,
}


def months_between(start: dt.date, end: dt.date) -> list[str]:
    out = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def to_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return out if out.is_finite() else None


def to_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _latest_run_partition(wh: Warehouse, dataset: str) -> Mapping[str, str] | None:
    """For a dataset written one partition per run, the keys of the latest; else None."""
    parts = wh.partitions(dataset)
    for key in RUN_KEYS:
        values = sorted({p[key] for p in parts if key in p})
        if values:
            return {key: values[-1]}
    return None


def _read_dataset(wh: Warehouse, dataset: str) -> pl.DataFrame | None:
    if not wh.has_data(dataset):
        return None
    where = _latest_run_partition(wh, dataset)
    try:
        return wh.scan(dataset, where=where).collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        log.warning("dataset %s cannot be read (%s); its section is left out", dataset, exc)
        return None


def _missing(df: pl.DataFrame, dataset: str, required: Sequence[str]) -> bool:
    missing = [c for c in required if c not in df.columns]
    if missing:
        log.warning("dataset %s lacks %s; its section is left out", dataset, ", ".join(missing))
    return bool(missing)


# ---- cost: the allocation cube --------------------------------------------------------
def daily_costs(wh: Warehouse, start: dt.date, end: dt.date, cost: str) -> pl.DataFrame:
    """Cost per day × tenant × service × currency × usage, ``start`` to ``end`` inclusive.

    ``usage`` tells usage charges from the rest (purchases, fees, taxes, credits), which
    land on single days and must not be extrapolated as a daily run rate.
    """
    have = {p[PERIOD] for p in wh.partitions(CUBE) if PERIOD in p}
    periods = [p for p in months_between(start, end) if p in have]
    if not periods:
        return pl.DataFrame(schema=DAILY_SCHEMA)
    column = COST_COLUMNS[cost]
    return (
        wh.scan(CUBE, where={PERIOD: periods})
        .filter(pl.col("day").is_between(start, end))
        .group_by(
            pl.col("day"),
            pl.col("x_Tenant").fill_null("unallocated").alias("tenant"),
            pl.col("ServiceName").fill_null("(none)").alias("service"),
            pl.col("BillingCurrency").fill_null("").alias("currency"),
            (pl.col("ChargeCategory") == "Usage").fill_null(True).alias("usage"),
        )
        .agg(pl.col(column).sum().cast(MONEY).alias("cost"))
        .sort("day", "tenant", "service", "currency", "usage")
        .collect()
    )


def cube_days(wh: Warehouse) -> tuple[dt.date, dt.date] | None:
    """The first and last day the cube holds, read from its first and last partitions."""
    periods = sorted({p[PERIOD] for p in wh.partitions(CUBE) if PERIOD in p})
    if not periods:
        return None
    first = wh.scan(CUBE, where={PERIOD: periods[0]}).select(pl.col("day").min()).collect().item()
    last = wh.scan(CUBE, where={PERIOD: periods[-1]}).select(pl.col("day").max()).collect().item()
    if first is None or last is None:
        return None
    return to_date(first) or dt.date.min, to_date(last) or dt.date.min


# ---- anomalies ------------------------------------------------------------------------
ANOMALY_COLUMNS = ("anomaly_id", "start_date", "end_date", "dimension", "dimension_value",
                   "actual_cost", "expected_cost", "impact", "severity", "root_causes")


@dataclass(frozen=True)
class Cause:
    dimension: str
    value: str
    contribution: Decimal | None
    share: float | None


@dataclass(frozen=True)
class AnomalyRecord:
    anomaly_id: str
    start_date: dt.date
    end_date: dt.date
    dimension: str
    dimension_value: str
    actual_cost: Decimal | None
    expected_cost: Decimal | None
    impact: Decimal | None
    severity: str
    root_causes: tuple[Cause, ...]
    currency: str | None


def _causes(value: Any) -> tuple[Cause, ...]:
    """Root causes as written: a list of structs, a JSON text, or free text."""
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return (Cause("", value, None, None),)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return (Cause("", str(value), None, None),)
    out = []
    for item in value:
        if isinstance(item, dict):
            share = item.get("share")
            out.append(Cause(str(item.get("dimension") or ""), str(item.get("value") or ""),
                             to_decimal(item.get("contribution")),
                             float(share) if isinstance(share, int | float) else None))
        elif item is not None:
            out.append(Cause("", str(item), None, None))
    return tuple(out)


def anomalies(wh: Warehouse) -> list[AnomalyRecord] | None:
    df = _read_dataset(wh, ANOMALIES)
    if df is None or _missing(df, ANOMALIES, ANOMALY_COLUMNS):
        return None
    out: dict[str, AnomalyRecord] = {}
    for row in df.iter_rows(named=True):
        start, end = to_date(row["start_date"]), to_date(row["end_date"])
        if start is None or row["anomaly_id"] is None:
            continue
        value = str(row["dimension_value"] or "")
        currency = str(row["currency"]) if row.get("currency") else None
        if currency and value.endswith(f" ({currency})"):
            value = value[: -len(currency) - 3]  # "acme (USD)" names the tenant acme
        out[str(row["anomaly_id"])] = AnomalyRecord(
            anomaly_id=str(row["anomaly_id"]), start_date=start, end_date=end or start,
            dimension=str(row["dimension"] or ""), dimension_value=value,
            actual_cost=to_decimal(row["actual_cost"]),
            expected_cost=to_decimal(row["expected_cost"]), impact=to_decimal(row["impact"]),
            severity=str(row["severity"] or "").lower(), root_causes=_causes(row["root_causes"]),
            currency=currency,
        )
    return list(out.values())


# ---- recommendations ------------------------------------------------------------------
RECOMMENDATION_COLUMNS = ("recommendation_id", "kind", "resource_id", "current", "recommended",
                          "monthly_savings", "confidence", "evidence", "status")


@dataclass(frozen=True)
class RecommendationRecord:
    recommendation_id: str
    kind: str
    resource_id: str
    current: str
    recommended: str
    monthly_savings: Decimal
    confidence: str
    evidence: str
    status: str
    tenant: str | None  # when the dataset says whose resource it is
    currency: str | None


def as_text(value: Any) -> str:
    """A cell of any type as one line of text (structs and lists as compact JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, separators=(", ", ": "))
    return str(value)


def _confidence(value: Any) -> str:
    if isinstance(value, float | int) and not isinstance(value, bool) and 0 <= value <= 1:
        return f"{value:.0%}"
    return as_text(value)


def recommendations(wh: Warehouse) -> list[RecommendationRecord] | None:
    """Open recommendations (status not closed), any order."""
    df = _read_dataset(wh, RECOMMENDATIONS)
    if df is None or _missing(df, RECOMMENDATIONS, RECOMMENDATION_COLUMNS):
        return None
    tenant_col = next((c for c in ("x_Tenant", "tenant") if c in df.columns), None)
    out = []
    for row in df.iter_rows(named=True):
        status = as_text(row["status"]).strip().lower()
        savings = to_decimal(row["monthly_savings"])
        if status in CLOSED_STATUSES or savings is None:
            continue
        out.append(RecommendationRecord(
            recommendation_id=as_text(row["recommendation_id"]), kind=as_text(row["kind"]),
            resource_id=as_text(row["resource_id"]), current=as_text(row["current"]),
            recommended=as_text(row["recommended"]), monthly_savings=savings,
            confidence=_confidence(row["confidence"]), evidence=as_text(row["evidence"]),
            status=status, tenant=as_text(row[tenant_col]) or None if tenant_col else None,
            currency=as_text(row.get("currency")) or None,
        ))
    return out


def resource_tenants(wh: Warehouse, resource_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """The tenants each resource's cost went to in the last two allocated periods."""
    ids = sorted(set(resource_ids))
    periods = sorted({p[PERIOD] for p in wh.partitions(ALLOCATED) if PERIOD in p})[-2:]
    if not ids or not periods:
        return {}
    df = (
        wh.scan(ALLOCATED, where={PERIOD: periods})
        .select("ResourceId", pl.col("x_Tenant").fill_null("unallocated"))
        .filter(pl.col("ResourceId").is_in(ids))
        .unique()
        .collect()
    )
    out: dict[str, set[str]] = {}
    for rid, tenant in df.iter_rows():
        out.setdefault(str(rid), set()).add(str(tenant))
    return {k: frozenset(v) for k, v in out.items()}


# ---- forecasts ------------------------------------------------------------------------
FORECAST_SCHEMA: dict[str, pl.DataType] = {
    "day": pl.Date(), "month": pl.String(), "dimension": pl.String(),
    "dimension_value": pl.String(), "currency": pl.String(), "forecast": pl.Float64(),
}
_DATE_COLUMNS = ("date", "day", "ds", "forecast_date", "target_date")
_MONTH_COLUMNS = ("month", "period", "billing_period", "forecast_month")
_VALUE_COLUMNS = ("forecast", "forecast_cost", "expected_cost", "yhat", "predicted_cost", "cost",
                  "value")


def forecasts(wh: Warehouse) -> pl.DataFrame | None:
    """Forecast points in one shape: FORECAST_SCHEMA, ``day`` null for monthly totals.

    Reads a date (or month) column, a value column and, when present, ``dimension``,
    ``dimension_value`` and ``currency``; rows without a dimension are organisation totals.
    """
    df = _read_dataset(wh, FORECASTS)
    if df is None:
        return None
    day_col = next((c for c in _DATE_COLUMNS if c in df.columns), None)
    month_col = next((c for c in _MONTH_COLUMNS if c in df.columns), None)
    value_col = next((c for c in _VALUE_COLUMNS if c in df.columns), None)
    if value_col is None or (day_col is None and month_col is None):
        log.warning("dataset %s has no date and forecast value columns I know; "
                    "the month outlook uses the run rate", FORECASTS)
        return None

    def text(name: str) -> pl.Expr:
        return pl.col(name).cast(pl.String) if name in df.columns else pl.lit(None, pl.String)

    day = pl.col(day_col).cast(pl.Date, strict=False) if day_col else pl.lit(None, pl.Date)
    month = (day.dt.strftime("%Y-%m") if day_col
             else pl.col(month_col or "").cast(pl.String).str.slice(0, 7))
    try:
        return df.select(
            day.alias("day"), month.alias("month"), text("dimension").alias("dimension"),
            text("dimension_value").alias("dimension_value"), text("currency").alias("currency"),
            pl.col(value_col).cast(pl.Float64, strict=False).alias("forecast"),
        ).filter(pl.col("forecast").is_not_null())
    except pl.exceptions.PolarsError as exc:
        log.warning("dataset %s cannot be read as forecasts (%s)", FORECASTS, exc)
        return None


# ---- freshness ------------------------------------------------------------------------
@dataclass(frozen=True)
class SourceFreshness:
    source: str
    data_through: dt.date | None  # the latest ChargePeriodStart day in billing
    last_success: str | None  # when the latest succeeded collect run ended (UTC, ISO)
    last_failure: str | None  # when a collect that failed after it ended
    failure_message: str | None


def freshness(wh: Warehouse, state: State) -> list[SourceFreshness]:
    by_source: dict[str, list[str]] = {}
    for keys in wh.partitions(BILLING):
        if SOURCE in keys and PERIOD in keys:
            by_source.setdefault(keys[SOURCE], []).append(keys[PERIOD])
    through: dict[str, dt.date | None] = {}
    for source, periods in by_source.items():
        latest = max(periods)
        value = (wh.scan(BILLING, where={SOURCE: source, PERIOD: latest})
                 .select(pl.col("ChargePeriodStart").max()).collect().item())
        through[source] = to_date(value)
    success: dict[str, str] = {}
    failure: dict[str, tuple[str, str | None]] = {}
    for run in reversed(state.runs(stage="collect", limit=5000)):  # oldest first
        source = run["source"]
        if not source:
            continue
        if run["status"] == "succeeded":
            success[source] = run["ended_at"] or run["started_at"]
            failure.pop(source, None)
        elif run["status"] == "failed":
            failure[source] = (run["ended_at"] or run["started_at"], run["message"])
    out = []
    for source in sorted(set(through) | set(failure)):
        fail = failure.get(source)
        out.append(SourceFreshness(source, through.get(source), success.get(source),
                                   fail[0] if fail else None, fail[1] if fail else None))
    return out


def last_run_end(state: State, stage: str) -> str | None:
    for run in state.runs(stage=stage, limit=20):
        if run["status"] == "succeeded":
            return str(run["ended_at"] or run["started_at"])
    return None
