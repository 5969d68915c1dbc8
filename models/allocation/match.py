"""Turning a rule's ``match`` into a Polars condition on FOCUS columns."""

from __future__ import annotations

from typing import Final

import polars as pl

from models.allocation.config import Match, Values, glob_to_regex

FIELDS: Final = {
    "provider": "ProviderName",
    "billing_account": "BillingAccountId",
    "account": "SubAccountId",
    "account_name": "SubAccountName",
    "service": "ServiceName",
    "service_category": "ServiceCategory",
    "region": "RegionId",
    "resource": "ResourceId",
    "resource_name": "ResourceName",
    "charge_category": "ChargeCategory",
    "sku": "SkuId",
}


def _one(expr: pl.Expr, value: str) -> pl.Expr:
    if value == "*":
        return expr.is_not_null()
    if any(ch in value for ch in "*?"):
        return expr.str.contains(glob_to_regex(value)).fill_null(False)
    return (expr.str.to_lowercase() == value.lower()).fill_null(False)


def values_match(expr: pl.Expr, values: Values) -> pl.Expr:
    options = [values] if isinstance(values, str) else values
    plain = [v.lower() for v in options if v != "*" and not any(ch in v for ch in "*?")]
    patterns = [v for v in options if v == "*" or any(ch in v for ch in "*?")]
    parts = []
    if plain:
        parts.append(expr.str.to_lowercase().is_in(plain).fill_null(False))
    parts.extend(_one(expr, p) for p in patterns)
    return pl.any_horizontal(parts) if len(parts) > 1 else parts[0]


def condition(match: Match, *, tag_tenant: pl.Expr) -> pl.Expr:
    parts: list[pl.Expr] = []
    for field, column in FIELDS.items():
        values = getattr(match, field)
        if values is not None:
            parts.append(values_match(pl.col(column), values))
    for key, values in match.tags.items():
        parts.append(values_match(pl.col("Tags").map.get(key), values))
    if match.untagged is not None:
        parts.append(tag_tenant.is_null() if match.untagged else tag_tenant.is_not_null())
    return pl.all_horizontal(parts) if len(parts) > 1 else parts[0]
