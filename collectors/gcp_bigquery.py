"""Reading the billing export from BigQuery, incrementally, whole invoice months at a time.

The export tables are partitioned by ingestion time (``_PARTITIONTIME``) and every row
carries ``export_time``. A run:

1. asks which invoice months have rows exported since ``cursor − overlap`` (the cursor
   is the newest ``export_time`` already loaded, kept in ``state.db``; the overlap,
   three days by default, catches rows that became visible late), pruning partitions;
2. reads each of those months *whole* (Google restates a month by appending rows to
   it: corrections, late usage, credits), writes it to Parquet in the scratch folder;
3. loads them through the same mapping as files, which replaces each month's
   partition, so a restated month is replaced, never counted twice;
4. moves the cursor only when every month reconciled.

Google's FOCUS table or view (``gcp_billing_export_focus_*``, or the FOCUS BigQuery view
over the detailed export) is read the same way and loaded with the FOCUS collector's
mapping (``collectors.focus``): Tags as key/value entries, other nested columns as JSON
text (:func:`flatten_focus`), then what Google's view gives differently from FOCUS 1.2
made right (:func:`google_focus`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from finops import parse
from finops.errors import BadInputError, ConfigError, FinopsError
from finops.focus import SERVICE_CATEGORIES, TAGS, TIMESTAMP
from finops.lookup import mapped
from finops.progress import progress

if TYPE_CHECKING:
    from google.cloud import bigquery

CURSOR_COLLECTOR = "gcp"
DEFAULT_OVERLAP = timedelta(days=3)
# Rows of an invoice month are exported from shortly before the month starts (usage
# at the end of the previous month billed on this invoice) until any time later.
MONTH_PARTITION_SLACK = timedelta(days=7)

EXPORT_COLUMNS = (
    "billing_account_id", "service", "sku", "usage_start_time", "usage_end_time", "project",
    "labels", "system_labels", "location", "tags", "resource", "export_time", "cost", "currency",
    "currency_conversion_rate", "usage", "credits", "invoice", "cost_type", "adjustment_info",
    "price", "cost_at_list", "transaction_type", "seller_name", "subscription", "consumption_model",
)
EXPORT_REQUIRED = ("billing_account_id", "cost", "currency", "invoice", "usage_start_time",
                   "usage_end_time", "service", "export_time")
FOCUS_REQUIRED = ("BilledCost", "EffectiveCost", "BillingPeriodStart", "ChargePeriodStart",
                  "BillingCurrency")
_TABLE = re.compile(
    r"^(?P<project>[A-Za-z0-9_.:\-]+?)[.:](?P<dataset>[A-Za-z0-9_]+)\.(?P<table>[A-Za-z0-9_$\-]+)$"
)


@dataclass(frozen=True)
class TableRef:
    project: str
    dataset: str
    table: str

    @classmethod
    def parse(cls, text: str) -> TableRef:
        m = _TABLE.match(text.strip().strip("`"))
        if not m:
            raise BadInputError(
                f"--table {text!r} is not PROJECT.DATASET.TABLE",
                hint="Give the export table in full, e.g. "
                "my-project.billing.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9.",
            )
        return cls(m["project"], m["dataset"], m["table"])

    @property
    def sql(self) -> str:
        return f"`{self.project}.{self.dataset}.{self.table}`"

    def __str__(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"


@dataclass(frozen=True)
class TableInfo:
    kind: str  # "export" or "focus"
    columns: tuple[str, ...]
    partitioned: bool  # _PARTITIONTIME can prune


@dataclass(frozen=True)
class MonthChange:
    month: str  # YYYYMM
    rows: int
    max_export_time: datetime | None


def anonymous_for(endpoint: str | None) -> bool:
    """A plain-http endpoint is an emulator or a test server: no Google credentials."""
    return bool(endpoint and endpoint.startswith("http://"))


def make_client(project: str, endpoint: str | None = None) -> bigquery.Client:
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import bigquery

    kwargs: dict[str, Any] = {}
    if endpoint:
        kwargs["client_options"] = {"api_endpoint": endpoint}
    if anonymous_for(endpoint):
        kwargs["credentials"] = AnonymousCredentials()  # type: ignore[no-untyped-call]
    try:
        return bigquery.Client(project=project, **kwargs)
    except DefaultCredentialsError as exc:
        raise ConfigError(
            f"no Google Cloud credentials to read BigQuery: {str(exc).splitlines()[0]}",
            hint="Run `gcloud auth application-default login`, or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service account key with "
            "roles/bigquery.dataViewer on the dataset and roles/bigquery.jobUser.",
        ) from None


def _api_error(exc: Exception, what: str) -> FinopsError:
    from google.api_core import exceptions as gexc

    text = getattr(exc, "message", None) or str(exc)
    first = str(text).splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, gexc.NotFound):
        return BadInputError(f"{what}: not found: {first}",
                             hint="Check the project, dataset and table names.")
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return ConfigError(f"{what}: access denied: {first}",
                           hint="The credentials need roles/bigquery.dataViewer on the dataset "
                           "and roles/bigquery.jobUser on the project that runs the query.")
    if isinstance(exc, gexc.BadRequest):
        return BadInputError(f"{what}: BigQuery refused the query: {first}",
                             hint="Check that --table is a Cloud Billing export table or view.")
    return FinopsError(f"{what}: BigQuery call failed: {first}",
                       hint="Try again; check the network and the BigQuery status page.")


def _google_errors() -> tuple[type[Exception], ...]:
    from google.api_core.exceptions import GoogleAPICallError, RetryError
    from google.auth.exceptions import GoogleAuthError

    return (GoogleAPICallError, RetryError, GoogleAuthError, OSError)


def table_info(client: bigquery.Client, ref: TableRef) -> TableInfo:
    try:
        table = client.get_table(str(ref))
    except _google_errors() as exc:
        raise _api_error(exc, str(ref)) from None
    names = tuple(f.name for f in table.schema)
    partitioned = table.table_type == "TABLE" and table.time_partitioning is not None and (
        table.time_partitioning.field is None)
    if "BilledCost" in names:
        missing = [c for c in FOCUS_REQUIRED if c not in names]
        kind = "focus"
    else:
        missing = [c for c in EXPORT_REQUIRED if c not in names]
        kind = "export"
    if missing:
        raise BadInputError.missing_columns(
            str(ref), missing, names,
            what="Cloud Billing export table (standard, detailed or FOCUS)",
        )
    return TableInfo(kind, names, partitioned)


def _query(client: bigquery.Client, sql: str, params: Sequence[Any], what: str) -> Any:
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(query_parameters=list(params))
    try:
        return client.query(sql, job_config=config).result(page_size=50_000)
    except _google_errors() as exc:
        raise _api_error(exc, what) from None


def changed_months(
    client: bigquery.Client, ref: TableRef, info: TableInfo, since: datetime | None
) -> list[MonthChange]:
    """Invoice months with rows exported at or after ``since`` (every month if None)."""
    from google.cloud import bigquery

    params: list[Any] = []
    where = []
    if info.kind == "export":
        month = "invoice.month"
        export_time = "export_time"
    else:
        month = "FORMAT_TIMESTAMP('%Y%m', BillingPeriodStart, 'America/Los_Angeles')"
        export_time = "x_ExportTime" if "x_ExportTime" in info.columns else "ChargePeriodEnd"
    if since is not None:
        params.append(bigquery.ScalarQueryParameter("since", "TIMESTAMP", since))
        where.append(f"{export_time} >= @since")
        if info.partitioned:
            where.append("_PARTITIONTIME >= TIMESTAMP_SUB(TIMESTAMP_TRUNC(@since, DAY), INTERVAL 1 DAY)")
    sql = (
        f"SELECT {month} AS month, COUNT(*) AS row_count, MAX({export_time}) AS max_export_time\n"
        f"FROM {ref.sql}\n"
        + (f"WHERE {' AND '.join(where)}\n" if where else "")
        + "GROUP BY month\nORDER BY month"
    )
    rows = _query(client, sql, params, f"{ref}: finding changed months")
    out = []
    try:
        for row in rows:
            if row["month"] is None:
                continue
            out.append(MonthChange(str(row["month"]), int(row["row_count"]), row["max_export_time"]))
    except _google_errors() as exc:
        raise _api_error(exc, str(ref)) from None
    return out


def month_sql(ref: TableRef, info: TableInfo, month: str) -> tuple[str, list[Any]]:
    from google.cloud import bigquery

    first = date(int(month[:4]), int(month[4:]), 1)
    if info.kind == "export":
        cols = [c for c in EXPORT_COLUMNS if c in info.columns]
        params: list[Any] = [bigquery.ScalarQueryParameter("month", "STRING", month)]
        where = ["invoice.month = @month"]
        if info.partitioned:
            floor = datetime.combine(first, datetime.min.time(), UTC) - MONTH_PARTITION_SLACK
            params.append(bigquery.ScalarQueryParameter("partition_floor", "TIMESTAMP", floor))
            where.append("_PARTITIONTIME >= @partition_floor")
        select = ", ".join(cols)
    else:
        start = datetime.combine(first, datetime.min.time(), UTC)
        params = [
            bigquery.ScalarQueryParameter("period_lo", "TIMESTAMP", start - timedelta(hours=15)),
            bigquery.ScalarQueryParameter("period_hi", "TIMESTAMP", start + timedelta(hours=15)),
        ]
        where = ["BillingPeriodStart >= @period_lo", "BillingPeriodStart < @period_hi"]
        select = "*"
    return f"SELECT {select}\nFROM {ref.sql}\nWHERE {' AND '.join(where)}", params


def _arrow_batches(rows: Any) -> Iterable[pa.RecordBatch]:
    batches: Iterable[pa.RecordBatch] = rows.to_arrow_iterable()
    return batches


def download_month(
    client: bigquery.Client, ref: TableRef, info: TableInfo, month: str, out: Path
) -> int:
    """One invoice month's rows into a Parquet file; the row count written."""
    sql, params = month_sql(ref, info, month)
    rows = _query(client, sql, params, f"{ref}: reading invoice month {month}")
    written = 0
    writer: pq.ParquetWriter | None = None
    try:
        for batch in _arrow_batches(rows):
            table = pa.Table.from_batches([batch])
            if info.kind == "focus":
                table = flatten_focus(table)
            if writer is None:
                writer = pq.ParquetWriter(out, table.schema)
            writer.write_table(table.cast(writer.schema))
            written += table.num_rows
    except _google_errors() as exc:
        raise _api_error(exc, f"{ref}: reading invoice month {month}") from None
    finally:
        if writer is not None:
            writer.close()
    return written


