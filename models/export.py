"""Writing normalised datasets out for any FOCUS tool: Parquet keeps types, CSV is flat."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import polars as pl

from finops.errors import BadInputError
from finops.focus import COLUMN_NAMES, TAGS
from finops.ingest import BILLING, PERIOD
from finops.warehouse import Warehouse
from models.allocation.ledger import allocated_rows


class Dataset(StrEnum):
    billing = "billing"
    allocated = "allocated"


class ExportFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def _ordered(lf: pl.LazyFrame) -> pl.LazyFrame:
    names = lf.collect_schema().names()
    focus = [n for n in COLUMN_NAMES if n in names]
    return lf.select(focus + sorted(n for n in names if n not in focus))


def _flat(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Tags as a JSON object (FOCUS's own CSV form); decimals and times as text."""
    schema = lf.collect_schema()
    exprs = []
    for name, dtype in schema.items():
        if dtype == TAGS:
            exprs.append(
                pl.col(name).cast(pl.List(pl.Struct({"key": pl.String, "value": pl.String})))
                .map_batches(_tags_to_json, return_dtype=pl.String).alias(name)
            )
        elif isinstance(dtype, pl.Datetime):
            exprs.append(pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        else:
            exprs.append(pl.col(name))
    return lf.select(exprs)


def _tags_to_json(series: pl.Series) -> pl.Series:
    import json

    return pl.Series(
        series.name,
        [None if v is None else json.dumps({e["key"]: e["value"] for e in v}, ensure_ascii=False)
         for v in series.to_list()],
        dtype=pl.String,
    )


def _rows(wh: Warehouse, dataset: Dataset) -> pl.LazyFrame:
    if dataset == Dataset.billing:
        return wh.scan(BILLING)
    # The allocated ledger with the rest of each billing row: a whole FOCUS row per
    # allocated row, as any FOCUS tool expects.
    billing = wh.scan(BILLING).collect_schema().names()
    return allocated_rows(wh, columns=[c for c in billing if c not in {"source", PERIOD}],
                          ordered=True)


def export(wh: Warehouse, dataset: Dataset, fmt: ExportFormat, out: Path) -> int:
    if not wh.has_data(dataset.value):
        raise BadInputError(f"no {dataset.value} data in {wh.home}",
                            hint="Collect (and for allocated, allocate) before exporting.")
    lf = _ordered(_rows(wh, dataset))
    if out.is_dir() or not out.suffix:
        # A folder (existing, or a name without an extension) gets a file named after the data.
        out = out / f"{dataset.value}.{fmt.value}"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    if fmt == ExportFormat.parquet:
        lf.sink_parquet(tmp, engine="streaming")
    else:
        _flat(lf).sink_csv(tmp, engine="streaming")
    tmp.replace(out)
    return int(pl.scan_parquet(out).select(pl.len()).collect().item()) if fmt == ExportFormat.parquet \
        else int(pl.scan_csv(out, infer_schema=False).select(pl.len()).collect().item())
