"""From generated columns to stored FOCUS rows.

Generators build "raw" frames: FOCUS column names, money as integer units (see
``money.py``), tags as key/value lists. :func:`to_focus` turns one into a partition's
rows: money to Decimal, billing-period and invoice columns, lineage, and every FOCUS
column with its FOCUS type through ``ensure_focus_columns``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

import polars as pl

from collectors.demo.money import as_decimal
from collectors.demo.org import PROVIDER_INFO, BillingAccount, SubAccount
from collectors.demo.window import Period, midnight
from finops.focus import MONEY, SCHEMA, TAGS, TIMESTAMP
from finops.ingest import ensure_focus_columns

SOURCE_FILE: Final = "demo"
TAG_ENTRIES: Final = pl.List(pl.Struct({"key": pl.String, "value": pl.String}))


def tag_entries(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def account_fields(sub: SubAccount) -> dict[str, Any]:
    info = PROVIDER_INFO[sub.billing.provider]
    return {
        "ProviderName": info.provider_name,
        "PublisherName": info.publisher_name,
        "InvoiceIssuerName": info.invoice_issuer,
        "BillingAccountId": sub.billing.account_id,
        "BillingAccountName": sub.billing.name,
        "BillingAccountType": sub.billing.account_type,
        "BillingCurrency": sub.billing.currency,
        "PricingCurrency": sub.billing.currency,
        "SubAccountId": sub.sub_id,
        "SubAccountName": sub.name,
        "SubAccountType": sub.sub_type,
    }


def raw_dtype(name: str) -> pl.DataType:
    dtype = SCHEMA[name]
    if dtype == MONEY:
        return pl.Int64()
    if dtype == TAGS:
        return TAG_ENTRIES
    return dtype


def rows_frame(rows: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    """A raw frame from a few hand-built rows (fees, taxes, credits)."""
    names = sorted({k for row in rows for k in row})
    schema = {n: raw_dtype(n) for n in names}
    data = {n: [row.get(n) for row in rows] for n in names}
    if "Tags" in data:
        data["Tags"] = [tag_entries(t) if isinstance(t, Mapping) else t for t in data["Tags"]]
    return pl.DataFrame(data, schema=schema)


def invoice_id(billing: BillingAccount, period: Period) -> str | None:
    """Invoices exist only for closed months; the month-to-date has none yet."""
    if not period.closed:
        return None
    n = int(hashlib.sha256(f"{billing.account_id}:{period.label}".encode()).hexdigest()[:12], 16)
    if billing.provider == "aws":
        return str(2_000_000_000 + n % 900_000_000)
    if billing.provider == "gcp":
        return str(5_000_000_000 + n % 900_000_000)
    if billing.provider == "snowflake":
        return f"{billing.invoice_prefix}-{period.label.replace('-', '')}-{n % 100_000:05d}"
    return f"{billing.invoice_prefix}{n % 100_000_000:08d}"


def to_focus(raw: pl.DataFrame, period: Period, invoices: Mapping[str, str | None],
             row_offset: int) -> pl.DataFrame:
    names = raw.columns
    exprs: list[pl.Expr] = []
    for name in names:
        if SCHEMA.get(name) == MONEY and raw.schema[name] == pl.Int64:
            exprs.append(as_decimal(pl.col(name)).alias(name))
        elif name == "Tags" and raw.schema[name] != TAGS:
            exprs.append(pl.col(name).cast(TAGS))
    start = midnight(period.start)
    end = midnight(period.end)
    exprs += [
        pl.lit(start, TIMESTAMP).alias("BillingPeriodStart"),
        pl.lit(end, TIMESTAMP).alias("BillingPeriodEnd"),
        pl.col("BillingAccountId").replace_strict(dict(invoices), default=None,
                                                  return_dtype=pl.String).alias("InvoiceId"),
        pl.lit(SOURCE_FILE).alias("x_SourceFile"),
        pl.int_range(row_offset, row_offset + pl.len(), dtype=pl.Int64).alias("x_SourceRow"),
    ]
    out = raw.with_columns(exprs)
    copies = [
        pl.col(src).alias(dst)
        for src, dst in (("ListUnitPrice", "PricingCurrencyListUnitPrice"),
                         ("ContractedUnitPrice", "PricingCurrencyContractedUnitPrice"),
                         ("EffectiveCost", "PricingCurrencyEffectiveCost"))
        if src in names
    ]
    if copies:
        out = out.with_columns(copies)
    if "PricingCurrency" not in names:
        out = out.with_columns(pl.col("BillingCurrency").alias("PricingCurrency"))
    return ensure_focus_columns(out.lazy()).collect()
