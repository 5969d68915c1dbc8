"""Rows that are not metered usage: support plans, tax, credits, a refund, monthly fees.

They are computed from the period's generated usage (support is a share of spend, tax
a share of billed usage), so they stay in proportion at any scale.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt

from collectors.demo.catalog import KINDS, Kind
from collectors.demo.frames import account_fields
from collectors.demo.lines import ACCOUNT_KEYS, KIND_KEYS, Lines
from collectors.demo.money import SCALE, Units, unit_of
from collectors.demo.org import PROVIDERS, SUB_ACCOUNTS, Provider
from collectors.demo.window import Period, Window, midnight

# AWS Business Support: a falling share of each month's AWS charges.
AWS_SUPPORT_TIERS: Final = ((10_000.0, 0.10), (80_000.0, 0.07), (250_000.0, 0.05),
                            (float("inf"), 0.03))
GCP_SUPPORT_SHARE: Final = 0.03
GCP_SUPPORT_MINIMUM: Final = 500.0
AZURE_SUPPORT_FEE: Final = 1_000.0
# US sales tax on AWS usage billed to the company's address (an average of state rates
# over the taxable services).
AWS_TAX_RATE: Final = 0.02
MAP_CREDIT: Final = 4_000.0  # per month at the reference scale, the first four months
MAP_MONTHS: Final = 4
REFUND_PERIOD: Final = 3  # the billing period (index) that carries the refund
REFUND_SHARE: Final = 0.12
HOSTED_ZONES: Final = 30


def _month_row(account: str, period: Period, **fields: Any) -> dict[str, Any]:
    row = {
        **account_fields(SUB_ACCOUNTS[account]),
        "ChargePeriodStart": midnight(period.start),
        "ChargePeriodEnd": midnight(period.end),
        "ChargeFrequency": "Recurring",
    }
    row.update(fields)
    return row


def _fee(account: str, period: Period, units: int, **fields: Any) -> dict[str, Any]:
    return _month_row(account, period, ChargeCategory="Purchase", BilledCost=units,
                      EffectiveCost=units, ListCost=units, ContractedCost=units, **fields)


def _tiered(amount: float) -> float:
    fee, low = 0.0, 0.0
    for high, share in AWS_SUPPORT_TIERS:
        if amount > low:
            fee += (min(amount, high) - low) * share
        low = high
    return fee


def charge_rows(provider: Provider, period: Period, window: Window, lines: Lines,
                billed: npt.NDArray[np.int64], effective: npt.NDArray[np.int64],
                previous_billed: npt.NDArray[np.int64] | None, factor: float
                ) -> list[dict[str, Any]]:
    """``billed``/``effective``: this period's usage per line (units); ``previous_billed``:
    the period before's, for the refund."""
    mine = (lines.provider == PROVIDERS.index(provider)) & ~lines.credit
    spend = float(effective[mine].sum()) / SCALE
    rows: list[dict[str, Any]] = []
    if provider == "aws":
        rows.append(_fee("management", period, unit_of(round(_tiered(spend), 2)),
                         ServiceName="AWS Support (Business)",
                         ServiceCategory="Management and Governance",
                         ServiceSubcategory="Support",
                         ChargeDescription="AWS Support (Business) - monthly fee"))
        zones = max(1, round(HOSTED_ZONES * factor))
        rows.append(_fee("network-hub", period, unit_of(0.5 * zones),
                         ServiceName="Amazon Route 53", ServiceCategory="Networking",
                         ServiceSubcategory="Network Connectivity",
                         ChargeDescription="$0.50 per Hosted Zone for the first 25 Hosted Zones",
                         PricingQuantity=float(zones), PricingUnit="Hosted Zones",
                         ConsumedQuantity=float(zones), ConsumedUnit="Hosted Zones",
                         ListUnitPrice=unit_of(0.5), ContractedUnitPrice=unit_of(0.5)))
        rows += _tax_rows(period, lines, billed, mine)
        if period.index < MAP_MONTHS:
            credit = -unit_of(round(MAP_CREDIT * factor, 2))
            rows.append(_month_row(
                "management", period, ChargeCategory="Credit", BilledCost=credit,
                EffectiveCost=credit, ListCost=0, ContractedCost=0,
                ServiceName="Amazon Elastic Compute Cloud", ServiceCategory="Compute",
                ServiceSubcategory="Virtual Machines",
                ChargeDescription="AWS Credit: Migration Acceleration Program (MAP 2.0)"))
        if period.index == REFUND_PERIOD and previous_billed is not None:
            rows += _refund(period, window, lines, previous_billed)
    elif provider == "gcp":
        fee = max(GCP_SUPPORT_MINIMUM, spend * GCP_SUPPORT_SHARE)
        rows.append(_fee("platform-shared", period, unit_of(round(fee, 2)),
                         ServiceName="Support", ServiceCategory="Management and Governance",
                         ServiceSubcategory="Support",
                         ChargeDescription="Enhanced Support: 3% of monthly spend, $500 minimum"))
    elif provider == "azure":
        rows.append(_fee("connectivity", period, unit_of(AZURE_SUPPORT_FEE),
                         ServiceName="Azure Support", ServiceCategory="Management and Governance",
                         ServiceSubcategory="Support",
                         ChargeDescription="Azure Support Plan: Professional Direct"))
    return rows


