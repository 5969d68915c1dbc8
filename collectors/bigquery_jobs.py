"""BigQuery jobs (region INFORMATION_SCHEMA.JOBS), from export files or live.

Files (``--path DIR``), named after the views in lower case, with the views' column
names (any case) and timestamp formats:

- ``jobs`` (required): PROJECT_ID, JOB_ID, CREATION_TIME, END_TIME, TOTAL_BYTES_BILLED,
  TOTAL_SLOT_MS; and when present START_TIME, USER_EMAIL, JOB_TYPE, STATEMENT_TYPE, STATE,
  ERROR_RESULT, RESERVATION_ID, TOTAL_BYTES_PROCESSED, LABELS (a list of {key, value}, as
  JSON in CSV), QUERY_INFO (query_hashes.normalized_literals), QUERY, EDITION, CACHE_HIT;
- ``reservations_timeline`` (optional, RESERVATIONS_TIMELINE): PERIOD_START,
  RESERVATION_ID, SLOTS_ASSIGNED and AUTOSCALE (current_slots), EDITION: the slot
  capacity each reservation paid for, minute by minute.

Jobs without a reservation (or in ``default-pipeline``) are on-demand. A script's parent
job (STATEMENT_TYPE = SCRIPT) repeats its children's bytes and slot-ms, so it is skipped.
Live, the views are read with ``google-cloud-bigquery`` from the cursor (the latest
CREATION_TIME) minus an overlap, then loaded through the file path.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl
from pydantic_settings import BaseSettings, SettingsConfigDict

from finops.errors import BadInputError, ConfigError
from finops.state import State
from finops.warehouse import Warehouse
from models.query_rules import parse_labels
from models.query_store import (
    CAPACITY,
    CAPACITY_SCHEMA,
    QUERIES,
    QUERY_SCHEMA,
    CollectResult,
    Table,
    ViewFile,
    col_or_null,
    conform,
    find_view_files,
    integer,
    load_tables,
    month_expr,
    number,
    open_view_file,
    parameterised_hash,
    scan_view,
    text,
    typed_timestamp,
    window_start,
)

SOURCE: Final = "bigquery"
JOBS: Final = "jobs"
TIMELINE: Final = "reservations_timeline"
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    JOBS: ("PROJECT_ID", "JOB_ID", "CREATION_TIME", "END_TIME", "TOTAL_BYTES_BILLED", "TOTAL_SLOT_MS"),
    TIMELINE: ("PERIOD_START", "RESERVATION_ID", "SLOTS_ASSIGNED"),
}
WHAT: Final = "BigQuery INFORMATION_SCHEMA.{view} export"
DEFAULT_OVERLAP: Final = timedelta(days=1)


class BigQuerySettings(BaseSettings):
    """FINOPS_BIGQUERY__PROJECT, __REGION (to move into finops.settings); credentials come
    from Google's standard environment (GOOGLE_APPLICATION_CREDENTIALS)."""

    model_config = SettingsConfigDict(env_prefix="FINOPS_BIGQUERY__", extra="ignore")

    project: str | None = None
    region: str = "region-us"


def _nested(view: ViewFile, lf: pl.LazyFrame, column: str, path: str) -> pl.Expr:
    """A field inside a struct column, whether kept as a struct or written as JSON text."""
    if column not in view.columns:
        return pl.lit(None, pl.String)
    dtype = lf.collect_schema()[column]
    expr = pl.col(column)
    if isinstance(dtype, pl.Struct):
        expr = expr.struct.json_encode()
    return text(expr.cast(pl.String).str.json_path_match(f"$.{path}"))


