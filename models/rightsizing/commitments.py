"""Commitments (Savings Plans, reserved instances, CUDs): coverage, utilisation, purchase.

From the bill over the lookback, per provider and billing currency:

- **coverage** = committed usage at on-demand-equivalent cost (ListCost) ÷ (that + the
  on-demand compute usage cost) — how much of compute ran on a commitment;
- **utilisation** of each commitment = Σ EffectiveCost of its ``Used`` rows ÷ Σ of its
  ``Used`` and ``Unused`` rows;
- **purchase**: the eligible spend is on-demand (``PricingCategory = Standard``) compute
  usage (``ServiceCategory = Compute``), spread evenly over the hours of each charge period
  (a daily bill gives 24 equal hours). A commitment of ``C`` per hour at discount ``d``
  covers on-demand spend up to ``x = C / (1 − d)`` each hour, so the cost of hour ``h`` is
  ``C + max(0, OD_h − x)`` and the savings over the lookback are
  ``S(x) = Σ_h min(OD_h, x) − n·x·(1 − d)``. S is concave and piecewise linear; it peaks at
  one of the observed hourly spends (the ``d``-quantile of OD_h), found exactly by sorting.
  The discount ``d`` is the one the bill shows on existing commitments of the provider
  (1 − EffectiveCost / ListCost of committed compute usage), else ``commitment_discount``.
  When an existing commitment of the provider is used less than 90%, the confidence drops
  (fill what is bought before buying more) and the evidence says so.
  **Break-even**: the commitment saves money as long as its utilisation stays above
  ``1 − d``; with flat usage, as long as eligible on-demand spend stays above ``C`` per hour.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Final

import numpy as np
import polars as pl

from models.rightsizing.base import Recommendation, cents, clamp_confidence, confidence_label, dec
from models.rightsizing.catalog import normalize_provider
from models.rightsizing.settings import HOURS_PER_MONTH, RightsizingSettings

COLUMNS: Final = ("ProviderName", "BillingCurrency", "ChargeCategory", "ChargePeriodStart",
                  "ChargePeriodEnd", "EffectiveCost", "ListCost", "PricingCategory", "ServiceCategory",
                  "CommitmentDiscountId", "CommitmentDiscountStatus", "CommitmentDiscountType")
TYPE_NAME: Final = {"aws": "Compute Savings Plan", "gcp": "spend-based CUD",
                    "azure": "Azure savings plan for compute"}


def select_bill(lf: pl.LazyFrame, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    names = lf.collect_schema().names()
    cols = [pl.col(c) if c in names else pl.lit(None).alias(c) for c in COLUMNS]
    return (lf.filter((pl.col("ChargePeriodStart") >= start) & (pl.col("ChargePeriodStart") < end))
            .select(cols).collect(engine="streaming"))


def utilisation(bill: pl.DataFrame) -> pl.DataFrame:
    """Per commitment: used, unused and utilisation (Used ÷ (Used + Unused))."""
    rows = bill.filter(pl.col("CommitmentDiscountId").is_not_null()
                       & pl.col("CommitmentDiscountStatus").is_in(["Used", "Unused"]))
    if rows.is_empty():
        return pl.DataFrame(schema={"ProviderName": pl.String, "BillingCurrency": pl.String,
                                    "CommitmentDiscountId": pl.String,
                                    "CommitmentDiscountType": pl.String, "used": pl.Decimal(38, 12),
                                    "unused": pl.Decimal(38, 12), "utilisation": pl.Float64})
    cost = pl.col("EffectiveCost")
    status = pl.col("CommitmentDiscountStatus")
    return (rows.group_by("ProviderName", "BillingCurrency", "CommitmentDiscountId")
            .agg(pl.col("CommitmentDiscountType").drop_nulls().first(),
                 cost.filter(status == "Used").sum().alias("used"),
                 cost.filter(status == "Unused").sum().alias("unused"))
            .with_columns((pl.col("used").cast(pl.Float64)
                           / (pl.col("used") + pl.col("unused")).cast(pl.Float64)).alias("utilisation"))
            .sort("ProviderName", "BillingCurrency", "CommitmentDiscountId"))


def hourly_series(rows: pl.DataFrame, start: dt.datetime, end: dt.datetime) -> list[Decimal]:
    """Cost per hour of [start, end), each row spread evenly over its charge period's hours."""
    n = int((end - start).total_seconds() // 3600)
    out = [Decimal(0)] * n
    per_period = rows.group_by("ChargePeriodStart", "ChargePeriodEnd").agg(pl.col("EffectiveCost").sum())
    for s, e, cost in per_period.iter_rows():
        first = int((s - start).total_seconds() // 3600)
        hours = max(1, round((e - s).total_seconds() / 3600))
        share = Decimal(cost) / hours
        for h in range(max(first, 0), min(first + hours, n)):
            out[h] += share
    return out


def best_level(hourly: list[Decimal], discount: float) -> tuple[Decimal, Decimal]:
    """(x, S(x)): the on-demand level to cover each hour and the savings over the series."""
    if not hourly:
        return Decimal(0), Decimal(0)
    values = np.sort(np.asarray([float(v) for v in hourly], dtype=np.float64))
    n = values.size
    below = np.concatenate(([0.0], np.cumsum(values)[:-1]))  # Σ of values below index k
    # S(values[k]) = Σ_{i<k} v_i + (n − k)·v_k − n·v_k·(1 − d)
    k = np.arange(n)
    s = below + (n - k) * values - n * values * (1 - discount)
    x = dec(float(values[int(np.argmax(s))]))
    d = dec(discount)
    exact = sum((min(v, x) for v in hourly), Decimal(0)) - n * x * (1 - d)
    return x, exact


def savings_at(hourly: list[Decimal], commitment: Decimal, discount: float) -> Decimal:
    """S for a commitment of ``commitment`` per hour (exact, Decimal)."""
    d = dec(discount)
    x = commitment / (1 - d)
    return sum((min(v, x) for v in hourly), Decimal(0)) - len(hourly) * commitment


def observed_discount(bill: pl.DataFrame) -> float | None:
    rows = bill.filter((pl.col("PricingCategory") == "Committed") & (pl.col("ChargeCategory") == "Usage")
                       & (pl.col("ServiceCategory") == "Compute")
                       & pl.col("ListCost").is_not_null() & (pl.col("ListCost") > 0))
    if rows.is_empty():
        return None
    eff = float(rows["EffectiveCost"].cast(pl.Float64).sum())
    lst = float(rows["ListCost"].cast(pl.Float64).sum())
    d = 1 - eff / lst if lst else 0.0
    return d if 0.01 <= d < 0.95 else None


def commitment_purchases(bill: pl.DataFrame, *, start: dt.datetime, end: dt.datetime,
                         settings: RightsizingSettings) -> list[Recommendation]:
    """One purchase recommendation per provider and currency where a commitment would save."""
    if bill.is_empty():
        return []
    out = []
    for (provider, currency), part in bill.group_by("ProviderName", "BillingCurrency", maintain_order=True):
        if provider is None or currency is None:
            continue
        usage = part.filter((pl.col("ChargeCategory") == "Usage") & (pl.col("ServiceCategory") == "Compute"))
        eligible = usage.filter(pl.col("PricingCategory") == "Standard")
        if eligible.is_empty():
            continue
        last = eligible["ChargePeriodEnd"].max()
        first = eligible["ChargePeriodStart"].min()
        assert isinstance(last, dt.datetime)
        assert isinstance(first, dt.datetime)
        w_start, w_end = max(start, first.replace(minute=0, second=0, microsecond=0)), min(end, last)
        hourly = hourly_series(eligible, w_start, w_end)
        if len(hourly) < settings.min_hours:
            continue
        seen = observed_discount(part)
        discount = seen if seen is not None else settings.commitment_discount.get(str(provider))
        if discount is None:
            continue
        x, _ = best_level(hourly, discount)
        commitment = (x * (1 - dec(discount))).quantize(Decimal("0.001"))  # bought in $0.001/h steps
        if commitment <= 0:
            continue
        window_savings = savings_at(hourly, commitment, discount)
        factor = HOURS_PER_MONTH / len(hourly)
        monthly = cents(window_savings * factor)
        if monthly < settings.min_monthly_savings:
            continue
        total_od = sum(hourly, Decimal(0))
        covered = usage.filter(pl.col("PricingCategory") == "Committed")
        covered_list = float(covered["ListCost"].cast(pl.Float64).fill_null(0).sum())
        coverage = covered_list / (covered_list + float(total_od)) if covered_list + float(total_od) else 0.0
        used = sum((min(v, commitment / (1 - dec(discount))) for v in hourly), Decimal(0))
        expected_util = float(used / (len(hourly) * commitment / (1 - dec(discount))))
        daily = np.asarray([float(sum(hourly[i:i + 24], Decimal(0))) for i in range(0, len(hourly), 24)])
        cv = float(daily.std() / daily.mean()) if daily.size > 1 and daily.mean() > 0 else 0.0
        util = utilisation(part)
        underused = [r["CommitmentDiscountId"] for r in util.iter_rows(named=True)
                     if r["utilisation"] is not None and r["utilisation"] < 0.9]
        factors = {"coverage": min(1.0, len(hourly) / 24 / settings.lookback_days),
                   "stability": 1.0 - min(0.5, cv),
                   "discount_source": 1.0 if seen is not None else 0.85,
                   "existing_used": 0.7 if underused else 1.0}
        conf = clamp_confidence(factors)
        prov = normalize_provider(str(provider))
        name = TYPE_NAME.get(prov, "commitment")
        avg = total_od / len(hourly)
        summary = (f"on-demand compute {avg:.2f}/h on average, coverage {coverage:.0%}; commit "
                   f"{commitment}/h at {discount:.0%} off, expected utilisation {expected_util:.0%}, "
                   f"break-even {1 - discount:.0%}")
        pct = np.percentile(np.asarray([float(v) for v in hourly]), [10, 50, 90])
        evidence = {
            "summary": summary,
            "window": {"start": w_start.isoformat(), "end": w_end.isoformat()},
            "hours": len(hourly),
            "on_demand_hourly": {"mean": str(avg.quantize(Decimal("0.0001"))),
                                 "p10": round(float(pct[0]), 4), "p50": round(float(pct[1]), 4),
                                 "p90": round(float(pct[2]), 4)},
            "coverage_now": round(coverage, 4),
            "commitments_now": [
                {"id": r["CommitmentDiscountId"], "type": r["CommitmentDiscountType"],
                 "utilisation": None if r["utilisation"] is None else round(r["utilisation"], 4)}
                for r in util.iter_rows(named=True)],
            "underused_commitments": underused,
            "discount": round(discount, 4),
            "discount_source": "bill" if seen is not None else "setting",
            "commitment_per_hour": str(commitment),
            "covers_on_demand_per_hour": str((commitment / (1 - dec(discount))).quantize(Decimal("0.0001"))),
            "savings_over_window": str(cents(window_savings)),
            "expected_utilisation": round(expected_util, 4),
            "break_even_utilisation": round(1 - discount, 4),
            "break_even_on_demand_per_hour": str(commitment),
            "term_months": settings.commitment_term_months,
            "currency": str(currency),
            "daily_on_demand": [round(float(v), 2) for v in daily],
            "confidence_factors": factors, "confidence_label": confidence_label(conf),
        }
        out.append(Recommendation(
            "commitment_purchase", f"{provider} compute ({currency})",
            f"on-demand {avg.quantize(Decimal('0.01'))}/h, coverage {coverage:.0%}",
            f"{name} {commitment}/h, {settings.commitment_term_months} months", monthly, conf, evidence,
            summary, prov, None, str(currency), factors))
    return out