def _tax_rows(period: Period, lines: Lines, billed: npt.NDArray[np.int64],
              mine: npt.NDArray[np.bool_]) -> list[dict[str, Any]]:
    # One tax row per account and service, as AWS itemises it.
    key = lines.account.astype(np.int64) * len(KIND_KEYS) + lines.kind
    sums = np.bincount(key[mine], weights=billed[mine].astype(np.float64),
                       minlength=len(ACCOUNT_KEYS) * len(KIND_KEYS))
    nk = len(KIND_KEYS)
    by_service: dict[tuple[str, str], tuple[Kind, float]] = {}
    for k in np.flatnonzero(sums > 0):
        account, kind = ACCOUNT_KEYS[int(k) // nk], KINDS[KIND_KEYS[int(k) % nk]]
        # Several kinds share a service (EC2 instances and EBS volumes): one row for both.
        first, total = by_service.get((account, kind.service), (kind, 0.0))
        by_service[(account, kind.service)] = (first, total + float(sums[k]) / SCALE)
    rows = []
    for (account, service), (kind, base) in by_service.items():
        units = unit_of(round(base * AWS_TAX_RATE, 2))
        if units <= 0:
            continue
        rows.append(_month_row(account, period, ChargeCategory="Tax", BilledCost=units,
                               EffectiveCost=units, ListCost=units, ContractedCost=units,
                               ServiceName=service, ServiceCategory=kind.category,
                               ServiceSubcategory=kind.subcategory,
                               ChargeDescription=f"Sales tax on {service}"))
    return rows


def _refund(period: Period, window: Window, lines: Lines, previous: Units
            ) -> list[dict[str, Any]]:
    prev = window.periods[period.index - 1]
    which = (lines.kind == KIND_KEYS.index("athena")) & (
        lines.account == ACCOUNT_KEYS.index("analytics-prod"))
    base = float(previous[which].sum()) / SCALE
    units = -unit_of(round(base * REFUND_SHARE, 2))
    if units >= 0:
        return []
    return [{
        **account_fields(SUB_ACCOUNTS["analytics-prod"]),
        "ChargeCategory": "Credit",
        "ChargeClass": "Correction",
        "ChargeFrequency": "One-Time",
        # A correction is billed now for a charge period in an earlier billing period.
        "ChargePeriodStart": midnight(prev.start),
        "ChargePeriodEnd": midnight(prev.end),
        "BilledCost": units,
        "EffectiveCost": units,
        "ListCost": 0,
        "ContractedCost": 0,
        "ServiceName": "Amazon Athena",
        "ServiceCategory": "Analytics",
        "ServiceSubcategory": "Data Processing",
        "RegionId": "us-east-1",
        "RegionName": "US East (N. Virginia)",
        "ChargeDescription": f"Refund: Amazon Athena data scanned over-metered in "
                             f"{prev.start:%B %Y} (AWS Support case 17734291)",
    }]
