"""Right-sizing compute: the cheapest type that fits the need, never one below it.

Need (with ``h`` the headroom, 0.20 by default):

- vCPU need = CPU percentile (p99 by default; its 95% upper confidence bound, see
  ``needs.py``) / 100 × current vCPUs × (1 + h);
- memory need = memory maximum / 100 × current GiB × (1 + h); with no memory samples
  (no CloudWatch agent), the current type's memory: memory is then never reduced;
- a type fits when its vCPUs and memory are at least the need; a burstable type must
  also never run out of CPU credits: replaying the observed hours (mean CPU of each hour,
  plus headroom) against its baseline — earning ``baseline_vcpu × 60`` credits an hour,
  spending ``used_vcpu × 60``, holding at most a day's earnings — the balance never goes
  negative. The replay starts from the balance the same hours leave behind when replayed
  once from empty (the workload is taken to repeat, as it did before the window).

Candidates: same provider, service (EC2 stays EC2, RDS stays RDS) and architecture, no
GPU types (GPU use is not measured, so GPU instances are never resized), the same family
unless ``cross_family``. The recommendation is the cheapest fitting candidate at list
price in the resource's region (ties keep the current type, then favour more vCPUs and
memory). Savings are at the price paid (see :func:`savings`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from models.rightsizing.base import Recommendation, cents, clamp_confidence, confidence_label
from models.rightsizing.catalog import Catalog, InstanceType, normalize_provider
from models.rightsizing.needs import Usage
from models.rightsizing.settings import RightsizingSettings

EPS = 1e-9


@dataclass(frozen=True)
class Need:
    vcpu: float
    memory_gib: float
    memory_observed: bool
    hourly_vcpu: tuple[float, ...]  # vCPUs used in each observed hour, with headroom


@dataclass(frozen=True)
class Paid:
    """What the resource costs per running hour, and where that figure comes from."""

    hourly: Decimal
    source: str  # bill | inventory
    currency: str = "USD"
    committed_share: float = 0.0


def need_of(usage: Usage, current: InstanceType, headroom: float) -> Need:
    if usage.cpu_p is None:
        raise ValueError(f"{usage.resource_id}: no CPU samples")
    scale = 1.0 + headroom
    vcpu = usage.cpu_p / 100.0 * current.vcpu * scale
    if usage.memory_observed:
        assert usage.mem_max is not None
        memory = usage.mem_max / 100.0 * current.memory_gib * scale
    else:
        memory = current.memory_gib
    hourly = tuple(v / 100.0 * current.vcpu * scale for v in usage.hourly_cpu)
    return Need(vcpu, memory, usage.memory_observed, hourly)


def _replay(hourly_vcpu: Sequence[float], baseline_vcpu: float, start: float) -> tuple[float, float]:
    """(final balance, lowest balance) of a credit replay from ``start``."""
    cap = baseline_vcpu * 60.0 * 24.0
    balance = lowest = start
    for used in hourly_vcpu:
        balance = min(cap, balance + (baseline_vcpu - used) * 60.0)
        lowest = min(lowest, balance)
    return balance, lowest


def credits_hold(hourly_vcpu: Sequence[float], baseline_vcpu: float) -> bool:
    """True when a burstable type with ``baseline_vcpu`` never runs out of credits."""
    cap = baseline_vcpu * 60.0 * 24.0
    end, _ = _replay(hourly_vcpu, baseline_vcpu, 0.0)
    _, lowest = _replay(hourly_vcpu, baseline_vcpu, min(cap, max(0.0, end)))
    return lowest >= -EPS


def fits(t: InstanceType, need: Need) -> bool:
    if t.vcpu + EPS < need.vcpu or t.memory_gib + EPS < need.memory_gib:
        return False
    return not t.burstable or credits_hold(need.hourly_vcpu, t.baseline_vcpu)


def choose(current: InstanceType, need: Need,
           options: Sequence[tuple[InstanceType, Decimal]]) -> tuple[InstanceType, Decimal] | None:
    """The cheapest option that fits ``need``; None when none does."""
    fitting = [(t, p) for t, p in options if fits(t, need)]
    if not fitting:
        return None
    return min(fitting, key=lambda tp: (tp[1], tp[0].name != current.name, -tp[0].vcpu,
                                        -tp[0].memory_gib, tp[0].name))


def savings(paid_hourly: Decimal, list_current: Decimal, list_recommended: Decimal,
            monthly_hours: Decimal) -> tuple[Decimal, Decimal]:
    """(monthly savings to the cent, recommended type's price paid per hour).

    The recommended type is paid at its list price scaled by the discount seen on the
    current one: ``paid_rec = list_rec × paid_cur / list_cur``;
    ``savings = (paid_cur − paid_rec) × monthly_hours``.
    """
    paid_rec = list_recommended * paid_hourly / list_current
    return cents((paid_hourly - paid_rec) * monthly_hours), paid_rec


def monthly_hours(usage: Usage, as_of: dt.datetime, window_start: dt.datetime,
                  settings: RightsizingSettings) -> Decimal:
    share = usage.running_share(as_of, window_start)
    return settings.hours_per_month * Decimal(str(round(share, 4)))


def rightsize(usage: Usage, *, provider: str, region: str | None, current: InstanceType,
              paid: Paid, catalog: Catalog, settings: RightsizingSettings, as_of: dt.datetime,
              window_start: dt.datetime) -> Recommendation | None:
    """A right-size (or, when allowed, upsize) recommendation for one resource, or None."""
    if usage.cpu_p is None or usage.hours_observed < settings.min_hours or current.gpus:
        return None
    prov = normalize_provider(provider)
    price_region = catalog.price_region(prov, region)
    if price_region is None or (prov, price_region, current.name) not in catalog.prices:
        return None
    list_cur = catalog.prices[(prov, price_region, current.name)]
    options = [(t, catalog.prices[(prov, price_region, t.name)])
               for t in catalog.candidates(current, cross_family=settings.cross_family)
               if (prov, price_region, t.name) in catalog.prices]
    if all(t.name != current.name for t, _ in options):
        options.append((current, list_cur))
    need = need_of(usage, current, settings.headroom)
    best = choose(current, need, options)
    if best is None or best[0].name == current.name:
        return None
    rec, list_rec = best
    hours = monthly_hours(usage, as_of, window_start, settings)
    monthly, paid_rec = savings(paid.hourly, list_cur, list_rec, hours)
    if monthly > 0:
        kind = "rightsize_compute"
        if monthly < settings.min_monthly_savings:
            return None
    elif settings.include_upsize and not fits(current, need):
        kind = "upsize_compute"
    else:
        return None

    max_vcpu = (usage.cpu_max or 0.0) / 100.0 * current.vcpu
    factors = {
        "coverage": min(1.0, usage.days_covered / settings.lookback_days),
        "peak_fits": 1.0 if max_vcpu <= rec.vcpu + EPS else 0.8,
        "memory_measured": 1.0 if need.memory_observed else 0.9,
        "price_source": 1.0 if paid.source == "bill" else 0.9,
        "price_region": 1.0 if price_region == region else 0.9,
        "commitment": 0.7 if paid.committed_share >= 0.5 else 1.0,
    }
    confidence = clamp_confidence(factors)
    label = f"p{settings.cpu_percentile:g}"
    mem_text = (f"mem max {usage.mem_max:.1f}%" if need.memory_observed
                else "memory not measured (kept)")
    summary = (f"cpu {label} {usage.cpu_p_sample or 0:.1f}% (bound {usage.cpu_p:.1f}%, max "
               f"{usage.cpu_max or 0:.1f}%), {mem_text}; "
               f"need {need.vcpu:.2f} vCPU / {need.memory_gib:.1f} GiB; "
               f"{usage.days_covered} days, {usage.hours_observed} h; price from {paid.source}")
    evidence = {
        "summary": summary,
        "window": {"start": window_start.isoformat(), "end": as_of.isoformat()},
        "hours_observed": usage.hours_observed,
        "days_covered": usage.days_covered,
        "cpu_percentile": settings.cpu_percentile,
        f"cpu_{label}_pct": _r(usage.cpu_p_sample),
        "cpu_need_pct": round(usage.cpu_p, 2),
        "cpu_bound": {"confidence": settings.percentile_confidence, "rank": usage.bound_rank,
                      "samples": usage.cpu_samples},
        "cpu_p95_pct": _r(usage.cpu_p95),
        "cpu_max_pct": _r(usage.cpu_max),
        "cpu_mean_pct": _r(usage.cpu_mean),
        "memory_max_pct": _r(usage.mem_max),
        "memory_measured": need.memory_observed,
        "headroom": settings.headroom,
        "need": {"vcpu": round(need.vcpu, 3), "memory_gib": round(need.memory_gib, 3)},
        "current": {**current.describe(), "list_hourly": str(list_cur)},
        "recommended": {**rec.describe(), "list_hourly": str(list_rec)},
        "price_source": paid.source,
        "price_region": price_region,
        "paid_hourly_current": str(paid.hourly.quantize(Decimal("0.000001"))),
        "paid_hourly_recommended": str(paid_rec.quantize(Decimal("0.000001"))),
        "discount_vs_list": round(1 - float(paid.hourly / list_cur), 4),
        "monthly_hours": str(hours),
        "committed_share": round(paid.committed_share, 4),
        "currency": paid.currency,
        "confidence_factors": factors,
        "confidence_label": confidence_label(confidence),
        "series": list(usage.daily),
    }
    return Recommendation(kind, usage.resource_id, current.name, rec.name, monthly, confidence,
                          evidence, summary, prov, region, paid.currency, factors)


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


__all__ = ["Need", "Paid", "choose", "credits_hold", "fits", "need_of", "rightsize", "savings"]
