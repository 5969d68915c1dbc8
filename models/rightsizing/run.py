"""The recommendations stage: read the warehouse, recommend, write ``recommendations``.

What the CLI, the pipeline and the app call:

- :func:`build_recommendations` (pure over the warehouse: reads, never writes);
- :func:`run_recommendations` / :func:`run_stage`: build, write the ``recommendations``
  partition ``as_of=YYYY-MM-DD`` and log the run;
- :func:`list_recommendations`: the latest written recommendations with their status;
- :func:`decide`: record a decision on one of them.

The analysis ends at ``as_of``: by default the hour after the latest utilisation sample
(else the end of the latest bill), so re-running on the same data gives the same result.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import polars as pl

from collectors.utilization import (
    UTILIZATION,
    load_inventory,
    scan_utilization,
)
from finops.errors import BadInputError, near_names
from finops.state import State
from finops.warehouse import Warehouse
from models.rightsizing.base import COLUMNS, SCHEMA, STATUSES, Recommendation, dec
from models.rightsizing.catalog import Catalog, load_catalog
from models.rightsizing.commitments import commitment_purchases, select_bill
from models.rightsizing.compute import Paid, rightsize
from models.rightsizing.idle import COMPUTE_TYPES, idle_instance, orphan
from models.rightsizing.lifecycle import Decision, effective_status, load_decisions, record_decision
from models.rightsizing.needs import usage_by_resource
from models.rightsizing.prices import BillPrices, load_bill_prices
from models.rightsizing.settings import RightsizingSettings, load_rightsizing_settings
from models.rightsizing.warehouses import bigquery_editions, queries_from_store, snowflake_warehouses

RECOMMENDATIONS: Final = "recommendations"
STOPPED: Final = ("stopped", "stopping", "terminated", "shutting-down", "deleted", "deallocated")


@dataclass
class Outcome:
    as_of: dt.datetime
    window_start: dt.datetime
    recommendations: list[Recommendation]
    notes: list[str] = field(default_factory=list)

    def frame(self) -> pl.DataFrame:
        return to_frame(self.recommendations)


def _hour_after(ts: dt.datetime) -> dt.datetime:
    return ts.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)


def _max_of(wh: Warehouse, dataset: str, column: str) -> dt.datetime | None:
    if not wh.has_data(dataset):
        return None
    value = wh.scan(dataset).select(pl.col(column).max()).collect().item()
    return value if isinstance(value, dt.datetime) else None


def bill_end(wh: Warehouse) -> dt.datetime | None:
    """The end of the latest usage in the bill (purchases can run a year ahead)."""
    if not wh.has_data("billing"):
        return None
    value = (wh.scan("billing").filter(pl.col("ChargeCategory") == "Usage")
             .select(pl.col("ChargePeriodEnd").max()).collect().item())
    return value if isinstance(value, dt.datetime) else None


def default_as_of(wh: Warehouse) -> dt.datetime:
    latest = _max_of(wh, UTILIZATION, "timestamp")
    if latest is not None:
        return _hour_after(latest)
    bill = bill_end(wh)
    if bill is not None:
        return bill
    return _hour_after(dt.datetime.now(dt.UTC))


def paid_for(row: dict[str, Any], bill: BillPrices, catalog: Catalog) -> Paid | None:
    """The price paid per running hour: the bill, else the inventory, else the list price."""
    found = bill.get(row["resource_id"])
    if found is not None and found.hourly is not None and found.hourly > 0:
        return Paid(found.hourly, "bill", found.currency, found.committed_share)
    if row.get("hourly_cost") is not None and row["hourly_cost"] > 0:
        return Paid(dec(row["hourly_cost"]), "inventory", row.get("currency") or "USD")
    listed = catalog.list_price(row.get("provider") or "aws", row.get("region"),
                                row.get("instance_type") or "")
    if listed is not None:
        return Paid(listed.price, "list", "USD")
    return None


def compute_recommendations(inventory: pl.DataFrame, util: pl.DataFrame, bill: BillPrices,
                            catalog: Catalog, settings: RightsizingSettings, *, as_of: dt.datetime,
                            window_start: dt.datetime, notes: list[str] | None = None,
                            ) -> list[Recommendation]:
    """Idle and right-size recommendations for compute, orphans for the rest (pure)."""
    notes = notes if notes is not None else []
    usages = usage_by_resource(util, percentile=settings.cpu_percentile,
                               confidence=settings.percentile_confidence)
    out: list[Recommendation] = []
    seen: set[str] = set()
    unknown_types: set[str] = set()
    for row in inventory.iter_rows(named=True):
        rid = row["resource_id"]
        seen.add(rid)
        rtype = (row.get("resource_type") or "").lower()
        usage = usages.get(rid)
        if rtype not in COMPUTE_TYPES:
            rec = orphan(row, usage, bill=bill.get(rid), catalog=catalog, settings=settings, as_of=as_of)
            if rec is not None:
                out.append(rec)
            continue
        if (row.get("state") or "running").lower() in STOPPED or usage is None:
            continue
        paid = paid_for(row, bill, catalog)
        if paid is None:
            continue
        provider = row.get("provider") or "aws"
        rec = idle_instance(usage, provider=provider, region=row.get("region"),
                            instance_type=row.get("instance_type"), paid=paid, settings=settings,
                            as_of=as_of, window_start=window_start)
        if rec is None:
            current = catalog.spec(provider, row.get("instance_type"))
            if current is None:
                unknown_types.add(str(row.get("instance_type")))
                continue
            rec = rightsize(usage, provider=provider, region=row.get("region"), current=current,
                            paid=paid, catalog=catalog, settings=settings, as_of=as_of,
                            window_start=window_start)
        if rec is not None:
            out.append(rec)
    if unknown_types:
        notes.append(f"types not in the catalog, not right-sized: {', '.join(sorted(unknown_types)[:10])}")
    missing = sorted(set(usages) - seen)
    if missing:
        notes.append(f"{len(missing)} resources have utilisation but no inventory row "
                     f"(type unknown), e.g. {missing[0]}")
    return out


def _window(end: dt.datetime, settings: RightsizingSettings) -> tuple[dt.datetime, dt.datetime]:
    return end - dt.timedelta(days=settings.lookback_days), end


def warehouse_recommendations(wh: Warehouse, settings: RightsizingSettings,
                              as_of: dt.datetime | None) -> list[Recommendation]:
    """Snowflake and BigQuery recommendations from the ``queries`` dataset, if any."""
    end = as_of or _max_of(wh, "queries", "end_time")
    if end is None:
        return []
    start, end = _window(_hour_after(end) if as_of is None else end, settings)
    lf = wh.scan("queries")
    names = lf.collect_schema().names()
    if "end_time" not in names:
        return []
    queries = lf.filter((pl.col("end_time") >= start) & (pl.col("end_time") < end)).collect()
    snow, bq = queries_from_store(queries)
    metered: dict[str, float] = {}
    if wh.has_data("warehouse_metering"):
        m = (wh.scan("warehouse_metering")
             .filter((pl.col("start_time") >= start) & (pl.col("start_time") < end))
             .group_by("warehouse").agg(pl.col("credits_compute").cast(pl.Float64).sum()).collect())
        metered = {str(w): float(c) for w, c in m.iter_rows() if w is not None and c}
    price = _credit_price(wh, start, end)
    out = snowflake_warehouses(snow, settings=settings, credit_price=price, metered_credits=metered,
                               window=(start, end)) if not snow.is_empty() else []
    if not bq.is_empty():
        out += bigquery_editions(bq, settings=settings, window=(start, end))
    return out


def _credit_price(wh: Warehouse, start: dt.datetime, end: dt.datetime) -> Decimal | None:
    if wh.has_data("warehouse_rates"):
        rates = (wh.scan("warehouse_rates")
                 .filter(pl.col("usage_type").str.to_lowercase().str.contains("compute"))
                 .sort("date").select("rate").collect())
        if rates.height:
            value = rates["rate"][-1]
            return Decimal(str(value)) if value is not None else None
    try:
        from finops.settings import load_settings

        configured = load_settings().snowflake.credit_price
    except Exception:  # noqa: BLE001 - a broken config must not stop recommendations
        return None
    return dec(configured) if configured else None


def build_recommendations(wh: Warehouse, settings: RightsizingSettings | None = None, *,
                          as_of: dt.datetime | None = None, catalog: Catalog | None = None) -> Outcome:
    settings = settings or load_rightsizing_settings()
    catalog = catalog or load_catalog(wh)
    end = as_of or default_as_of(wh)
    start, end = _window(end, settings)
    notes: list[str] = []
    util = scan_utilization(wh, start, end)
    inventory = load_inventory(wh)
    bill = load_bill_prices(wh, start, end)
    recs = compute_recommendations(inventory, util, bill, catalog, settings, as_of=end,
                                   window_start=start, notes=notes)
    recs += warehouse_recommendations(wh, settings, as_of)
    if wh.has_data("billing"):
        b_start, b_end = _window(as_of or bill_end(wh) or end, settings)
        recs += commitment_purchases(select_bill(wh.scan("billing"), b_start, b_end),
                                     start=b_start, end=b_end, settings=settings)
    recs.sort(key=lambda r: (-r.monthly_savings, r.kind, r.resource_id))
    return Outcome(end, start, recs, notes)


def to_frame(recs: Sequence[Recommendation]) -> pl.DataFrame:
    rows = [{
        "recommendation_id": r.recommendation_id, "kind": r.kind, "resource_id": r.resource_id,
        "current": r.current, "recommended": r.recommended, "monthly_savings": r.monthly_savings,
        "confidence": r.confidence, "evidence": json.dumps(r.evidence, default=str, sort_keys=False),
        "summary": r.summary, "provider": r.provider, "region": r.region, "currency": r.currency,
    } for r in recs]
    return pl.DataFrame(rows, schema=SCHEMA) if rows else pl.DataFrame(schema=SCHEMA)


def run_recommendations(wh: Warehouse, state: State, settings: RightsizingSettings | None = None, *,
                        as_of: dt.datetime | None = None) -> tuple[Outcome, pl.DataFrame]:
    """Build, write the ``recommendations`` partition for the as-of date, log the run."""
    run_id = state.start_run("recommend", None, [as_of.isoformat()] if as_of else [])
    try:
        outcome = build_recommendations(wh, settings, as_of=as_of)
        frame = outcome.frame()
        wh.replace_partition(RECOMMENDATIONS, {"as_of": outcome.as_of.date().isoformat()}, frame,
                             run_id=run_id)
        state.finish_run(run_id, status="succeeded", rows_out=frame.height,
                         message="; ".join(outcome.notes) or None)
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        wh.drop_staging(run_id)
    return outcome, frame


def run_stage(wh: Warehouse, state: State) -> str:
    """The pipeline stage: recommend as of the latest data and write ``recommendations``."""
    outcome, frame = run_recommendations(wh, state)
    total = sum((r.monthly_savings for r in outcome.recommendations if r.monthly_savings > 0), Decimal(0))
    return (f"{frame.height} recommendations, {total} a month in savings, as of "
            f"{outcome.as_of.isoformat()}")


def load_recommendations(wh: Warehouse) -> pl.DataFrame:
    """The latest written recommendations (empty with :data:`SCHEMA` when none)."""
    parts = sorted(k["as_of"] for k in wh.partitions(RECOMMENDATIONS) if "as_of" in k)
    if not parts:
        return pl.DataFrame(schema={**SCHEMA, "as_of": pl.String()})
    return wh.scan(RECOMMENDATIONS, where={"as_of": parts[-1]}).collect()


def with_status(frame: pl.DataFrame, decisions: dict[str, Decision], threshold: float) -> pl.DataFrame:
    """``frame`` plus ``status, decided_by, decided_at, comment``; a decision whose evidence
    changed materially shows ``new``, and the evidence says why."""
    statuses, who, when, comments, evidence = [], [], [], [], []
    for r in frame.iter_rows(named=True):
        d = decisions.get(r["recommendation_id"])
        status, why = effective_status(d, r["current"], r["recommended"], r["monthly_savings"], threshold)
        statuses.append(status)
        held = d is not None and why is None
        who.append(d.who if held and d else None)
        when.append(d.decided_at if held and d else None)
        comments.append(d.comment if held and d else None)
        if why is not None:
            ev = json.loads(r["evidence"])
            ev["reopened"] = why
            evidence.append(json.dumps(ev, default=str))
        else:
            evidence.append(r["evidence"])
    return frame.with_columns(
        pl.Series("status", statuses, pl.String), pl.Series("decided_by", who, pl.String),
        pl.Series("decided_at", when, pl.String), pl.Series("comment", comments, pl.String),
        pl.Series("evidence", evidence, pl.String),
    )


def list_recommendations(wh: Warehouse, state: State, *, statuses: Sequence[str] | None = None,
                         kinds: Sequence[str] | None = None,
                         settings: RightsizingSettings | None = None) -> pl.DataFrame:
    """The latest recommendations with their status, biggest savings first: the DESIGN
    columns, then ``summary, provider, region, currency, decided_by, decided_at, comment``."""
    settings = settings or load_rightsizing_settings()
    frame = with_status(load_recommendations(wh), load_decisions(state), settings.material_change)
    if statuses:
        frame = frame.filter(pl.col("status").is_in(list(statuses)))
    if kinds:
        frame = frame.filter(pl.col("kind").is_in(list(kinds)))
    extras = ["summary", "provider", "region", "currency", "decided_by", "decided_at", "comment"]
    return frame.sort(["monthly_savings", "recommendation_id"], descending=[True, False]).select(
        *COLUMNS, *extras)


def decide(wh: Warehouse, state: State, recommendation_id: str, status: str, *, who: str | None = None,
           comment: str | None = None) -> Decision:
    """Record a decision on a recommendation of the latest run."""
    if status not in STATUSES:
        raise BadInputError(f"status {status!r} is not one of {', '.join(STATUSES)}",
                            hint="Use --status accepted, dismissed or done.")
    frame = load_recommendations(wh)
    match = frame.filter(pl.col("recommendation_id") == recommendation_id)
    if match.is_empty():
        raise BadInputError(
            f"recommendation {recommendation_id!r} is not in the latest recommendations."
            + near_names(recommendation_id, frame["recommendation_id"].to_list()),
            hint="Run `finops recommend` and copy a recommendation_id from its output.",
        )
    return record_decision(state, match.row(0, named=True), status, who=who, comment=comment)
