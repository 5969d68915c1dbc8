"""Warehouse query histories in the warehouse: dataset names, schemas, reading view exports,
and the incremental, atomic upsert every query collector shares.

Datasets (hive keys ``source`` ∈ {snowflake, bigquery, databricks} and ``month`` = YYYY-MM):

- ``queries``: one row per query or job (month of its end time), :data:`QUERY_SCHEMA`;
- ``warehouse_metering``: Snowflake warehouse-hours, :data:`METERING_SCHEMA`;
- ``query_attribution``: Snowflake QUERY_ATTRIBUTION_HISTORY, :data:`ATTRIBUTION_SCHEMA`;
- ``warehouse_rates``: Snowflake rate sheet (credit price per day), :data:`RATES_SCHEMA`;
- ``reservation_capacity``: BigQuery reservation slot-ms per hour, :data:`CAPACITY_SCHEMA`;
- ``dbx_usage`` and ``dbx_list_prices``: Databricks billing system tables.

Export files keep the views' own column names (any case) and timestamp formats; they
are found in a folder by the view's name in lower case (``query_history.csv``,
``query_history_2026-05.parquet`` or ``query_history/part-1.csv``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from collectors.files import SUFFIXES, columns_of, is_export_file, scan_text
from finops.errors import BadInputError, FinopsError
from finops.focus import MONEY, TIMESTAMP
from finops.progress import info
from finops.state import State
from finops.warehouse import Warehouse

QUERIES: Final = "queries"
METERING: Final = "warehouse_metering"
ATTRIBUTION: Final = "query_attribution"
RATES: Final = "warehouse_rates"
CAPACITY: Final = "reservation_capacity"
DBX_USAGE: Final = "dbx_usage"
DBX_PRICES: Final = "dbx_list_prices"
MONTH: Final = "month"
SOURCES: Final = ("snowflake", "bigquery", "databricks")
CREDITS: Final = pl.Decimal(38, 12)  # metered credits, exact so credits × price is exact
TAGS_TYPE: Final = pl.Map(pl.String, pl.String)
NULL_TEXT: Final = ["", "NULL", "null", "\\N"]

QUERY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "query_id": pl.String(),
    "account": pl.String(),
    "warehouse": pl.String(),
    "warehouse_size": pl.String(),
    "user_name": pl.String(),
    "role_name": pl.String(),
    "database_name": pl.String(),
    "query_type": pl.String(),
    "execution_status": pl.String(),
    "start_time": TIMESTAMP,
    "end_time": TIMESTAMP,
    "execution_ms": pl.Int64(),
    "compilation_ms": pl.Int64(),
    "queued_ms": pl.Int64(),
    "bytes_scanned": pl.Int64(),
    "bytes_billed": pl.Int64(),
    "slot_ms": pl.Int64(),
    "cloud_services_credits": pl.Float64(),
    "query_hash": pl.String(),
    "query_tag": pl.String(),
    "tags": TAGS_TYPE,
    "pricing_model": pl.String(),
    "edition": pl.String(),
}
METERING_SCHEMA: Final[dict[str, pl.DataType]] = {
    "warehouse": pl.String(),
    "warehouse_id": pl.String(),
    "start_time": TIMESTAMP,
    "end_time": TIMESTAMP,
    "credits_compute": CREDITS,
    "credits_cloud_services": CREDITS,
}
ATTRIBUTION_SCHEMA: Final[dict[str, pl.DataType]] = {
    "query_id": pl.String(),
    "warehouse": pl.String(),
    "start_time": TIMESTAMP,
    "end_time": TIMESTAMP,
    "credits_attributed_compute": pl.Float64(),
}
RATES_SCHEMA: Final[dict[str, pl.DataType]] = {
    "date": pl.Date(),
    "usage_type": pl.String(),
    "currency": pl.String(),
    "rate": MONEY,
}
CAPACITY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "warehouse": pl.String(),  # the reservation id
    "hour": TIMESTAMP,
    "slot_ms": pl.Float64(),
    "edition": pl.String(),
}
DBX_USAGE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "record_id": pl.String(),
    "account": pl.String(),
    "workspace_id": pl.String(),
    "sku_name": pl.String(),
    "cloud": pl.String(),
    "usage_start_time": TIMESTAMP,
    "usage_end_time": TIMESTAMP,
    "usage_date": pl.Date(),
    "usage_unit": pl.String(),
    "usage_quantity": MONEY,
    "record_type": pl.String(),
    "warehouse": pl.String(),
    "user_name": pl.String(),
    "tags": TAGS_TYPE,
    "product": pl.String(),
}
DBX_PRICES_SCHEMA: Final[dict[str, pl.DataType]] = {
    "sku_name": pl.String(),
    "cloud": pl.String(),
    "currency": pl.String(),
    "usage_unit": pl.String(),
    "price_start_time": TIMESTAMP,
    "price_end_time": TIMESTAMP,
    "price": MONEY,
}


# ---- reading view exports ---------------------------------------------------------------
def find_view_files(root: Path, view: str) -> list[Path]:
    """Files of ``view`` under ``root``: ``<view>.*``, ``<view>_<part>.*`` or ``<view>/*``."""
    if not root.is_dir():
        raise BadInputError(f"{root}: no such folder",
                            hint="Give --path the folder holding the exported views.")
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not is_export_file(path):
            continue
        stem = path.name.lower()
        for suffix in sorted(SUFFIXES, key=len, reverse=True):
            if stem.endswith(suffix):
                stem = stem[: -len(suffix)]
                break
        in_folder = any(p.name.lower() == view for p in path.relative_to(root).parents)
        if stem == view or stem.startswith((f"{view}_", f"{view}-", f"{view}.")) or in_folder:
            found.append(path)
    return found


@dataclass(frozen=True)
class ViewFile:
    path: Path
    label: str
    columns: dict[str, str]  # upper-case name -> name in the file


def open_view_file(path: Path, root: Path, *, required: Sequence[str], what: str) -> ViewFile:
    names = [n.strip().lstrip("\ufeff") for n in columns_of(path)]
    upper = {n.upper(): n for n in names}
    missing = [c for c in required if c not in upper]
    label = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    if missing:
        raise BadInputError.missing_columns(label, missing, list(upper), what=what)
    return ViewFile(path, label, upper)


def scan_view(view: ViewFile) -> pl.LazyFrame:
    """The file with upper-case column names; CSV values as text, blanks as null."""
    lf = scan_text(view.path, null_values=NULL_TEXT)
    return lf.rename({orig.strip().lstrip("\ufeff"): up for up, orig in view.columns.items()
                      if orig.strip().lstrip("\ufeff") != up})


def col_or_null(view: ViewFile, name: str, dtype: pl.DataType | None = None) -> pl.Expr:
    return pl.col(name) if name in view.columns else pl.lit(None, dtype or pl.String()).alias(name)


def text(expr: pl.Expr) -> pl.Expr:
    stripped = expr.cast(pl.String).str.strip_chars()
    return pl.when(stripped.str.len_bytes() == 0).then(None).otherwise(stripped)


def timestamp(expr: pl.Expr) -> pl.Expr:
    """The views' timestamp text (or a typed timestamp) to UTC.

    Snowflake writes ``2026-05-01 10:15:30.123 -0700`` (or ``+00:00``, ``Z``, ``T``),
    BigQuery ``2026-05-01 10:15:30.123456 UTC``, Databricks ISO 8601. No zone means UTC.
    """
    raw = expr.cast(pl.String).str.strip_chars()
    norm = (raw.str.replace(r"^(\d{4}-\d{2}-\d{2})T", "$1 ")
            .str.replace(r"\s*(Z|UTC|GMT)$", " +0000")
            .str.replace(r"\s*([+-]\d{2}):?(\d{2})$", " ${1}${2}"))
    with_zone = norm.str.to_datetime("%Y-%m-%d %H:%M:%S%.f %z", strict=False, time_unit="us",
                                     time_zone="UTC")
    no_seconds = norm.str.to_datetime("%Y-%m-%d %H:%M %z", strict=False, time_unit="us",
                                      time_zone="UTC")
    naive = norm.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us"
                                 ).dt.replace_time_zone("UTC")
    day = norm.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    epoch = raw.cast(pl.Float64, strict=False)
    from_epoch = pl.when(epoch > 1e14).then(epoch).otherwise(epoch * 1e6).cast(pl.Int64, strict=False
                                                                              ).cast(TIMESTAMP)
    return pl.coalesce(with_zone, no_seconds, naive, day, from_epoch).cast(TIMESTAMP)


def typed_timestamp(view: ViewFile, lf: pl.LazyFrame, name: str) -> pl.Expr:
    dtype = lf.collect_schema().get(name) if name in view.columns else None
    if dtype is None:
        return pl.lit(None, TIMESTAMP)
    if isinstance(dtype, pl.Datetime):
        c = pl.col(name)
        return (c.dt.replace_time_zone("UTC") if dtype.time_zone is None
                else c.dt.convert_time_zone("UTC")).cast(TIMESTAMP)
    return timestamp(pl.col(name))


def integer(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.strip_chars().str.replace_all(",", "", literal=True).cast(
        pl.Float64, strict=False).round(0).cast(pl.Int64, strict=False)


def number(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.strip_chars().str.replace_all(",", "", literal=True).cast(
        pl.Float64, strict=False)


def decimal(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.String).str.strip_chars().str.replace_all(",", "", literal=True).cast(
        CREDITS, strict=False)


def _md5_batch(series: pl.Series) -> pl.Series:
    return pl.Series(series.name, [
        None if v is None else hashlib.md5(v.encode(), usedforsecurity=False).hexdigest()
        for v in series.to_list()
    ], dtype=pl.String)


def parameterised_hash(query_text: pl.Expr) -> pl.Expr:
    """A stable hash of the query text with literals replaced, for queries without one."""
    norm = (query_text.str.to_lowercase()
            .str.replace_all(r"'(?:[^']|'')*'", "?")
            .str.replace_all(r"\b\d+(?:\.\d+)?\b", "?")
            .str.replace_all(r"\s+", " ").str.strip_chars())
    return norm.map_batches(_md5_batch, return_dtype=pl.String)


def conform(lf: pl.LazyFrame, schema: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    names = lf.collect_schema().names()
    return lf.select([
        (pl.col(n).cast(t) if n in names else pl.lit(None, t)).alias(n) for n, t in schema.items()
    ])


# ---- loading ---------------------------------------------------------------------------
@dataclass
class Table:
    """Typed rows for one dataset, with what identifies a row and what dates it."""

    dataset: str
    frame: pl.LazyFrame
    keys: tuple[str, ...]  # the rows' identity; a newer row replaces an older one
    month_of: pl.Expr  # the month partition of each row
    required: tuple[str, ...]  # columns that must be non-null after parsing
    label: str  # what messages call the input
    cursor: tuple[str, pl.Expr] | None = None  # cursor key and the value column
    monthly: bool = True
    partition_extra: dict[str, str] = field(default_factory=dict)


@dataclass
class CollectResult:
    run_id: str
    source: str
    rows: dict[str, int]  # dataset -> rows collected
    rejected: dict[str, int]
    months: dict[str, list[str]]
    cursors: dict[str, str]
    notes: list[str] = field(default_factory=list)

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "dataset": list(self.rows),
                "rows": [self.rows[d] for d in self.rows],
                "rejected": [self.rejected.get(d, 0) for d in self.rows],
                "months": [", ".join(self.months.get(d, [])) for d in self.rows],
            },
            schema={"dataset": pl.String, "rows": pl.Int64, "rejected": pl.Int64, "months": pl.String},
        )


def _stage(wh: Warehouse, run_id: str, table: Table, n: int) -> tuple[Path, int, list[str]]:
    """Parse ``table`` to a staged Parquet file; the rows that fail ``required`` are counted."""
    out = wh.staging_dir(run_id) / f"{table.dataset}-{n:03d}.parquet"
    bad = pl.any_horizontal([pl.col(c).is_null() for c in table.required]) if table.required else \
        pl.lit(False)
    try:
        (table.frame.with_columns(table.month_of.alias(MONTH), bad.alias("_bad"))
         .sink_parquet(out, engine="streaming"))
        summary = pl.scan_parquet(out).select(
            pl.len().alias("rows"), pl.col("_bad").sum().alias("bad"),
        ).collect().row(0, named=True)
        examples = []
        if summary["bad"]:
            first = pl.scan_parquet(out).filter(pl.col("_bad")).head(3).collect()
            for row in first.iter_rows(named=True):
                nulls = [c for c in table.required if row.get(c) is None]
                examples.append(f"row {row.get('x_SourceRow', '?')}: {', '.join(nulls)} missing or "
                                "unreadable")
    except pl.exceptions.PolarsError as exc:
        raise BadInputError(f"{table.label}: cannot be read: {str(exc).splitlines()[0]}",
                            hint="Check that the file is a complete, uncorrupted export.") from None
    return out, int(summary["bad"] or 0), examples


def load_tables(
    wh: Warehouse,
    state: State,
    *,
    source: str,
    tables: Sequence[Table],
    inputs: Sequence[str],
    max_rejected_share: float,
    after_staging: Callable[[dict[str, pl.LazyFrame]], list[str]] | None = None,
) -> CollectResult:
    """Stage every table, check it, then upsert each touched partition; log the run.

    Nothing is written to a dataset before every input has been read and checked, so a
    bad file leaves the warehouse as it was. Rows are merged with what the partition
    already holds: a row with the same keys is replaced (late and corrected rows), the
    others are kept, so collecting overlapping windows or files never double counts.
    """
    run_id = state.start_run("collect", source, list(inputs))
    try:
        staged: dict[str, list[Path]] = {}
        rejected: dict[str, int] = {}
        notes: list[str] = []
        by_dataset: dict[str, Table] = {}
        for n, table in enumerate(tables):
            path, bad, examples = _stage(wh, run_id, table, n)
            total = pl.scan_parquet(path).select(pl.len()).collect().item()
            if bad and (total == 0 or bad / total > max_rejected_share):
                raise BadInputError(
                    f"{table.label}: {bad} of {total} rows cannot be read: {'; '.join(examples)}",
                    hint="Fix the export (required: " + ", ".join(table.required) + "). "
                    "Nothing was loaded.",
                )
            if bad:
                notes.append(f"{table.label}: {bad} unreadable rows skipped ({'; '.join(examples)})")
            staged.setdefault(table.dataset, []).append(path)
            rejected[table.dataset] = rejected.get(table.dataset, 0) + bad
            by_dataset[table.dataset] = table
        frames = {
            ds: pl.concat([pl.scan_parquet(p) for p in paths], how="diagonal_relaxed")
            .filter(~pl.col("_bad")).drop("_bad", "x_SourceRow", strict=False)
            for ds, paths in staged.items()
        }
        if after_staging is not None:
            notes.extend(after_staging(frames))
        rows: dict[str, int] = {}
        months: dict[str, list[str]] = {}
        cursors: dict[str, str] = {}
        for ds, staged_rows in frames.items():
            table = by_dataset[ds]
            # Within the input, the last row for a key wins (files are read in name order).
            lf = staged_rows.unique(subset=list(table.keys), keep="last", maintain_order=True)
            rows[ds] = int(lf.select(pl.len()).collect().item())
            todo = sorted(lf.select(pl.col(MONTH).drop_nulls().unique()).collect().to_series().to_list())
            months[ds] = todo if table.monthly else []
            for month in todo if table.monthly else [None]:
                keys = {"source": source, **table.partition_extra}
                if month is not None:
                    keys[MONTH] = month
                new = lf.filter(pl.col(MONTH) == month) if month is not None else lf
                new = new.drop(MONTH)
                old = wh.scan(ds, where=keys)
                if wh.has_data(ds) and old.collect_schema().names():
                    old = old.drop([k for k in keys if k in old.collect_schema().names()])
                    merged = pl.concat([old.join(new.select(table.keys), on=list(table.keys),
                                                 how="anti", nulls_equal=True), new],
                                       how="diagonal_relaxed")
                else:
                    merged = new
                wh.replace_partition(ds, keys, merged, run_id=run_id)
            if table.cursor is not None and rows[ds]:
                name, expr = table.cursor
                value = lf.select(expr.max()).collect().item()
                if value is not None:
                    text_value = value.isoformat() if isinstance(value, datetime) else str(value)
                    previous = state.get_cursor(source, name)
                    if previous is None or previous < text_value:
                        state.set_cursor(source, name, text_value)
                    cursors[name] = state.get_cursor(source, name) or text_value
        total_rows = sum(rows.values())
        state.finish_run(run_id, status="succeeded", rows_in=total_rows + sum(rejected.values()),
                         rows_out=total_rows, rows_rejected=sum(rejected.values()),
                         message="; ".join(notes)[:2000] or None)
        for note in notes:
            info(f"note: {note}")
        return CollectResult(run_id, source, rows, rejected, months, cursors, notes)
    except FinopsError as exc:
        state.finish_run(run_id, status="failed", message=str(exc)[:2000])
        raise
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        wh.drop_staging(run_id)


def window_start(state: State, source: str, cursor: str, *, overlap: timedelta,
                 default_days: int = 30, now: datetime | None = None) -> datetime:
    """Where an incremental read starts: the cursor minus the overlap for late rows."""
    from datetime import UTC

    value = state.get_cursor(source, cursor)
    if value is None:
        return (now or datetime.now(UTC)) - timedelta(days=default_days)
    start = datetime.fromisoformat(value)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start - overlap


def month_expr(column: str) -> pl.Expr:
    return pl.col(column).dt.strftime("%Y-%m")
