"""Commitment discounts: a Savings Plan and an RDS Reserved Instance on AWS, a flexible
CUD on Google Cloud, with their purchase, used and unused rows the FOCUS way.

Covered usage rows carry BilledCost 0 and the amortised rate as EffectiveCost; the
commitment's fee is billed on Purchase rows (EffectiveCost 0); whatever part of the
daily commitment no usage consumed is an Unused row. Each commitment is sized from the
usage it covers, and used plus unused equals the daily commitment exactly, so EffectiveCost
stays the amortised fee. The RI's upfront fee and the month-start fees of a month still
in progress are why the BilledCost and EffectiveCost totals differ.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from collectors.demo.frames import account_fields
from collectors.demo.money import SCALE, Units, to_units
from collectors.demo.org import SUB_ACCOUNTS, Provider
from collectors.demo.window import Period, Window, midnight


@dataclass(frozen=True)
class CommitmentSpec:
    key: str
    provider: Provider
    account: str  # SubAccount that bought it
    region: str
    commitment_id: str
    name: str
    cd_type: str
    category: str  # Spend | Usage
    unit: str
    discount: float  # effective rate below list
    billing: str  # monthly | partial_upfront | daily
    service: str
    service_category: str
    subcategory: str
    resource_type: str
    bought_before_end: int | None  # days before the window's last day; None: before it
    headroom: float = 1.0  # commitment = the peak covered usage times this
    upfront_share: float = 0.0
    term_days: int = 365


COMMITMENTS: Final = (
    CommitmentSpec(
        "aws-sp", "aws", "shared-services", "us-east-1",
        "arn:aws:savingsplans::918273645501:savingsplan/3f6c2a1e-8b7d-4c5e-9f0a-1b2c3d4e5f60",
        "Compute Savings Plan, 1 year, No Upfront", "Compute Savings Plan", "Spend", "USD", 0.27,
        "monthly", "Savings Plans for AWS Compute usage", "Compute", "Virtual Machines",
        "Savings Plan", None,
    ),
    CommitmentSpec(
        "aws-rds-ri", "aws", "data-platform-prod", "us-east-1",
        "arn:aws:rds:us-east-1:204918273633:ri:bw-pg-r6g-xlarge-1y",
        "RDS db.r6g.xlarge PostgreSQL, 1 year, Partial Upfront", "Reserved Instance", "Usage",
        "Hours", 0.38, "partial_upfront", "Amazon Relational Database Service", "Databases",
        "Relational Databases", "Reserved Instance", 160, upfront_share=0.5,
    ),
    CommitmentSpec(
        "gcp-cud", "gcp", "ml-training", "us-central1",
        "//compute.googleapis.com/projects/bw-ml-training/regions/us-central1/commitments/"
        "flex-cud-1y",
        "Compute flexible committed use discount, 1 year", "Committed Use Discount", "Spend",
        "USD", 0.28, "daily", "Compute Engine", "Compute", "Virtual Machines", "Commitment", None,
        headroom=1.08,
    ),
)
COMMITMENT_INDEX: Final = {c.key: i for i, c in enumerate(COMMITMENTS)}
DISCOUNTS: Final = np.array([c.discount for c in COMMITMENTS], dtype=np.float64)
SPEND_BASED: Final = np.array([c.category == "Spend" for c in COMMITMENTS], dtype=bool)


def first_covered_day(spec: CommitmentSpec, window: Window) -> int:
    if spec.bought_before_end is None:
        return 0
    return max(0, window.n_days - 1 - spec.bought_before_end)


def committed_effective(pricing_qty: npt.NDArray[np.float64], price: npt.NDArray[np.float64],
                        discount: npt.NDArray[np.float64]) -> Units:
    """EffectiveCost of covered usage; the one formula both the usage rows and the
    commitment's used total are computed with, so they agree to the unit."""
    return to_units(pricing_qty * price * (1.0 - discount))


@dataclass
class CommitmentState:
    spec: CommitmentSpec
    first_day: int
    daily: int  # the commitment per day, units
    used: Units  # covered EffectiveCost per window day, units

    @property
    def bought(self) -> bool:
        return self.spec.bought_before_end is not None and self.first_day > 0


