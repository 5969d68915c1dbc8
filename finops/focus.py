"""FOCUS 1.2, the one cost schema inside the toolkit: columns, types, allowed values.

Money is ``Decimal(38, 12)``: sums stay exact to the cent at any row count (a billion
rows of a million dollars each still fit in 38 digits), which float64 cannot promise.
Quantities are float64: they are never reconciled, only multiplied for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

FOCUS_VERSION: Final = "1.2"
MONEY: Final = pl.Decimal(38, 12)
TIMESTAMP: Final = pl.Datetime("us", "UTC")
TAGS: Final = pl.Map(pl.String, pl.String)
QUANTITY: Final = pl.Float64()

CHARGE_CATEGORIES: Final = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")
CHARGE_CLASSES: Final = ("Correction",)
CHARGE_FREQUENCIES: Final = ("One-Time", "Recurring", "Usage-Based")
PRICING_CATEGORIES: Final = ("Standard", "Dynamic", "Committed", "Other")
COMMITMENT_DISCOUNT_CATEGORIES: Final = ("Spend", "Usage")
COMMITMENT_DISCOUNT_STATUSES: Final = ("Used", "Unused")
CAPACITY_RESERVATION_STATUSES: Final = ("Used", "Unused")
SERVICE_CATEGORIES: Final = (
    "AI and Machine Learning",
    "Analytics",
    "Business Applications",
    "Compute",
    "Databases",
    "Developer Tools",
    "Multicloud",
    "Identity",
    "Integration",
    "Internet of Things",
    "Management and Governance",
    "Media",
    "Migration",
    "Mobile",
    "Networking",
    "Security",
    "Storage",
    "Web",
    "Other",
)


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    # FOCUS "Allows nulls: False": a null here is a violation.
    not_null: bool = False
    allowed: tuple[str, ...] | None = None
    # Needed to ingest a file at all: without it no cost can be placed in time or money.
    required: bool = False


def _c(name: str, dtype: pl.DataType, **kw: object) -> Column:
    return Column(name, dtype, **kw)  # type: ignore[arg-type]


S = pl.String()
COLUMNS: Final[tuple[Column, ...]] = (
    _c("AvailabilityZone", S),
    _c("BilledCost", MONEY, not_null=True, required=True),
    _c("BillingAccountId", S, not_null=True, required=True),
    _c("BillingAccountName", S),
    _c("BillingAccountType", S),
    _c("BillingCurrency", S, not_null=True, required=True),
    _c("BillingPeriodEnd", TIMESTAMP, not_null=True, required=True),
    _c("BillingPeriodStart", TIMESTAMP, not_null=True, required=True),
    _c("CapacityReservationId", S),
    _c("CapacityReservationStatus", S, allowed=CAPACITY_RESERVATION_STATUSES),
    _c("ChargeCategory", S, not_null=True, allowed=CHARGE_CATEGORIES, required=True),
    _c("ChargeClass", S, allowed=CHARGE_CLASSES),
    _c("ChargeDescription", S),
    _c("ChargeFrequency", S, allowed=CHARGE_FREQUENCIES),
    _c("ChargePeriodEnd", TIMESTAMP, not_null=True, required=True),
    _c("ChargePeriodStart", TIMESTAMP, not_null=True, required=True),
    _c("CommitmentDiscountCategory", S, allowed=COMMITMENT_DISCOUNT_CATEGORIES),
    _c("CommitmentDiscountId", S),
    _c("CommitmentDiscountName", S),
    _c("CommitmentDiscountQuantity", QUANTITY),
    _c("CommitmentDiscountStatus", S, allowed=COMMITMENT_DISCOUNT_STATUSES),
    _c("CommitmentDiscountType", S),
    _c("CommitmentDiscountUnit", S),
    _c("ConsumedQuantity", QUANTITY),
    _c("ConsumedUnit", S),
    _c("ContractedCost", MONEY, not_null=True),
    _c("ContractedUnitPrice", MONEY),
    _c("EffectiveCost", MONEY, not_null=True, required=True),
    _c("InvoiceId", S),
    _c("InvoiceIssuerName", S, not_null=True),
    _c("ListCost", MONEY, not_null=True),
    _c("ListUnitPrice", MONEY),
    _c("PricingCategory", S, allowed=PRICING_CATEGORIES),
    _c("PricingCurrency", S),
    _c("PricingCurrencyContractedUnitPrice", MONEY),
    _c("PricingCurrencyEffectiveCost", MONEY),
    _c("PricingCurrencyListUnitPrice", MONEY),
    _c("PricingQuantity", QUANTITY),
    _c("PricingUnit", S),
    _c("ProviderName", S, not_null=True, required=True),
    _c("PublisherName", S, not_null=True),
    _c("RegionId", S),
    _c("RegionName", S),
    _c("ResourceId", S),
    _c("ResourceName", S),
    _c("ResourceType", S),
    _c("ServiceCategory", S, not_null=True, allowed=SERVICE_CATEGORIES),
    _c("ServiceName", S, not_null=True, required=True),
    _c("ServiceSubcategory", S),
    _c("SkuId", S),
    _c("SkuMeter", S),
    _c("SkuPriceDetails", S),
    _c("SkuPriceId", S),
    _c("SubAccountId", S),
    _c("SubAccountName", S),
    _c("SubAccountType", S),
    _c("Tags", TAGS),
)

BY_NAME: Final = {c.name: c for c in COLUMNS}
COLUMN_NAMES: Final = tuple(c.name for c in COLUMNS)
REQUIRED: Final = tuple(c.name for c in COLUMNS if c.required)
MONEY_COLUMNS: Final = tuple(c.name for c in COLUMNS if c.dtype == MONEY)
TIMESTAMP_COLUMNS: Final = tuple(c.name for c in COLUMNS if c.dtype == TIMESTAMP)
QUANTITY_COLUMNS: Final = tuple(c.name for c in COLUMNS if c.dtype == QUANTITY)
SCHEMA: Final = pl.Schema({c.name: c.dtype for c in COLUMNS})

# Columns every stored billing row carries beyond FOCUS: which export it came from and
# which row of it, so any number can be traced back to the file.
LINEAGE_COLUMNS: Final = {"x_SourceFile": pl.String(), "x_SourceRow": pl.Int64()}

# Names used by earlier FOCUS versions (0.5, 1.0-preview) and their 1.2 names.
RENAMED_COLUMNS: Final = {
    "AmortizedCost": "EffectiveCost",
    "Provider": "ProviderName",
    "Publisher": "PublisherName",
    "InvoiceIssuer": "InvoiceIssuerName",
    "Region": "RegionName",
    "UsageQuantity": "ConsumedQuantity",
    "UsageUnit": "ConsumedUnit",
    "ChargeType": "ChargeCategory",
}

# Spellings seen in real exports and their canonical FOCUS values.
VALUE_ALIASES: Final[dict[str, dict[str, str]]] = {
    "ChargeFrequency": {"usage-based": "Usage-Based", "one-time": "One-Time", "recurring": "Recurring"},
    "ChargeCategory": {c.lower(): c for c in CHARGE_CATEGORIES},
    "ChargeClass": {"correction": "Correction"},
    "PricingCategory": {
        **{c.lower(): c for c in PRICING_CATEGORIES},
        # FOCUS 1.0 called these "On-Demand"/"Commitment-Based" in preview drafts.
        "on-demand": "Standard",
        "commitment-based": "Committed",
    },
    "CommitmentDiscountStatus": {"used": "Used", "unused": "Unused"},
    "CommitmentDiscountCategory": {"spend": "Spend", "usage": "Usage"},
}


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema={**SCHEMA, **LINEAGE_COLUMNS})