def jobs_frame(view: ViewFile) -> pl.LazyFrame:
    lf = scan_view(view)

    def c(name: str) -> pl.Expr:
        return col_or_null(view, name)

    labels_dtype = lf.collect_schema().get("LABELS", pl.String())
    labels = parse_labels(pl.col("LABELS"), labels_dtype) if "LABELS" in view.columns else \
        pl.lit(None, pl.Map(pl.String, pl.String))
    label_text = (text(pl.col("LABELS")) if "LABELS" in view.columns and labels_dtype == pl.String()
                  else pl.lit(None, pl.String))
    if "QUERY_INFO" in view.columns:
        qhash = pl.coalesce(_nested(view, lf, "QUERY_INFO", "query_hashes.normalized_literals"),
                            parameterised_hash(text(c("QUERY"))))
    else:
        qhash = parameterised_hash(text(c("QUERY")))
    reservation = text(c("RESERVATION_ID"))
    error = _nested(view, lf, "ERROR_RESULT", "reason")
    start = pl.coalesce(typed_timestamp(view, lf, "START_TIME"), typed_timestamp(view, lf, "CREATION_TIME"))
    end = typed_timestamp(view, lf, "END_TIME")
    return lf.select(
        pl.col("x_SourceRow"),
        pl.concat_str(text(pl.col("PROJECT_ID")), pl.lit(":"), text(pl.col("JOB_ID"))).alias("query_id"),
        text(pl.col("PROJECT_ID")).alias("account"),
        pl.coalesce(reservation, pl.concat_str(pl.lit("on-demand:"), text(pl.col("PROJECT_ID"))))
        .alias("warehouse"),
        text(c("USER_EMAIL")).alias("user_name"),
        text(pl.col("PROJECT_ID")).alias("database_name"),
        text(c("STATEMENT_TYPE")).str.to_uppercase().alias("query_type"),
        pl.when(error.is_not_null()).then(pl.lit("FAIL"))
        .otherwise(pl.lit("SUCCESS")).alias("execution_status"),
        start.alias("start_time"),
        end.alias("end_time"),
        (end - start).dt.total_milliseconds().alias("execution_ms"),
        integer(c("TOTAL_BYTES_PROCESSED")).fill_null(0).alias("bytes_scanned"),
        integer(pl.col("TOTAL_BYTES_BILLED")).fill_null(0).alias("bytes_billed"),
        integer(pl.col("TOTAL_SLOT_MS")).fill_null(0).alias("slot_ms"),
        qhash.alias("query_hash"),
        label_text.alias("query_tag"),
        labels.alias("tags"),
        pl.when(reservation.is_null() | (reservation.str.to_lowercase() == "default-pipeline"))
        .then(pl.lit("on_demand")).otherwise(pl.lit("reservation")).alias("pricing_model"),
        text(c("EDITION")).str.to_uppercase().alias("edition"),
        text(c("STATEMENT_TYPE")).str.to_uppercase().alias("_statement"),
    ).with_columns(
        pl.when(pl.col("query_tag").is_null() & pl.col("tags").is_not_null())
        .then(pl.col("tags").map.entries().list.eval(
            pl.concat_str(pl.element().struct.field("key"), pl.lit("="),
                          pl.element().struct.field("value"))).list.join(";"))
        .otherwise(pl.col("query_tag")).alias("query_tag"),
    )


def timeline_frame(view: ViewFile) -> pl.LazyFrame:
    """Reservation capacity per hour: (slots assigned + autoscaled) x 60,000 ms per minute."""
    lf = scan_view(view)
    autoscale = (number(pl.col("AUTOSCALE.CURRENT_SLOTS")) if "AUTOSCALE.CURRENT_SLOTS" in view.columns
                 else number(_nested(view, lf, "AUTOSCALE", "current_slots")))
    minute = lf.select(
        pl.col("x_SourceRow"),
        text(pl.col("RESERVATION_ID")).alias("warehouse"),
        typed_timestamp(view, lf, "PERIOD_START").dt.truncate("1h").alias("hour"),
        ((number(pl.col("SLOTS_ASSIGNED")).fill_null(0) + autoscale.fill_null(0)) * 60_000)
        .alias("slot_ms"),
        text(col_or_null(view, "EDITION")).str.to_uppercase().alias("edition"),
    )
    return (minute.group_by("warehouse", "hour")
            .agg(pl.col("slot_ms").sum(), pl.col("edition").drop_nulls().first(),
                 pl.col("x_SourceRow").min()))


def _views(root: Path, view: str, *, optional: bool = False) -> list[ViewFile]:
    files = find_view_files(root, view)
    if not files and not optional:
        raise BadInputError(f"{root}: no {view}.csv or {view}.parquet",
                            hint=f"Export `region-REGION`.INFORMATION_SCHEMA.{view.upper()} to "
                            f"{root / (view + '.csv')}.")
    return [open_view_file(p, root, required=REQUIRED[view], what=WHAT.format(view=view.upper()))
            for p in files]