def size_commitments(window: Window, covered_daily: list[Units]) -> list[CommitmentState]:
    """``covered_daily[k]``: the covered EffectiveCost of commitment k per window day."""
    out = []
    for spec, used in zip(COMMITMENTS, covered_daily, strict=True):
        first = first_covered_day(spec, window)
        peak = int(used[first:].max()) if used[first:].size else 0
        out.append(CommitmentState(spec, first, round(peak * spec.headroom), used))
    return out


def _base(state: CommitmentState) -> dict[str, Any]:
    spec = state.spec
    return {
        **account_fields(SUB_ACCOUNTS[spec.account]),
        "RegionId": spec.region,
        "ServiceName": spec.service,
        "ServiceCategory": spec.service_category,
        "ServiceSubcategory": spec.subcategory,
        "ResourceId": spec.commitment_id,
        "ResourceName": spec.name,
        "ResourceType": spec.resource_type,
        "CommitmentDiscountId": spec.commitment_id,
        "CommitmentDiscountName": spec.name,
        "CommitmentDiscountType": spec.cd_type,
        "CommitmentDiscountCategory": spec.category,
        "CommitmentDiscountUnit": spec.unit,
    }


def _quantity(state: CommitmentState, units: int) -> float:
    # Spend-based commitments count money; usage-based ones count the hours they cover.
    if state.spec.category == "Spend":
        return units / SCALE
    return round(units / state.daily * 24, 6) if state.daily else 0.0


def _purchase(state: CommitmentState, start: dt.datetime, end: dt.datetime, units: int,
              frequency: str, description: str) -> dict[str, Any]:
    return {
        **_base(state),
        "ChargeCategory": "Purchase",
        "ChargeFrequency": frequency,
        "PricingCategory": "Standard",
        "ChargeDescription": description,
        "ChargePeriodStart": start,
        "ChargePeriodEnd": end,
        "BilledCost": units,
        "EffectiveCost": 0,
        "ListCost": units,
        "ContractedCost": units,
        "CommitmentDiscountQuantity": _quantity(state, units),
    }


def commitment_rows(state: CommitmentState, window: Window, period: Period) -> list[dict[str, Any]]:
    """Purchase and unused rows of one commitment in one billing period."""
    spec = state.spec
    first = max(state.first_day, period.first_day)
    if first > period.last_day or state.daily <= 0:
        return []
    rows: list[dict[str, Any]] = []
    charge_start = midnight(window.day(first)) if first > period.first_day else midnight(
        period.start)
    month_days = (period.end - window.day(first)).days
    if spec.billing == "monthly":
        rows.append(_purchase(state, charge_start, midnight(period.end),
                              state.daily * month_days, "Recurring",
                              f"{spec.cd_type} recurring fee for {period.start:%B %Y}"))
    elif spec.billing == "partial_upfront":
        recurring = round(state.daily * (1 - spec.upfront_share))
        if state.bought and period.first_day <= state.first_day <= period.last_day:
            bought = window.day(state.first_day)
            upfront = round(state.daily * spec.upfront_share) * spec.term_days
            rows.append(_purchase(state, midnight(bought),
                                  midnight(bought + dt.timedelta(days=spec.term_days)), upfront,
                                  "One-Time", f"{spec.name}: upfront fee"))
        rows.append(_purchase(state, charge_start, midnight(period.end), recurring * month_days,
                              "Recurring", f"{spec.name}: recurring fee for {period.start:%B %Y}"))
    else:
        for d in range(first, period.last_day + 1):
            rows.append(_purchase(state, midnight(window.day(d)), midnight(window.day(d + 1)),
                                  state.daily, "Recurring", f"{spec.name}: daily commitment fee"))
    for d in range(first, period.last_day + 1):
        unused = state.daily - int(state.used[d])
        if unused <= 0:
            continue
        rows.append({
            **_base(state),
            "ChargeCategory": "Usage",
            "ChargeFrequency": "Usage-Based",
            "PricingCategory": "Committed",
            "CommitmentDiscountStatus": "Unused",
            "ChargeDescription": f"Unused {spec.cd_type} commitment",
            "ChargePeriodStart": midnight(window.day(d)),
            "ChargePeriodEnd": midnight(window.day(d + 1)),
            "BilledCost": 0,
            "EffectiveCost": unused,
            "ListCost": 0,
            "ContractedCost": 0,
            "CommitmentDiscountQuantity": _quantity(state, unused),
        })
    return rows
