"""A recommendation, its stable id, money rounding and the confidence label."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

import polars as pl

CENT: Final = Decimal("0.01")
COLUMNS: Final = ("recommendation_id", "kind", "resource_id", "current", "recommended",
                  "monthly_savings", "confidence", "evidence", "status")
KINDS: Final = ("rightsize_compute", "upsize_compute", "idle_instance", "unattached_volume",
                "old_snapshot", "idle_load_balancer", "unused_elastic_ip", "warehouse_size",
                "warehouse_auto_suspend", "bigquery_pricing", "commitment_purchase")
STATUSES: Final = ("new", "accepted", "dismissed", "done")
MONEY: Final = pl.Decimal(38, 2)
SCHEMA: Final[dict[str, pl.DataType]] = {
    "recommendation_id": pl.String(),
    "kind": pl.String(),
    "resource_id": pl.String(),
    "current": pl.String(),
    "recommended": pl.String(),
    "monthly_savings": MONEY,
    "confidence": pl.Float64(),
    "evidence": pl.String(),  # JSON object
    "summary": pl.String(),  # one line of the evidence, for tables
    "provider": pl.String(),
    "region": pl.String(),
    "currency": pl.String(),
}


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def dec(value: float) -> Decimal:
    """A float as the Decimal of its shortest repr (0.1 → Decimal('0.1'))."""
    return Decimal(repr(float(value)))


def recommendation_id(kind: str, provider: str, resource_id: str) -> str:
    digest = hashlib.sha256(f"{kind}|{provider}|{resource_id}".encode()).hexdigest()
    return f"rec-{digest[:12]}"


def confidence_label(value: float) -> str:
    return "high" if value >= 0.8 else "medium" if value >= 0.5 else "low"


@dataclass
class Recommendation:
    kind: str
    resource_id: str
    current: str
    recommended: str
    monthly_savings: Decimal
    confidence: float
    evidence: dict[str, Any]
    summary: str
    provider: str = "aws"
    region: str | None = None
    currency: str = "USD"
    factors: dict[str, float] = field(default_factory=dict)

    @property
    def recommendation_id(self) -> str:
        return recommendation_id(self.kind, self.provider, self.resource_id)


def clamp_confidence(factors: dict[str, float]) -> float:
    value = 1.0
    for f in factors.values():
        value *= f
    return round(min(1.0, max(0.0, value)), 2)