# Google's FOCUS view builds Tags from four sources, telling them apart in x_type. The
# export mapping's order: the row's own labels, then resource manager tags, then the
# labels inherited from the project; system labels are not tags (x_SystemLabels).
TAG_RANK = {"label": 0, "tag": 1, "project_label": 2}
SYSTEM_LABEL = "system_label"
KV_LIST = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
Entries = list[dict[str, str]] | None


def flatten_focus(table: pa.Table) -> pa.Table:
    """Google's FOCUS rows for the FOCUS collector: Tags as key/value entries (a tag map
    once loaded; the project's labels and the system labels split off into
    ``x_ProjectLabels`` and ``x_SystemLabels``, as the export mapping has them), every
    other nested column (credits, project, the pricing taxonomy) as JSON text."""
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in table.column_names:
        column = table.column(name)
        if not pa.types.is_nested(column.type):
            columns[name] = column
        elif name == "Tags" and pa.types.is_list(column.type):
            split = [_split_tags(v) for v in column.to_pylist()]
            columns[name] = pa.array([t for t, _, _ in split], KV_LIST)
            item = column.type.value_type
            if pa.types.is_struct(item) and item.get_field_index("x_type") >= 0:
                # Decided by the type, not the values: every batch gets the same columns.
                for extra, values in (("x_ProjectLabels", [p for _, p, _ in split]),
                                      ("x_SystemLabels", [s for _, _, s in split])):
                    if extra not in table.column_names:
                        columns[extra] = pa.array(values, KV_LIST)
        else:
            columns[name] = pa.array([_json_text(v) for v in column.to_pylist()], pa.string())
    return pa.table(columns)


