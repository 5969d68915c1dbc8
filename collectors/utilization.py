"""Utilisation and inventory in the warehouse: schemas, file import, and the shared writes.

``utilization`` (partition ``source=<id>/month=YYYY-MM``): one row per sample,
:data:`UTIL_SCHEMA`. ``cpu_percent`` and ``memory_percent`` are 0–100 of the whole
resource; ``network_bytes`` and ``disk_bytes`` are bytes moved (in + out, read + write)
during the interval that the sample closes (a count, not a rate), so sums over a window
are the bytes moved in that window whatever the sampling interval.

``inventory`` (partition ``source=<id>``): the latest snapshot of resources from that
source, :data:`INVENTORY_SCHEMA`. Collecting a source again replaces its snapshot.

Files (``finops collect utilization --path F`` / ``inventory --path F``) are CSV, CSV.gz
or Parquet:

- utilisation: ``timestamp,resource_id,metric,value``; a timestamp is ISO 8601 (no zone
  means UTC) or Unix epoch seconds or milliseconds, as Prometheus and Datadog export them;
- inventory: ``resource_id,provider,region,resource_type,instance_type,hourly_cost`` and
  optionally ``state, attached, launch_time, size_gb, account_id, name, currency``.

A file with a missing column, an unknown metric, or a value that cannot be read is
refused whole (exit code 2, the first bad rows named); the warehouse is left as it was.
Re-importing replaces, for the resources in the file, the samples inside the file's time
range; other resources and other times are kept.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from collectors.files import columns_of, find_files, scan_text
from finops import parse
from finops.errors import BadInputError, FinopsError, near_names
from finops.focus import TIMESTAMP
from finops.state import State
from finops.warehouse import Warehouse

UTILIZATION: Final = "utilization"
INVENTORY: Final = "inventory"
METRICS: Final = ("cpu_percent", "memory_percent", "network_bytes", "disk_bytes")
UTIL_COLUMNS: Final = ("timestamp", "resource_id", "metric", "value")
UTIL_SCHEMA: Final[dict[str, pl.DataType]] = {
    "timestamp": TIMESTAMP,
    "resource_id": pl.String(),
    "metric": pl.String(),
    "value": pl.Float64(),
}
INVENTORY_REQUIRED: Final = ("resource_id", "provider", "region", "resource_type", "instance_type",
                             "hourly_cost")
INVENTORY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "resource_id": pl.String(),
    "provider": pl.String(),  # aws | gcp | azure
    "region": pl.String(),
    # ec2_instance | rds_instance | gce_instance | azure_vm | ebs_volume | ebs_snapshot |
    # load_balancer | elastic_ip | pd_disk | managed_disk
    "resource_type": pl.String(),
    "instance_type": pl.String(),  # instance type, volume type, LB type
    "hourly_cost": pl.Float64(),  # price paid per hour where known (else list price)
    "currency": pl.String(),
    "state": pl.String(),  # running | stopped | available | in-use | ...
    "attached": pl.Boolean(),  # volumes: attached to an instance; IPs: associated; LBs: has targets
    "launch_time": TIMESTAMP,  # instances: launch; snapshots: start; volumes: create
    "size_gb": pl.Float64(),
    "account_id": pl.String(),
    "name": pl.String(),
    "collected_at": TIMESTAMP,
}
MONTH: Final = "month"
MAX_SHOWN = 5


@dataclass
class StoreResult:
    run_id: str
    dataset: str
    source: str
    rows: int
    resources: int
    partitions: list[str]
    notes: list[str]

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame({
            "dataset": [self.dataset], "source": [self.source], "rows": [self.rows],
            "resources": [self.resources], "partitions": [", ".join(self.partitions)],
            "run_id": [self.run_id], "notes": ["; ".join(self.notes)],
        })


# ---- parsing ---------------------------------------------------------------------------
def timestamp_expr(text: pl.Expr) -> pl.Expr:
    """ISO 8601 (no zone: UTC) or Unix epoch seconds / milliseconds, to a UTC timestamp."""
    stripped = text.str.strip_chars()
    is_epoch = stripped.str.contains(r"^\d{9,13}(\.\d+)?$")
    number = stripped.cast(pl.Float64, strict=False)
    micros = pl.when(number >= 1e12).then(number * 1_000).otherwise(number * 1_000_000)
    epoch = micros.round(0).cast(pl.Int64, strict=False).cast(pl.Datetime("us", "UTC"))
    return pl.when(is_epoch).then(epoch).otherwise(parse.timestamp(stripped)).cast(TIMESTAMP)


def _bad_rows(df: pl.DataFrame, label: str, what: str) -> BadInputError:
    bad = df.filter(pl.col("_reason").is_not_null())
    shown = "; ".join(f"row {r['x_SourceRow']}: {r['_reason']}"
                      for r in bad.head(MAX_SHOWN).iter_rows(named=True))
    more = f" (and {bad.height - MAX_SHOWN} more)" if bad.height > MAX_SHOWN else ""
    return BadInputError(f"{label}: {bad.height} of {df.height} rows cannot be read: {shown}{more}",
                         hint=f"Fix these rows of the {what}; nothing was imported.")


def _check_columns(path: Path, required: Sequence[str], what: str) -> None:
    present = [c.strip().lstrip("\ufeff") for c in columns_of(path)]
    missing = [c for c in required if c not in present]
    if missing:
        raise BadInputError.missing_columns(str(path), missing, present, what=what)


def read_utilization_file(path: Path) -> pl.DataFrame:
    """A utilisation file as :data:`UTIL_SCHEMA` rows, or a BadInputError naming the problem."""
    what = "utilisation file (timestamp,resource_id,metric,value)"
    _check_columns(path, UTIL_COLUMNS, what)
    try:
        raw = scan_text(path, null_values=[""]).select("x_SourceRow", *UTIL_COLUMNS).collect()
    except pl.exceptions.PolarsError as exc:
        raise BadInputError(f"{path}: cannot be read: {str(exc).splitlines()[0]}",
                            hint="Check that the file is a complete CSV or Parquet file.") from None
    typed = raw.with_columns(
        timestamp_expr(pl.col("timestamp")).alias("_ts"),
        pl.col("resource_id").str.strip_chars().alias("_rid"),
        pl.col("metric").str.strip_chars().str.to_lowercase().alias("_metric"),
        parse.quantity(pl.col("value")).alias("_value"),
    )
    metric_ok = pl.col("_metric").is_in(list(METRICS))
    reasons = [
        parse_reason(pl.col("_ts").is_null(),
                     pl.format("timestamp '{}' is not ISO 8601 or epoch seconds/ms",
                               pl.col("timestamp").fill_null(""))),
        parse_reason(pl.col("_rid").is_null() | (pl.col("_rid") == ""), pl.lit("resource_id is empty")),
        parse_reason(~metric_ok.fill_null(False),
                     pl.format("metric '{}' is not one of " + ", ".join(METRICS),
                               pl.col("metric").fill_null(""))),
        parse_reason(pl.col("_value").is_null() | pl.col("_value").is_nan(),
                     pl.format("value '{}' is not a number", pl.col("value").fill_null(""))),
        parse_reason(pl.col("_value") < 0, pl.format("value {} is negative", pl.col("_value"))),
        parse_reason(pl.col("_metric").is_in(["cpu_percent", "memory_percent"]) & (pl.col("_value") > 100),
                     pl.format("{} {} is above 100", pl.col("_metric"), pl.col("_value"))),
    ]
    typed = typed.with_columns(
        pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("_reason")
    ).with_columns(pl.when(pl.col("_reason") != "").then(pl.col("_reason")).alias("_reason"))
    if typed["_reason"].is_not_null().any():
        err = _bad_rows(typed, str(path), what)
        unknown = typed.filter(~metric_ok.fill_null(False))["metric"].drop_nulls().unique().to_list()
        if unknown:
            err.message += "." + near_names(str(unknown[0]), METRICS)
        raise err
    return typed.select(
        pl.col("_ts").alias("timestamp"), pl.col("_rid").alias("resource_id"),
        pl.col("_metric").alias("metric"), pl.col("_value").alias("value"),
    )


def parse_reason(condition: pl.Expr, message: pl.Expr) -> pl.Expr:
    return pl.when(condition).then(message).otherwise(None)


def _bool_expr(text: pl.Expr) -> pl.Expr:
    t = text.str.strip_chars().str.to_lowercase()
    return (pl.when(t.is_in(["true", "1", "yes", "y", "t"])).then(True)
            .when(t.is_in(["false", "0", "no", "n", "f"])).then(False).otherwise(None))


def read_inventory_file(path: Path) -> pl.DataFrame:
    what = "inventory file (resource_id,provider,region,resource_type,instance_type,hourly_cost)"
    _check_columns(path, INVENTORY_REQUIRED, what)
    try:
        raw = scan_text(path, null_values=[""]).collect()
    except pl.exceptions.PolarsError as exc:
        raise BadInputError(f"{path}: cannot be read: {str(exc).splitlines()[0]}",
                            hint="Check that the file is a complete CSV or Parquet file.") from None
    def text(name: str) -> pl.Expr:
        return (pl.col(name).cast(pl.String).str.strip_chars() if name in raw.columns
                else pl.lit(None, pl.String))
    typed = raw.select(
        "x_SourceRow",
        text("resource_id").alias("resource_id"),
        text("provider").str.to_lowercase().alias("provider"),
        text("region").alias("region"),
        text("resource_type").str.to_lowercase().alias("resource_type"),
        text("instance_type").alias("instance_type"),
        parse.quantity(text("hourly_cost")).alias("hourly_cost"),
        text("hourly_cost").alias("_raw_cost"),
        text("currency").str.to_uppercase().alias("currency"),
        text("state").str.to_lowercase().alias("state"),
        _bool_expr(text("attached")).alias("attached"),
        text("attached").alias("_raw_attached"),
        timestamp_expr(text("launch_time")).alias("launch_time"),
        text("launch_time").alias("_raw_launch"),
        parse.quantity(text("size_gb")).alias("size_gb"),
        text("account_id").alias("account_id"),
        text("name").alias("name"),
    )
    reasons = [
        parse_reason(pl.col("resource_id").is_null(), pl.lit("resource_id is empty")),
        parse_reason(pl.col("resource_type").is_null(), pl.lit("resource_type is empty")),
        parse_reason(pl.col("hourly_cost").is_null() & pl.col("_raw_cost").is_not_null(),
                     pl.format("hourly_cost '{}' is not a number", pl.col("_raw_cost"))),
        parse_reason(pl.col("hourly_cost") < 0, pl.lit("hourly_cost is negative")),
        parse_reason(pl.col("attached").is_null() & pl.col("_raw_attached").is_not_null(),
                     pl.format("attached '{}' is not true or false", pl.col("_raw_attached"))),
        parse_reason(pl.col("launch_time").is_null() & pl.col("_raw_launch").is_not_null(),
                     pl.format("launch_time '{}' is not a timestamp", pl.col("_raw_launch"))),
    ]
    typed = typed.with_columns(
        pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("_reason")
    ).with_columns(pl.when(pl.col("_reason") != "").then(pl.col("_reason")).alias("_reason"))
    if typed["_reason"].is_not_null().any():
        raise _bad_rows(typed, str(path), what)
    dupes = typed.filter(pl.col("resource_id").is_duplicated())["resource_id"].unique().sort()
    if dupes.len():
        raise BadInputError(f"{path}: resource_id appears more than once: "
                            f"{', '.join(dupes.head(MAX_SHOWN).to_list())}",
                            hint="Keep one row per resource; nothing was imported.")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return conform_inventory(typed.with_columns(pl.lit(now).alias("collected_at")))


def conform_inventory(df: pl.DataFrame) -> pl.DataFrame:
    return df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, t).alias(c)
                      for c, t in INVENTORY_SCHEMA.items()])


# ---- writing ---------------------------------------------------------------------------
def check_source(source: str) -> str:
    if not re.match(r"^[A-Za-z0-9_.\-]+$", source) or source in {".", ".."}:
        raise BadInputError(f"--source {source!r} may hold only letters, digits, '.', '_' and '-'",
                            hint="It names a folder of the warehouse, e.g. --source cloudwatch-prod.")
    return source


def _fail(state: State, run_id: str, exc: BaseException) -> None:
    msg = str(exc) if isinstance(exc, FinopsError) else f"{type(exc).__name__}: {exc}"
    state.finish_run(run_id, status="failed", message=msg[:2000])


def store_utilization(wh: Warehouse, state: State, frame: pl.DataFrame, *, source: str,
                      inputs: Sequence[str], window: tuple[dt.datetime, dt.datetime] | None = None,
                      resources: Sequence[str] | None = None, notes: Sequence[str] = (),
                      run_id: str | None = None, collector: str = "utilization") -> StoreResult:
    """Merge samples into ``utilization``, one partition per month touched.

    In each month, rows of ``resources`` (default: those in ``frame``) inside ``window``
    (default: the frame's first to last timestamp, inclusive) are replaced by ``frame``'s;
    every other row is kept. Each partition is replaced atomically; a failure before the
    first replacement leaves the warehouse as it was.
    """
    check_source(source)
    frame = frame.select([pl.col(c).cast(t) for c, t in UTIL_SCHEMA.items()])
    frame = frame.unique(["timestamp", "resource_id", "metric"], keep="last").sort(
        "resource_id", "metric", "timestamp")
    if run_id is None:
        run_id = state.start_run("collect", collector, list(inputs))
    try:
        if window is None:
            if frame.is_empty():
                raise BadInputError(f"{', '.join(inputs) or source}: no utilisation samples",
                                    hint="Nothing to import.")
            lo, hi = frame["timestamp"].min(), frame["timestamp"].max()
            assert isinstance(lo, dt.datetime)
            assert isinstance(hi, dt.datetime)
            window = (lo, hi + dt.timedelta(microseconds=1))
        start, end = window
        ids = sorted(set(resources if resources is not None else frame["resource_id"].unique().to_list()))
        months = _months(start, end)
        existing = {keys[MONTH] for keys in wh.partitions(UTILIZATION) if keys.get("source") == source}
        in_window = (pl.col("timestamp") >= start) & (pl.col("timestamp") < end)
        written = []
        for month in months:
            new = frame.filter(pl.col("timestamp").dt.strftime("%Y-%m") == month)
            if month in existing:
                old = (wh.scan(UTILIZATION, where={"source": source, MONTH: month})
                       .select(list(UTIL_SCHEMA)).collect())
                old = old.filter(~(in_window & pl.col("resource_id").is_in(ids)))
                new = pl.concat([old, new]).sort("resource_id", "metric", "timestamp")
            elif new.is_empty():
                continue
            wh.replace_partition(UTILIZATION, {"source": source, MONTH: month}, new, run_id=run_id)
            written.append(month)
        state.finish_run(run_id, status="succeeded", rows_in=frame.height, rows_out=frame.height,
                         rows_rejected=0, message="; ".join(notes) or None)
        return StoreResult(run_id, UTILIZATION, source, frame.height,
                           frame["resource_id"].n_unique(), written, list(notes))
    except BaseException as exc:
        _fail(state, run_id, exc)
        raise
    finally:
        wh.drop_staging(run_id)


def _months(start: dt.datetime, end: dt.datetime) -> list[str]:
    out = []
    y, m = start.year, start.month
    last = (end - dt.timedelta(microseconds=1))
    while (y, m) <= (last.year, last.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def store_inventory(wh: Warehouse, state: State, frame: pl.DataFrame, *, source: str,
                    inputs: Sequence[str], notes: Sequence[str] = (),
                    collector: str = "inventory") -> StoreResult:
    """Replace the inventory snapshot of ``source`` with ``frame``."""
    check_source(source)
    frame = conform_inventory(frame)
    run_id = state.start_run("collect", collector, list(inputs))
    try:
        wh.replace_partition(INVENTORY, {"source": source}, frame, run_id=run_id)
        state.finish_run(run_id, status="succeeded", rows_in=frame.height, rows_out=frame.height,
                         rows_rejected=0, message="; ".join(notes) or None)
        return StoreResult(run_id, INVENTORY, source, frame.height, frame["resource_id"].n_unique(),
                           [source], list(notes))
    except BaseException as exc:
        _fail(state, run_id, exc)
        raise
    finally:
        wh.drop_staging(run_id)


def _source_name(source: str | None, default: str) -> str:
    return check_source(source or default)


def collect_utilization_path(wh: Warehouse, state: State, path: Path, *,
                             source: str | None = None) -> StoreResult:
    files = find_files(path, what="utilisation file (timestamp,resource_id,metric,value)")
    frames = [read_utilization_file(f) for f in files]  # every file is checked before writing
    frame = pl.concat(frames) if len(frames) > 1 else frames[0]
    return store_utilization(wh, state, frame, source=_source_name(source, "import"),
                             inputs=[f.name for f in files])


def collect_inventory_path(wh: Warehouse, state: State, path: Path, *,
                           source: str | None = None) -> StoreResult:
    files = find_files(path, what="inventory file")
    frames = [read_inventory_file(f) for f in files]
    frame = pl.concat(frames) if len(frames) > 1 else frames[0]
    dupes = frame.filter(pl.col("resource_id").is_duplicated())["resource_id"].unique()
    if dupes.len():
        raise BadInputError(f"{path}: resource_id appears in more than one file: {dupes[0]}",
                            hint="Keep one row per resource; nothing was imported.")
    return store_inventory(wh, state, frame, source=_source_name(source, "import"),
                           inputs=[f.name for f in files])


def load_inventory(wh: Warehouse) -> pl.DataFrame:
    """Every source's snapshot; a resource in several keeps its most recently collected row."""
    if not wh.has_data(INVENTORY):
        return pl.DataFrame(schema={**INVENTORY_SCHEMA, "source": pl.String()})
    df = wh.scan(INVENTORY).collect()
    df = df.select([pl.col(c).cast(t) if c in df.columns else pl.lit(None, t).alias(c)
                    for c, t in {**INVENTORY_SCHEMA, "source": pl.String()}.items()])
    return (df.sort("collected_at", nulls_last=False)
            .unique("resource_id", keep="last", maintain_order=True).sort("resource_id"))


def scan_utilization(wh: Warehouse, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Samples in [start, end) from every source (duplicates across sources kept once)."""
    if not wh.has_data(UTILIZATION):
        return pl.DataFrame(schema=UTIL_SCHEMA)
    months = _months(start, end)
    lf = wh.scan(UTILIZATION, where={MONTH: months})
    return (lf.filter((pl.col("timestamp") >= start) & (pl.col("timestamp") < end))
            .select(list(UTIL_SCHEMA)).unique(["timestamp", "resource_id", "metric"])
            .collect())
