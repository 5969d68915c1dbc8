"""Writing normalised datasets out for any FOCUS tool: Parquet keeps types, CSV is flat."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from finops.errors import BadInputError
from finops.focus import COLUMN_NAMES, TAGS
from finops.ingest import BILLING, PERIOD
from finops.warehouse import Warehouse
from models.allocation.ledger import ALLOCATED, allocated_parts


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


# Billing rows of one source joined back per allocated part: a join holds its side of
# wide FOCUS rows (tags and all) in memory, about 2 KB a row.
EXPORT_CHUNK_ROWS = 50_000


def _allocated_parts(wh: Warehouse) -> tuple[pl.Schema, Iterator[pl.LazyFrame]]:
    """The allocated ledger with the rest of each billing row, a whole FOCUS row per
    allocated row as any FOCUS tool expects: its schema (the ledger's, then billing's for
    the columns the ledger lacks), and its rows as queries to run one by one."""
    billing = wh.scan(BILLING).collect_schema()
    ledger = wh.scan(ALLOCATED).collect_schema()
    columns = [c for c in billing if c not in {"source", PERIOD}]
    joined = {**ledger, **{c: billing[c] for c in columns if c not in ledger}}
    schema = _ordered(pl.LazyFrame(schema=joined)).collect_schema()
    return schema, allocated_parts(wh, columns=columns, ordered=True, chunk_rows=EXPORT_CHUNK_ROWS)


def _write_parts(schema: pl.Schema, parts: Iterator[pl.LazyFrame], fmt: ExportFormat,
                 path: Path) -> None:
    writer: pq.ParquetWriter | None = None
    with path.open("wb") as fh:
        for i, part in enumerate(parts):
            frame = part.collect(engine="streaming")
            # Each part in the common schema: sources differ in their x_ columns.
            frame = frame.select(pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                                 for c, t in schema.items())
            if fmt == ExportFormat.csv:
                _flat(frame.lazy()).collect().write_csv(fh, include_header=i == 0)
                continue
            table = frame.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(fh, table.schema, compression="zstd")
            writer.write_table(table)
        if writer is not None:
            writer.close()


def export(wh: Warehouse, dataset: Dataset, fmt: ExportFormat, out: Path) -> int:
    if not wh.has_data(dataset.value):
        raise BadInputError(f"no {dataset.value} data in {wh.home}",
                            hint="Collect (and for allocated, allocate) before exporting.")
    allocated = _allocated_parts(wh) if dataset == Dataset.allocated else None
    if out.is_dir() or not out.suffix:
        # A folder (existing, or a name without an extension) gets a file named after the data.
        out = out / f"{dataset.value}.{fmt.value}"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if allocated is not None:
            _write_parts(*allocated, fmt, tmp)
        elif fmt == ExportFormat.parquet:
            _ordered(wh.scan(BILLING)).sink_parquet(tmp, engine="streaming")
        else:
            _flat(_ordered(wh.scan(BILLING))).sink_csv(tmp, engine="streaming")
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return int(pl.scan_parquet(out).select(pl.len()).collect().item()) if fmt == ExportFormat.parquet \
        else int(pl.scan_csv(out, infer_schema=False).select(pl.len()).collect().item())
