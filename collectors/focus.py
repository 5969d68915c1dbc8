"""``finops collect focus``: FOCUS 1.0, 1.1 and 1.2 files (CSV, CSV.gz, Parquet) to 1.2.

Upgrading to 1.2: columns renamed since earlier versions take their 1.2 names, columns
added since are null, value spellings are made canonical (``Usage-based`` is
``Usage-Based``), and columns that are neither FOCUS nor ``x_`` are kept as ``x_<name>``.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from collectors.files import columns_of, find_files, scan_text
from finops import parse
from finops.errors import BadInputError
from finops.focus import (
    BY_NAME,
    MONEY,
    QUANTITY,
    RENAMED_COLUMNS,
    REQUIRED,
    TAGS,
    TIMESTAMP,
    VALUE_ALIASES,
)
from finops.ingest import (
    PERIOD,
    IngestResult,
    InputFile,
    ensure_focus_columns,
    focus_row_reasons,
    ingest_billing,
    period_of,
    reject_reason,
)
from finops.lookup import mapped
from finops.state import State
from finops.warehouse import Warehouse

NULL_TEXT = ["NULL"]
WHAT = "FOCUS 1.0–1.2 export"


def source_id_for(path: Path) -> str:
    """The default source id: the file's or folder's name, made safe for a path."""
    stem = path.name
    for suffix in (".gz", ".csv", ".parquet"):
        stem = stem.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", stem).strip("-.") or "focus"


def check_header(path: Path) -> list[str]:
    names = [n.strip().lstrip("\ufeff") for n in columns_of(path)]
    renamed = [RENAMED_COLUMNS.get(n, n) for n in names]
    missing = [c for c in REQUIRED if c not in renamed]
    if missing:
        raise BadInputError.missing_columns(str(path), missing, names, what=WHAT)
    return names


def _text(c: str, dtype: pl.DataType) -> pl.Expr:
    return parse.blank_to_null(pl.col(c)) if dtype == pl.String else pl.col(c)


def _typed(name: str, dtype: pl.DataType) -> pl.Expr:
    target = BY_NAME[name].dtype
    raw = _text(name, dtype)
    if target == MONEY:
        return parse.money(raw) if dtype == pl.String else raw.cast(MONEY, strict=False)
    if target == TIMESTAMP:
        return parse.timestamp(raw)
    if target == QUANTITY:
        return parse.quantity(raw) if dtype == pl.String else raw.cast(QUANTITY, strict=False)
    if target == TAGS:
        if dtype == pl.String:
            return parse.tags_json(raw)
        if isinstance(dtype, pl.Struct):
            return parse.tags_json(raw.struct.json_encode())
        return raw.cast(TAGS, strict=False)
    if name in VALUE_ALIASES:
        return mapped(raw.str.to_lowercase(), VALUE_ALIASES[name], default=raw)
    return raw


def build_frame(item: InputFile) -> pl.LazyFrame:
    raw = scan_text(item.path, null_values=NULL_TEXT)
    schema = raw.collect_schema()
    renames = {}
    for name in schema.names():
        if name == "x_SourceRow":
            continue
        new = RENAMED_COLUMNS.get(name, name)
        if new not in BY_NAME and not new.startswith("x_"):
            new = f"x_{name}"
        if new != name:
            renames[name] = new
    raw = raw.rename(renames)
    schema = raw.collect_schema()
    typed = [
        _typed(n, schema[n]).alias(n) for n in schema.names() if n in BY_NAME
    ]
    extras = [
        _text(n, schema[n]).alias(n) for n in schema.names() if n not in BY_NAME and n != "x_SourceRow"
    ]
    raw_cost = {
        n: _text(n, schema[n]) for n in ("BilledCost", "EffectiveCost") if schema.get(n) == pl.String
    }
    lf = raw.with_columns(
        *typed, *extras, pl.lit(item.label).alias("x_SourceFile"),
        *[v.alias(f"__raw_{k}") for k, v in raw_cost.items()],
    )
    lf = ensure_focus_columns(lf)
    reasons = focus_row_reasons({k: pl.col(f"__raw_{k}") for k in raw_cost})
    return (
        lf.with_columns(reject_reason(reasons), period_of().alias(PERIOD))
        .drop([f"__raw_{k}" for k in raw_cost])
    )


def source_totals(item: InputFile) -> pl.LazyFrame:
    """Cost summed straight from the file's own columns, by period and currency."""
    raw = scan_text(item.path, null_values=NULL_TEXT)
    names = raw.collect_schema().names()
    col = {RENAMED_COLUMNS.get(n, n): n for n in names}
    return (
        raw.select(
            parse.timestamp(pl.col(col["BillingPeriodStart"])).dt.strftime("%Y-%m").alias(PERIOD),
            parse.blank_to_null(pl.col(col["BillingCurrency"])).alias("BillingCurrency"),
            parse.money(pl.col(col["BilledCost"])).alias("BilledCost"),
            parse.money(pl.col(col["EffectiveCost"])).alias("EffectiveCost"),
        )
        .group_by(PERIOD, "BillingCurrency")
        .agg(pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum())
    )


def collect_focus(
    wh: Warehouse, state: State, path: Path, *, source: str | None, max_rejected_share: float
) -> IngestResult:
    files = find_files(path, what=WHAT)
    notes = []
    for f in files:
        names = check_header(f)
        extra = [n for n in names if RENAMED_COLUMNS.get(n, n) not in BY_NAME and not n.startswith("x_")]
        if extra:
            notes.append(f"{f.name}: kept non-FOCUS column(s) {', '.join(extra)} as "
                         f"{', '.join('x_' + n for n in extra)}")
        legacy = [n for n in names if n in RENAMED_COLUMNS]
        if legacy:
            notes.append(f"{f.name}: renamed pre-1.2 column(s) "
                         + ", ".join(f"{n}→{RENAMED_COLUMNS[n]}" for n in legacy))
    base = path if path.is_dir() else path.parent
    inputs = [InputFile(f, str(f.relative_to(base))) for f in files]
    return ingest_billing(
        wh, state, source=source or source_id_for(path), inputs=inputs, build=build_frame,
        source_totals=source_totals, max_rejected_share=max_rejected_share, notes=notes,
    )
