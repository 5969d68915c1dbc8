"""Idle and orphaned resources: stop, delete or release them.

- **Idle instance**: over the lookback, at least ``min_hours`` of samples spanning at
  least ``idle_min_span`` of it, CPU p95 under ``idle_cpu_p95`` (3%) and network
  negligible: every UTC day moved at most ``idle_network_bytes_per_day`` (5 MB, in + out).
  No network samples: no idle verdict (CPU alone cannot tell a quiet server from a
  waiting one). Savings: its whole price paid per running hour × monthly running hours.
- **Unattached volume**: a volume the inventory shows unattached. **Old snapshot**: a
  snapshot older than ``snapshot_max_age_days``. **Unused elastic IP**: an address not
  associated. **Idle load balancer**: no registered targets, or negligible traffic.
  Savings: the bill's monthly cost of the resource when it is billed, else the
  inventory's ``hourly_cost`` × 730, else the catalog price (size × GB-month price).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from models.rightsizing.base import Recommendation, cents, clamp_confidence, confidence_label, dec
from models.rightsizing.catalog import Catalog, normalize_provider
from models.rightsizing.compute import Paid, monthly_hours
from models.rightsizing.needs import Usage
from models.rightsizing.prices import HOURS_PER_MONTH, PaidPrice
from models.rightsizing.settings import RightsizingSettings

COMPUTE_TYPES = ("ec2_instance", "rds_instance", "gce_instance", "azure_vm", "instance", "vm")
VOLUME_TYPES = ("ebs_volume", "pd_disk", "managed_disk", "volume", "disk")
SNAPSHOT_TYPES = ("ebs_snapshot", "pd_snapshot", "snapshot")


def network_negligible(usage: Usage, settings: RightsizingSettings) -> bool:
    return (usage.net_samples > 0 and usage.net_daily_max is not None
            and usage.net_daily_max <= settings.idle_network_bytes_per_day)


def spans_lookback(usage: Usage, settings: RightsizingSettings) -> bool:
    if usage.first is None or usage.last is None:
        return False
    span_h = (usage.last - usage.first).total_seconds() / 3600.0 + 1.0
    return span_h >= settings.idle_min_span * settings.lookback_days * 24


def idle_instance(usage: Usage, *, provider: str, region: str | None, instance_type: str | None,
                  paid: Paid, settings: RightsizingSettings, as_of: dt.datetime,
                  window_start: dt.datetime) -> Recommendation | None:
    if (usage.cpu_p95 is None or usage.hours_observed < settings.min_hours
            or not spans_lookback(usage, settings) or usage.cpu_p95 >= settings.idle_cpu_p95
            or not network_negligible(usage, settings)):
        return None
    hours = monthly_hours(usage, as_of, window_start, settings)
    monthly = cents(paid.hourly * hours)
    if monthly < settings.min_monthly_savings:
        return None
    factors = {
        "coverage": min(1.0, usage.days_covered / settings.lookback_days),
        "price_source": {"bill": 1.0, "inventory": 0.9}.get(paid.source, 0.8),
        "commitment": 0.7 if paid.committed_share >= 0.5 else 1.0,
    }
    confidence = clamp_confidence(factors)
    summary = (f"cpu p95 {usage.cpu_p95:.2f}% (max {usage.cpu_max or 0:.1f}%), busiest day "
               f"{(usage.net_daily_max or 0) / 1e6:.2f} MB network; {usage.days_covered} days, "
               f"{usage.hours_observed} h; price from {paid.source}")
    evidence = {
        "summary": summary,
        "window": {"start": window_start.isoformat(), "end": as_of.isoformat()},
        "hours_observed": usage.hours_observed,
        "days_covered": usage.days_covered,
        "cpu_p95_pct": round(usage.cpu_p95, 3),
        "cpu_max_pct": None if usage.cpu_max is None else round(usage.cpu_max, 3),
        "network_bytes_total": usage.net_total,
        "network_bytes_busiest_day": usage.net_daily_max,
        "thresholds": {"cpu_p95_pct": settings.idle_cpu_p95,
                       "network_bytes_per_day": settings.idle_network_bytes_per_day},
        "instance_type": instance_type,
        "price_source": paid.source,
        "paid_hourly": str(paid.hourly.quantize(Decimal("0.000001"))),
        "monthly_hours": str(hours),
        "currency": paid.currency,
        "action": "stop it; terminate it (after a snapshot) if nobody claims it",
        "confidence_factors": factors,
        "confidence_label": confidence_label(confidence),
        "series": list(usage.daily),
    }
    return Recommendation("idle_instance", usage.resource_id, instance_type or "running", "stop",
                          monthly, confidence, evidence, summary, normalize_provider(provider),
                          region, paid.currency, factors)


def monthly_cost(row: dict[str, Any], bill: PaidPrice | None,
                 catalog: Catalog) -> tuple[Decimal, str, str] | None:
    """(monthly cost, its source, currency) of an inventory resource."""
    if bill is not None and bill.span_hours > 0:
        return bill.monthly, "bill", bill.currency
    currency = row.get("currency") or "USD"
    if row.get("hourly_cost") is not None:
        return dec(row["hourly_cost"]) * HOURS_PER_MONTH, "inventory", currency
    found = catalog.other_price(row.get("provider") or "aws", row.get("region"),
                                row.get("resource_type") or "", row.get("instance_type") or "")
    if found is None:
        return None
    unit, price = found
    if unit == "hour":
        return price * HOURS_PER_MONTH, "list", "USD"
    if unit == "GB-month" and row.get("size_gb") is not None:
        return price * dec(row["size_gb"]), "list", "USD"
    if unit == "disk-month":
        return price, "list", "USD"
    return None


def orphan(row: dict[str, Any], usage: Usage | None, *, bill: PaidPrice | None, catalog: Catalog,
           settings: RightsizingSettings, as_of: dt.datetime) -> Recommendation | None:
    """A recommendation for an unattached volume, old snapshot, unused IP or idle LB."""
    rtype = (row.get("resource_type") or "").lower()
    attached = row.get("attached")
    details: dict[str, Any] = {}
    coverage = 1.0
    if rtype in VOLUME_TYPES and attached is False:
        kind, action, base = "unattached_volume", "delete (snapshot first if needed)", 0.9
        details["volume_state"] = row.get("state")
    elif rtype in SNAPSHOT_TYPES and row.get("launch_time") is not None:
        age = (as_of - row["launch_time"]).days
        if age <= settings.snapshot_max_age_days:
            return None
        kind, action, base = "old_snapshot", "delete (check retention policy)", 0.6
        details["age_days"] = age
        details["max_age_days"] = settings.snapshot_max_age_days
    elif rtype == "elastic_ip" and attached is False:
        kind, action, base = "unused_elastic_ip", "release", 0.95
    elif rtype == "load_balancer":
        quiet = (usage is not None and network_negligible(usage, settings)
                 and spans_lookback(usage, settings))
        if attached is not False and not quiet:
            return None
        kind, action, base = "idle_load_balancer", "delete", 0.85
        details["registered_targets"] = attached
        if usage is not None and usage.net_samples:
            details["network_bytes_busiest_day"] = usage.net_daily_max
            coverage = min(1.0, usage.days_covered / settings.lookback_days)
    else:
        return None
    cost = monthly_cost(row, bill, catalog)
    if cost is None:
        return None
    monthly, source, currency = cost
    monthly = cents(monthly)
    if monthly < settings.min_monthly_savings:
        return None
    factors = {"kind": base, "price_source": {"bill": 1.0, "inventory": 0.95}.get(source, 0.85)}
    if coverage < 1.0:
        factors["coverage"] = coverage
    confidence = clamp_confidence(factors)
    size = f", {row['size_gb']:g} GB" if row.get("size_gb") is not None else ""
    state = f"{row.get('instance_type') or rtype}{size}"
    summary = f"{kind.replace('_', ' ')}: {state}; {action}; cost from {source}"
    evidence = {
        "summary": summary,
        "resource_type": rtype,
        "state": row.get("state"),
        "attached": attached,
        "launch_time": row["launch_time"].isoformat() if row.get("launch_time") else None,
        "size_gb": row.get("size_gb"),
        "price_source": source,
        "monthly_cost": str(monthly),
        "currency": currency,
        "inventory_source": row.get("source"),
        "action": action,
        **details,
        "confidence_factors": factors,
        "confidence_label": confidence_label(confidence),
    }
    return Recommendation(kind, row["resource_id"], state, action.split(" ")[0], monthly,
                          confidence, evidence, summary, normalize_provider(row.get("provider")),
                          row.get("region"), currency, factors)