def collect_bigquery_files(wh: Warehouse, state: State, path: Path, *,
                           max_rejected_share: float = 0.01) -> CollectResult:
    """Load INFORMATION_SCHEMA.JOBS (and RESERVATIONS_TIMELINE) exports from ``path``."""
    tables = []
    for view in _views(path, JOBS):
        jobs = jobs_frame(view).filter(pl.col("_statement").fill_null("") != "SCRIPT")
        tables.append(Table(QUERIES, conform(jobs, {**QUERY_SCHEMA, "x_SourceRow": pl.Int64()}),
                            ("query_id",), month_expr("end_time"),
                            ("query_id", "start_time", "end_time"), view.label,
                            cursor=(JOBS, pl.col("end_time"))))
    for view in _views(path, TIMELINE, optional=True):
        tables.append(Table(CAPACITY, conform(timeline_frame(view),
                                              {**CAPACITY_SCHEMA, "x_SourceRow": pl.Int64()}),
                            ("warehouse", "hour"), month_expr("hour"), ("warehouse", "hour"),
                            view.label))
    return load_tables(wh, state, source=SOURCE, tables=tables, inputs=[t.label for t in tables],
                       max_rejected_share=max_rejected_share)


# ---- live --------------------------------------------------------------------------------
def fetch_live(settings: BigQuerySettings, out: Path, since: datetime) -> list[str]:
    try:
        from google.cloud import bigquery  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError("the BigQuery client is not installed",
                          hint="pip install 'finops-toolkit[gcp]'") from None
    import pyarrow.parquet as pq
    from google.api_core import exceptions as api_errors  # type: ignore[import-not-found,unused-ignore]
    from google.auth import exceptions as auth_errors  # type: ignore[import-not-found,unused-ignore]

    region = settings.region if settings.region.startswith("region-") else f"region-{settings.region}"
    try:
        client = bigquery.Client(project=settings.project)
        params = bigquery.QueryJobConfig(query_parameters=[
            bigquery.ScalarQueryParameter("since", "TIMESTAMP", since)])
        jobs = client.query(f"SELECT * FROM `{region}`.INFORMATION_SCHEMA.JOBS "
                            "WHERE creation_time >= @since", job_config=params).to_arrow()
    except auth_errors.DefaultCredentialsError:
        raise ConfigError("no Google Cloud credentials for BigQuery",
                          hint="Set GOOGLE_APPLICATION_CREDENTIALS (and FINOPS_BIGQUERY__PROJECT, "
                          "FINOPS_BIGQUERY__REGION), or use --path with exported views.") from None
    except api_errors.GoogleAPIError as exc:
        raise ConfigError(f"BigQuery {region}.INFORMATION_SCHEMA.JOBS: {exc}",
                          hint="Grant roles/bigquery.resourceViewer on the project.") from None
    pq.write_table(jobs, out / "jobs.parquet")
    notes = []
    try:
        timeline = client.query(f"SELECT * FROM `{region}`.INFORMATION_SCHEMA.RESERVATIONS_TIMELINE "
                                "WHERE period_start >= @since", job_config=params).to_arrow()
        pq.write_table(timeline, out / "reservations_timeline.parquet")
    except Exception as exc:  # noqa: BLE001 - optional view: no reservations, or no permission
        notes.append(f"RESERVATIONS_TIMELINE not readable ({type(exc).__name__}); skipped")
    return notes


def collect_bigquery_live(wh: Warehouse, state: State, *, overlap: timedelta = DEFAULT_OVERLAP,
                          max_rejected_share: float = 0.01) -> CollectResult:
    since = window_start(state, SOURCE, JOBS, overlap=overlap)
    with tempfile.TemporaryDirectory(prefix="finops-bigquery-") as tmp:
        notes = fetch_live(BigQuerySettings(), Path(tmp), since)
        result = collect_bigquery_files(wh, state, Path(tmp), max_rejected_share=max_rejected_share)
    result.notes.extend(notes)
    return result
