"""Writing small FOCUS files for tests, as real exports write them: every field text."""

from __future__ import annotations

import csv
import gzip
from collections.abc import Sequence
from pathlib import Path

HEADER_10 = [
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency", "BillingPeriodEnd",
    "BillingPeriodStart", "ChargeCategory", "ChargeClass", "ChargeDescription", "ChargeFrequency",
    "ChargePeriodEnd", "ChargePeriodStart", "ConsumedQuantity", "ContractedCost", "EffectiveCost",
    "InvoiceIssuerName", "ListCost", "PricingCategory", "ProviderName", "PublisherName",
    "RegionId", "ResourceId", "ServiceCategory", "ServiceName", "SubAccountId", "Tags",
]


def row(period: str = "2026-04", day: int = 1, cost: str = "1.00", *, effective: str | None = None,
        account: str = "000123456789", currency: str = "USD", category: str = "Usage",
        tags: str = '{"tenant":"acme"}', service: str = "Amazon EC2",
        resource: str = "i-1") -> dict[str, str]:
    year, month = (int(p) for p in period.split("-"))
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    return {
        "BilledCost": cost, "BillingAccountId": account, "BillingAccountName": "Payer",
        "BillingCurrency": currency, "BillingPeriodEnd": f"{ny:04d}-{nm:02d}-01T00:00:00Z",
        "BillingPeriodStart": f"{year:04d}-{month:02d}-01T00:00:00Z",
        "ChargeCategory": category, "ChargeClass": "", "ChargeDescription": "test",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": f"{year:04d}-{month:02d}-{day:02d}T23:59:59Z",
        "ChargePeriodStart": f"{year:04d}-{month:02d}-{day:02d}T00:00:00Z",
        "ConsumedQuantity": "1", "ContractedCost": cost,
        "EffectiveCost": effective if effective is not None else cost,
        "InvoiceIssuerName": "AWS", "ListCost": cost, "PricingCategory": "Standard",
        "ProviderName": "AWS", "PublisherName": "AWS", "RegionId": "us-east-1",
        "ResourceId": resource, "ServiceCategory": "Compute", "ServiceName": service,
        "SubAccountId": account, "Tags": tags,
    }


def write_csv(path: Path, rows: Sequence[dict[str, str]], header: Sequence[str] = HEADER_10,
              *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if gz else open
    with opener(path, "wt", newline="", encoding="utf-8") as fh:  # type: ignore[operator]
        writer = csv.DictWriter(fh, fieldnames=list(header), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path
