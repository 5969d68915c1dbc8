"""Snowflake query history and warehouse metering, from export files or live.

Files (``--path DIR``), named after the ACCOUNT_USAGE / ORGANIZATION_USAGE views in lower
case, with the views' own column names and timestamp formats:

- ``query_history`` (required): QUERY_ID, WAREHOUSE_NAME, START_TIME, END_TIME,
  EXECUTION_TIME; and when present USER_NAME, ROLE_NAME, DATABASE_NAME, QUERY_TAG,
  EXECUTION_STATUS, COMPILATION_TIME, QUEUED_*_TIME, BYTES_SCANNED,
  CREDITS_USED_CLOUD_SERVICES, QUERY_PARAMETERIZED_HASH (else a hash of QUERY_TEXT with
  its literals replaced, else QUERY_HASH), WAREHOUSE_SIZE, QUERY_TYPE;
- ``warehouse_metering_history`` (required): START_TIME, END_TIME, WAREHOUSE_NAME,
  CREDITS_USED_COMPUTE (or CREDITS_USED), CREDITS_USED_CLOUD_SERVICES;
- ``query_attribution_history`` (where the account has it): QUERY_ID, WAREHOUSE_NAME,
  START_TIME, END_TIME, CREDITS_ATTRIBUTED_COMPUTE;
- ``rate_sheet_daily`` (when it can be read): DATE, USAGE_TYPE, CURRENCY, EFFECTIVE_RATE.

Live, the same views are read with ``snowflake-connector-python`` from the cursor (the
latest END_TIME or START_TIME collected) minus an overlap window for late rows, written
as Parquet files and loaded through the file path, so both paths share every rule.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from finops.errors import BadInputError, ConfigError
from finops.settings import SnowflakeSettings
from finops.state import State
from finops.warehouse import Warehouse
from models.query_rules import parse_query_tag
from models.query_store import (
    ATTRIBUTION,
    ATTRIBUTION_SCHEMA,
    METERING,
    METERING_SCHEMA,
    QUERIES,
    QUERY_SCHEMA,
    RATES,
    RATES_SCHEMA,
    CollectResult,
    Table,
    ViewFile,
    col_or_null,
    conform,
    decimal,
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

SOURCE: Final = "snowflake"
WHAT: Final = "Snowflake {view} export"
QUERY_HISTORY: Final = "query_history"
METERING_HISTORY: Final = "warehouse_metering_history"
ATTRIBUTION_HISTORY: Final = "query_attribution_history"
RATE_SHEET: Final = "rate_sheet_daily"
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    QUERY_HISTORY: ("QUERY_ID", "WAREHOUSE_NAME", "START_TIME", "END_TIME", "EXECUTION_TIME"),
    METERING_HISTORY: ("START_TIME", "END_TIME", "WAREHOUSE_NAME"),
    ATTRIBUTION_HISTORY: ("QUERY_ID", "WAREHOUSE_NAME", "START_TIME", "END_TIME",
                          "CREDITS_ATTRIBUTED_COMPUTE"),
    RATE_SHEET: ("DATE", "USAGE_TYPE", "CURRENCY", "EFFECTIVE_RATE"),
}
DEFAULT_OVERLAP: Final = timedelta(days=1)


def _zero(expr: pl.Expr) -> pl.Expr:
    return integer(expr).fill_null(0)


def query_history_frame(view: ViewFile) -> pl.LazyFrame:
    lf = scan_view(view)

    def c(name: str) -> pl.Expr:
        return col_or_null(view, name)

    if "QUERY_PARAMETERIZED_HASH" in view.columns:
        qhash = text(c("QUERY_PARAMETERIZED_HASH"))
    elif "QUERY_TEXT" in view.columns:
        qhash = parameterised_hash(text(c("QUERY_TEXT")))
    else:
        qhash = text(c("QUERY_HASH"))
    queued = sum((_zero(c(n)) for n in ("QUEUED_PROVISIONING_TIME", "QUEUED_REPAIR_TIME",
                                        "QUEUED_OVERLOAD_TIME")), start=pl.lit(0, pl.Int64))
    out = lf.select(
        pl.col("x_SourceRow"),
        text(c("QUERY_ID")).alias("query_id"),
        text(c("ACCOUNT_NAME")).alias("account"),
        text(c("WAREHOUSE_NAME")).alias("warehouse"),
        text(c("WAREHOUSE_SIZE")).alias("warehouse_size"),
        text(c("USER_NAME")).alias("user_name"),
        text(c("ROLE_NAME")).alias("role_name"),
        text(c("DATABASE_NAME")).alias("database_name"),
        text(c("QUERY_TYPE")).alias("query_type"),
        text(c("EXECUTION_STATUS")).str.to_uppercase().alias("execution_status"),
        typed_timestamp(view, lf, "START_TIME").alias("start_time"),
        typed_timestamp(view, lf, "END_TIME").alias("end_time"),
        integer(c("EXECUTION_TIME")).alias("execution_ms"),
        _zero(c("COMPILATION_TIME")).alias("compilation_ms"),
        queued.alias("queued_ms"),
        _zero(c("BYTES_SCANNED")).alias("bytes_scanned"),
        pl.lit(None, pl.Int64).alias("bytes_billed"),
        pl.lit(None, pl.Int64).alias("slot_ms"),
        number(c("CREDITS_USED_CLOUD_SERVICES")).fill_null(0.0).alias("cloud_services_credits"),
        qhash.alias("query_hash"),
        text(c("QUERY_TAG")).alias("query_tag"),
        parse_query_tag(text(c("QUERY_TAG"))).alias("tags"),
        pl.lit("credits").alias("pricing_model"),
        pl.lit(None, pl.String).alias("edition"),
    )
    # EXECUTION_TIME is the last phase of a query: it cannot exceed the query's duration.
    return out.with_columns(pl.col("execution_ms").clip(lower_bound=0))


def metering_frame(view: ViewFile) -> pl.LazyFrame:
    lf = scan_view(view)
    if "CREDITS_USED_COMPUTE" not in view.columns and "CREDITS_USED" not in view.columns:
        raise BadInputError.missing_columns(view.label, ["CREDITS_USED_COMPUTE"], list(view.columns),
                                            what=WHAT.format(view="WAREHOUSE_METERING_HISTORY"))
    cloud = decimal(col_or_null(view, "CREDITS_USED_CLOUD_SERVICES")).fill_null(0)
    compute = (decimal(pl.col("CREDITS_USED_COMPUTE")) if "CREDITS_USED_COMPUTE" in view.columns
               else decimal(pl.col("CREDITS_USED")) - cloud)
    return lf.select(
        pl.col("x_SourceRow"),
        text(pl.col("WAREHOUSE_NAME")).alias("warehouse"),
        text(col_or_null(view, "WAREHOUSE_ID")).alias("warehouse_id"),
        typed_timestamp(view, lf, "START_TIME").alias("start_time"),
        typed_timestamp(view, lf, "END_TIME").alias("end_time"),
        compute.alias("credits_compute"),
        cloud.alias("credits_cloud_services"),
    )


def attribution_frame(view: ViewFile) -> pl.LazyFrame:
    lf = scan_view(view)
    return lf.select(
        pl.col("x_SourceRow"),
        text(pl.col("QUERY_ID")).alias("query_id"),
        text(pl.col("WAREHOUSE_NAME")).alias("warehouse"),
        typed_timestamp(view, lf, "START_TIME").alias("start_time"),
        typed_timestamp(view, lf, "END_TIME").alias("end_time"),
        number(pl.col("CREDITS_ATTRIBUTED_COMPUTE")).alias("credits_attributed_compute"),
    )


def rates_frame(view: ViewFile) -> pl.LazyFrame:
    """Compute and cloud-services credit prices per day from RATE_SHEET_DAILY."""
    lf = scan_view(view)
    usage = text(pl.col("USAGE_TYPE")).str.to_lowercase()
    keep = usage.is_in(["compute", "cloud services"])
    if "SERVICE_TYPE" in view.columns:
        service = text(pl.col("SERVICE_TYPE")).str.to_uppercase()
        keep = keep & (service.is_null() | (service == "WAREHOUSE_METERING"))
    return lf.filter(keep).select(
        pl.col("x_SourceRow"),
        typed_timestamp(view, lf, "DATE").dt.date().alias("date"),
        usage.alias("usage_type"),
        text(pl.col("CURRENCY")).str.to_uppercase().alias("currency"),
        decimal(pl.col("EFFECTIVE_RATE")).alias("rate"),
    )


def _views(root: Path, view: str, *, optional: bool = False) -> list[ViewFile]:
    files = find_view_files(root, view)
    if not files and not optional:
        raise BadInputError(
            f"{root}: no {view}.csv or {view}.parquet",
            hint=f"Export SNOWFLAKE.ACCOUNT_USAGE.{view.upper()} to {root / (view + '.csv')}.",
        )
    what = WHAT.format(view=view.upper())
    return [open_view_file(p, root, required=REQUIRED[view], what=what) for p in files]


def _check_rates(frames: dict[str, pl.LazyFrame]) -> list[str]:
    if RATES not in frames:
        return []
    clash = (frames[RATES].group_by("date", "usage_type")
             .agg(pl.col("rate").n_unique().alias("n"), pl.col("currency").n_unique().alias("c"))
             .filter((pl.col("n") > 1) | (pl.col("c") > 1)).sort("date").collect())
    if clash.height:
        first = clash.row(0, named=True)
        raise BadInputError(
            f"rate_sheet_daily: {clash.height} day(s) have several rates for one usage type, "
            f"first {first['date']} {first['usage_type']}",
            hint="Export the rate sheet of this account only (filter on ACCOUNT_NAME).",
        )
    return []


def collect_snowflake_files(
    wh: Warehouse, state: State, path: Path, *, max_rejected_share: float = 0.01,
) -> CollectResult:
    """Load Snowflake view exports from ``path`` (a folder) into the warehouse."""
    root = path
    history = _views(root, QUERY_HISTORY)
    metering = _views(root, METERING_HISTORY)
    attribution = _views(root, ATTRIBUTION_HISTORY, optional=True)
    rates = _views(root, RATE_SHEET, optional=True)
    tables: list[Table] = []
    for view in history:
        tables.append(Table(
            QUERIES, conform_keep_row(query_history_frame(view), QUERY_SCHEMA), ("query_id",),
            month_expr("end_time"), ("query_id", "start_time", "end_time"), view.label,
            cursor=(QUERY_HISTORY, pl.col("end_time")),
        ))
    for view in metering:
        tables.append(Table(
            METERING, conform_keep_row(metering_frame(view), METERING_SCHEMA),
            ("warehouse", "start_time"), month_expr("start_time"),
            ("warehouse", "start_time", "credits_compute"), view.label,
            cursor=(METERING_HISTORY, pl.col("start_time")),
        ))
    for view in attribution:
        tables.append(Table(
            ATTRIBUTION, conform_keep_row(attribution_frame(view), ATTRIBUTION_SCHEMA), ("query_id",),
            month_expr("end_time"), ("query_id", "end_time", "credits_attributed_compute"), view.label,
            cursor=(ATTRIBUTION_HISTORY, pl.col("end_time")),
        ))
    for view in rates:
        tables.append(Table(
            RATES, conform_keep_row(rates_frame(view), RATES_SCHEMA), ("date", "usage_type"),
            pl.lit(None, pl.String), ("date", "usage_type", "currency", "rate"), view.label,
            monthly=False,
        ))
    return load_tables(wh, state, source=SOURCE, tables=tables,
                       inputs=[t.label for t in tables], max_rejected_share=max_rejected_share,
                       after_staging=_check_rates)


def conform_keep_row(lf: pl.LazyFrame, schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    return conform(lf, {**schema, "x_SourceRow": pl.Int64()})


# ---- live --------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveView:
    view: str
    sql: str
    cursor: str
    optional: bool = False


LIVE_VIEWS: Final = (
    LiveView(QUERY_HISTORY, "SELECT * FROM SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY "
             "WHERE END_TIME >= %(since)s", QUERY_HISTORY),
    LiveView(METERING_HISTORY, "SELECT * FROM SNOWFLAKE.ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY "
             "WHERE START_TIME >= %(since)s", METERING_HISTORY),
    LiveView(ATTRIBUTION_HISTORY, "SELECT * FROM SNOWFLAKE.ACCOUNT_USAGE.QUERY_ATTRIBUTION_HISTORY "
             "WHERE END_TIME >= %(since)s", ATTRIBUTION_HISTORY, optional=True),
    LiveView(RATE_SHEET, "SELECT * FROM SNOWFLAKE.ORGANIZATION_USAGE.RATE_SHEET_DAILY "
             "WHERE DATE >= %(since)s::DATE AND ACCOUNT_LOCATOR = CURRENT_ACCOUNT()",
             RATE_SHEET, optional=True),
)


def live_credentials(settings: SnowflakeSettings) -> tuple[str, str, str]:
    missing = [n for n in ("account", "user", "password") if getattr(settings, n) is None]
    if missing:
        raise ConfigError(
            "Snowflake live collection needs " + ", ".join(missing),
            hint="Set " + ", ".join(f"FINOPS_SNOWFLAKE__{n.upper()}" for n in missing)
            + " (or [snowflake] in finops.toml; the password only in the environment), "
            "or use --path with exported views.",
        )
    assert settings.account is not None
    assert settings.user is not None
    assert settings.password is not None
    return settings.account, settings.user, settings.password.get_secret_value()


def fetch_live(settings: SnowflakeSettings, out: Path, since: dict[str, datetime]) -> list[str]:
    """Read each view from its window start into ``out/<view>.parquet``; notes for skipped views."""
    account, user, password = live_credentials(settings)
    try:
        import snowflake.connector  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError("the Snowflake connector is not installed",
                          hint="pip install 'finops-toolkit[snowflake]'") from None
    import pyarrow.parquet as pq

    notes = []
    conn = snowflake.connector.connect(account=account, user=user, password=password,
                                       application="finops-toolkit")
    try:
        cur = conn.cursor()
        for view in LIVE_VIEWS:
            try:
                cur.execute(view.sql, {"since": since[view.cursor]})
            except snowflake.connector.errors.ProgrammingError as exc:
                if not view.optional:
                    raise ConfigError(f"Snowflake {view.view.upper()}: {exc.msg}",
                                      hint="Grant the role IMPORTED PRIVILEGES on the SNOWFLAKE "
                                      "database.") from None
                notes.append(f"{view.view.upper()} not readable ({exc.msg}); skipped")
                continue
            table = cur.fetch_arrow_all()
            if table is not None:
                pq.write_table(table, out / f"{view.view}.parquet")
    finally:
        conn.close()
    return notes


def collect_snowflake_live(
    wh: Warehouse, state: State, settings: SnowflakeSettings, *,
    overlap: timedelta = DEFAULT_OVERLAP, max_rejected_share: float = 0.01,
) -> CollectResult:
    """Incremental read of the views since each cursor minus ``overlap``, then load."""
    since = {v.cursor: window_start(state, SOURCE, v.cursor, overlap=overlap) for v in LIVE_VIEWS}
    with tempfile.TemporaryDirectory(prefix="finops-snowflake-") as tmp:
        notes = fetch_live(settings, Path(tmp), since)
        result = collect_snowflake_files(wh, state, Path(tmp), max_rejected_share=max_rejected_share)
    result.notes.extend(notes)
    return result


def required_views() -> Sequence[str]:
    return (QUERY_HISTORY, METERING_HISTORY)