def _split_tags(entries: list[dict[str, Any]] | None) -> tuple[Entries, Entries, Entries]:
    """Tags, project labels and system labels of one row; first entry of a key wins."""
    tags: list[tuple[int, int, str, str]] = []
    project: list[tuple[int, int, str, str]] = []
    system: list[tuple[int, int, str, str]] = []
    for n, e in enumerate(entries or []):
        key, value = e.get("key"), e.get("value")
        if key is None or value is None:
            continue
        kind = e.get("x_type")
        if kind == SYSTEM_LABEL:
            system.append((0, n, str(key), str(value)))
            continue
        # Without x_type (another FOCUS table): a row's own entries before inherited ones.
        rank = TAG_RANK.get(kind, 1) if kind is not None else (
            2 if e.get("x_inherited") or e.get("inherited") else 0)
        tags.append((rank, n, str(key), str(value)))
        if kind == "project_label":
            project.append((0, n, str(key), str(value)))
    return _kv(tags), _kv(project), _kv(system)


def _kv(entries: list[tuple[int, int, str, str]]) -> Entries:
    out: dict[str, str] = {}
    for _, _, key, value in sorted(entries):
        out.setdefault(key[:parse.MAX_TAG_KEY], value[:parse.MAX_TAG_VALUE])
    return [{"key": k, "value": v} for k, v in out.items()] or None


