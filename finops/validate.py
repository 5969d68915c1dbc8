"""The FOCUS 1.2 validator: every violation with its column, rule and row count.

One lazy pass computes every count, so validating a warehouse partition reads it once.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from finops.focus import COLUMNS, FOCUS_VERSION


@dataclass(frozen=True)
class Violation:
    column: str
    rule: str
    rows: int
    detail: str

    @property
    def rule_id(self) -> str:
        return f"FOCUS-{FOCUS_VERSION}/{self.column}/{self.rule}"


def _checks(names: set[str], schema: pl.Schema) -> list[tuple[str, str, str, pl.Expr]]:
    checks: list[tuple[str, str, str, pl.Expr]] = []
    for col in COLUMNS:
        if col.name not in names or schema[col.name] != col.dtype:
            continue
        c = pl.col(col.name)
        if col.not_null:
            checks.append((col.name, "not_null", "must not be null", c.is_null().sum()))
        if col.allowed:
            checks.append(
                (col.name, "allowed_values", f"must be one of {', '.join(col.allowed)}",
                 (c.is_not_null() & ~c.is_in(list(col.allowed))).sum())
            )
    if {"ChargePeriodStart", "ChargePeriodEnd"} <= names:
        checks.append(
            ("ChargePeriodEnd", "after_start", "must be after ChargePeriodStart",
             (pl.col("ChargePeriodEnd") < pl.col("ChargePeriodStart")).sum())
        )
    if {"BillingPeriodStart", "BillingPeriodEnd"} <= names:
        checks.append(
            ("BillingPeriodEnd", "after_start", "must be after BillingPeriodStart",
             (pl.col("BillingPeriodEnd") <= pl.col("BillingPeriodStart")).sum())
        )
    if {"ChargeClass", "ChargeCategory"} <= names:
        checks.append(
            ("ChargeClass", "correction_only", "is Correction or null",
             (pl.col("ChargeClass").is_not_null() & (pl.col("ChargeClass") != "Correction")).sum())
        )
    if {"CommitmentDiscountStatus", "CommitmentDiscountId"} <= names:
        checks.append(
            ("CommitmentDiscountStatus", "needs_commitment",
             "is null unless CommitmentDiscountId is set",
             (pl.col("CommitmentDiscountStatus").is_not_null()
              & pl.col("CommitmentDiscountId").is_null()).sum())
        )
    return checks


def validate(data: pl.LazyFrame | pl.DataFrame) -> list[Violation]:
    lf = data.lazy()
    schema = lf.collect_schema()
    names = set(schema.names())
    out: list[Violation] = []
    for col in COLUMNS:
        if col.name not in names:
            out.append(Violation(col.name, "present", -1, "column is missing"))
        elif schema[col.name] != col.dtype:
            out.append(
                Violation(col.name, "type", -1, f"is {schema[col.name]}, FOCUS wants {col.dtype}")
            )
    for name in names:
        if name not in {c.name for c in COLUMNS} and not name.startswith("x_") and name not in {
            "source", "billing_period"
        }:
            out.append(Violation(name, "custom_prefix", -1, "custom columns must start with x_"))
    checks = _checks(names, schema)
    if checks:
        counts = lf.select(
            expr.alias(f"{i}") for i, (_, _, _, expr) in enumerate(checks)
        ).collect(engine="streaming").row(0)
        for (column, rule, detail, _), count in zip(checks, counts, strict=True):
            if count:
                out.append(Violation(column, rule, int(count), detail))
    return out


def violations_frame(violations: list[Violation]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "rule_id": [v.rule_id for v in violations],
            "column": [v.column for v in violations],
            "rule": [v.rule for v in violations],
            "rows": [v.rows for v in violations],
            "detail": [v.detail for v in violations],
        },
        schema={"rule_id": pl.String, "column": pl.String, "rule": pl.String, "rows": pl.Int64,
                "detail": pl.String},
    )