def _json_text(value: Any) -> str | None:
    if value is None or value == []:
        return None
    return json.dumps(value, default=str, sort_keys=True)


def google_focus(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Google's FOCUS rows, mapped by the FOCUS collector, made what FOCUS 1.2 asks for.

    What Google's FOCUS view gives differently:

    - ``BillingPeriodEnd`` is the last day of the invoice month; FOCUS's end is exclusive:
      the next invoice month's start (midnight America/Los_Angeles).
    - ``InvoiceIssuerName`` is missing, ``PublisherName`` null where the row has no
      transaction type: Google Cloud, as the export mapping says.
    - ``ListCost`` is null where the export had no ``cost_at_list``: the contracted cost,
      with ``x_ListCostSource`` saying so (as the export mapping does).
    - ``ServiceCategory`` is the pricing export's product taxonomy (an array, or null):
      the FOCUS category of the service where it is not one (Google's value kept in
      ``x_ServiceCategory``).
    - ``x_`` columns Google types (export time, conversion rate, label maps) get the
      types the export mapping gives them, so both land in one ``billing`` dataset alike.
    """
    from collectors.gcp_mapping import BILLING_TZ, PROVIDER, service_categories

    names = lf.collect_schema()
    start = pl.col("BillingPeriodStart")
    service_category = pl.col("ServiceCategory")
    focus_category = service_category.is_in(list(SERVICE_CATEGORIES)).fill_null(False)
    exprs = [
        start.dt.convert_time_zone(BILLING_TZ).dt.offset_by("1mo").dt.convert_time_zone("UTC")
        .cast(TIMESTAMP).alias("BillingPeriodEnd"),
        pl.col("InvoiceIssuerName").fill_null(PROVIDER),
        pl.coalesce("PublisherName", "ProviderName", pl.lit(PROVIDER)).alias("PublisherName"),
        pl.coalesce("ListCost", "ContractedCost").alias("ListCost"),
        pl.when(pl.col("ListCost").is_not_null()).then(pl.lit("export"))
        .when(pl.col("ContractedCost").is_not_null()).then(pl.lit("cost")).alias("x_ListCostSource"),
        pl.when(focus_category).then(service_category)
        .otherwise(mapped(pl.col("ServiceName"), service_categories(), default="Other"))
        .alias("ServiceCategory"),
        pl.when(~focus_category).then(service_category).alias("x_ServiceCategory"),
    ]
    typed = {"x_ExportTime": TIMESTAMP, "x_CurrencyConversionRate": pl.Float64(),
             "x_ProjectLabels": TAGS, "x_SystemLabels": TAGS}
    for name, dtype in typed.items():
        if name not in names:
            continue
        if dtype == TIMESTAMP and names[name] == pl.String:
            exprs.append(parse.timestamp(pl.col(name)).alias(name))
        elif dtype == pl.Float64 and names[name] == pl.String:
            exprs.append(parse.quantity(pl.col(name)).alias(name))
        else:
            exprs.append(pl.col(name).cast(dtype, strict=False).alias(name))
    return lf.with_columns(exprs)


def cursor_key(source: str) -> str:
    return f"{source}:export_time"


def read_window(cursor: str | None, since: date | None, overlap: timedelta) -> datetime | None:
    """Where a run starts reading: ``--since``, else cursor − overlap, else everything."""
    if since is not None:
        return datetime.combine(since, datetime.min.time(), UTC)
    if cursor:
        return datetime.fromisoformat(cursor).astimezone(UTC) - overlap
    return None


def download_months(
    client: bigquery.Client, ref: TableRef, info: TableInfo, months: Sequence[MonthChange],
    scratch: Path,
) -> list[tuple[Path, str, int]]:
    out = []
    with progress(f"reading {ref}", len(months)) as step:
        for change in months:
            target = scratch / f"bq-{change.month}.parquet"
            n = download_month(client, ref, info, change.month, target)
            if n:
                out.append((target, f"{ref}/invoice.month={change.month}", n))
            step.advance(f"invoice month {change.month}: {n} rows")
    return out
