"""Databricks billable usage and list prices, from export files or live (SQL connector).

Files (``--path DIR``), named after the system tables in lower case, with their own
column names (any case) and timestamp formats:

- ``usage`` (system.billing.usage): RECORD_ID, SKU_NAME, USAGE_START_TIME,
  USAGE_END_TIME, USAGE_UNIT, USAGE_QUANTITY; and when present USAGE_DATE, RECORD_TYPE
  (ORIGINAL, RETRACTION, RESTATEMENT), CUSTOM_TAGS (a map, JSON or ``k=v`` text),
  USAGE_METADATA (struct or JSON: warehouse_id, cluster_id, job_id, ...),
  IDENTITY_METADATA (run_as), WORKSPACE_ID, ACCOUNT_ID, CLOUD, INGESTION_DATE,
  BILLING_ORIGIN_PRODUCT;
- ``list_prices`` (system.billing.list_prices): SKU_NAME, USAGE_UNIT, PRICE_START_TIME,
  PRICE_END_TIME, CURRENCY_CODE and PRICING (struct or JSON; ``effective_list.default``,
  else ``default``), or a flat PRICING.DEFAULT / PRICE column.

A RETRACTION row is the negative of a record billed before and a RESTATEMENT row its
correction; both are kept as they come (keyed by RECORD_ID), so sums are right whatever
order they arrive in. Live, the tables are read from the cursor (the latest
INGESTION_DATE) minus an overlap, so late corrections are picked up.
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Final

import polars as pl
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from finops.errors import BadInputError, ConfigError
from finops.state import State
from finops.warehouse import Warehouse
from models.query_rules import parse_labels
from models.query_store import (
    DBX_PRICES,
    DBX_PRICES_SCHEMA,
    DBX_USAGE,
    DBX_USAGE_SCHEMA,
    CollectResult,
    Table,
    ViewFile,
    col_or_null,
    conform,
    decimal,
    find_view_files,
    load_tables,
    month_expr,
    open_view_file,
    scan_view,
    text,
    typed_timestamp,
    window_start,
)

SOURCE: Final = "databricks"
USAGE: Final = "usage"
LIST_PRICES: Final = "list_prices"
REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    USAGE: ("RECORD_ID", "SKU_NAME", "USAGE_START_TIME", "USAGE_END_TIME", "USAGE_UNIT",
            "USAGE_QUANTITY"),
    LIST_PRICES: ("SKU_NAME", "USAGE_UNIT", "PRICE_START_TIME"),
}
WHAT: Final = "Databricks system.billing.{view} export"
RESOURCE_KEYS: Final = ("warehouse_id", "cluster_id", "job_id", "dlt_pipeline_id", "endpoint_name",
                        "instance_pool_id", "notebook_id")
DEFAULT_OVERLAP: Final = timedelta(days=3)


class DatabricksSettings(BaseSettings):
    """FINOPS_DATABRICKS__HOST, __HTTP_PATH, __TOKEN (to move into finops.settings)."""

    model_config = SettingsConfigDict(env_prefix="FINOPS_DATABRICKS__", extra="ignore")

    host: str | None = None
    http_path: str | None = None
    token: SecretStr | None = None


def _struct_field(view: ViewFile, lf: pl.LazyFrame, column: str, field: str) -> pl.Expr:
    """``column.field`` whether the export kept a struct, wrote JSON, or flattened it."""
    flat = f"{column}.{field}".upper()
    if flat in view.columns:
        return text(pl.col(flat))
    if column not in view.columns:
        return pl.lit(None, pl.String)
    dtype = lf.collect_schema()[column]
    if isinstance(dtype, pl.Struct):
        names = [f.name for f in dtype.fields]
        return text(pl.col(column).struct.field(field)) if field in names else pl.lit(None, pl.String)
    return text(pl.col(column).cast(pl.String).str.json_path_match(f"$.{field}"))


def usage_frame(view: ViewFile) -> pl.LazyFrame:
    lf = scan_view(view)
    dtype = lf.collect_schema().get("CUSTOM_TAGS", pl.String())
    tags = (parse_labels(pl.col("CUSTOM_TAGS"), dtype) if "CUSTOM_TAGS" in view.columns
            else pl.lit(None, pl.Map(pl.String, pl.String)))
    tag_text = (text(pl.col("CUSTOM_TAGS")) if "CUSTOM_TAGS" in view.columns and dtype == pl.String()
                else pl.lit(None, pl.String))
    start = typed_timestamp(view, lf, "USAGE_START_TIME")
    return lf.select(
        pl.col("x_SourceRow"),
        text(pl.col("RECORD_ID")).alias("record_id"),
        text(col_or_null(view, "ACCOUNT_ID")).alias("account"),
        text(col_or_null(view, "WORKSPACE_ID")).alias("workspace_id"),
        text(pl.col("SKU_NAME")).alias("sku_name"),
        text(col_or_null(view, "CLOUD")).alias("cloud"),
        start.alias("usage_start_time"),
        typed_timestamp(view, lf, "USAGE_END_TIME").alias("usage_end_time"),
        pl.coalesce(typed_timestamp(view, lf, "USAGE_DATE").dt.date(), start.dt.date()).alias("usage_date"),
        text(pl.col("USAGE_UNIT")).alias("usage_unit"),
        decimal(pl.col("USAGE_QUANTITY")).alias("usage_quantity"),
        text(col_or_null(view, "RECORD_TYPE")).str.to_uppercase().fill_null("ORIGINAL").alias("record_type"),
        pl.coalesce([_struct_field(view, lf, "USAGE_METADATA", k) for k in RESOURCE_KEYS])
        .alias("warehouse"),
        _struct_field(view, lf, "IDENTITY_METADATA", "run_as").alias("user_name"),
        tags.alias("tags"),
        tag_text.alias("query_tag"),
        text(col_or_null(view, "BILLING_ORIGIN_PRODUCT")).alias("product"),
        typed_timestamp(view, lf, "INGESTION_DATE").dt.date().alias("ingestion_date"),
    ).with_columns(
        # Parquet exports keep custom_tags as a map: its text for the rules is its JSON.
        pl.when(pl.col("query_tag").is_null() & pl.col("tags").is_not_null())
        .then(pl.col("tags").map.entries().list.eval(
            pl.concat_str(pl.element().struct.field("key"), pl.lit("="),
                          pl.element().struct.field("value"))).list.join(";"))
        .otherwise(pl.col("query_tag")).alias("query_tag"))


def _price(view: ViewFile, lf: pl.LazyFrame) -> pl.Expr:
    """``pricing.effective_list.default``, else ``pricing.default``, else a flat price."""
    candidates: list[pl.Expr] = []
    for flat in ("PRICING.EFFECTIVE_LIST.DEFAULT", "PRICING.DEFAULT", "PRICE"):
        if flat in view.columns:
            candidates.append(decimal(pl.col(flat)))
    if "PRICING" in view.columns:
        dtype = lf.collect_schema()["PRICING"]
        if isinstance(dtype, pl.Struct):
            fields = {f.name: f.dtype for f in dtype.fields}
            effective = fields.get("effective_list")
            if isinstance(effective, pl.Struct) and "default" in {f.name for f in effective.fields}:
                candidates.insert(0, decimal(pl.col("PRICING").struct.field("effective_list")
                                             .struct.field("default")))
            if "default" in fields:
                candidates.insert(1 if candidates else 0,
                                  decimal(pl.col("PRICING").struct.field("default")))
        else:
            raw = pl.col("PRICING").cast(pl.String)
            candidates[:0] = [decimal(raw.str.json_path_match("$.effective_list.default")),
                              decimal(raw.str.json_path_match("$.default"))]
    if not candidates:
        raise BadInputError.missing_columns(view.label, ["PRICING"], list(view.columns),
                                            what=WHAT.format(view=LIST_PRICES))
    return pl.coalesce(candidates)


def prices_frame(view: ViewFile) -> pl.LazyFrame:
    lf = scan_view(view)
    return lf.select(
        pl.col("x_SourceRow"),
        text(pl.col("SKU_NAME")).alias("sku_name"),
        text(col_or_null(view, "CLOUD")).alias("cloud"),
        text(col_or_null(view, "CURRENCY_CODE")).str.to_uppercase().fill_null("USD").alias("currency"),
        text(pl.col("USAGE_UNIT")).alias("usage_unit"),
        typed_timestamp(view, lf, "PRICE_START_TIME").alias("price_start_time"),
        typed_timestamp(view, lf, "PRICE_END_TIME").alias("price_end_time"),
        _price(view, lf).alias("price"),
    )


def _views(root: Path, view: str, *, optional: bool = False) -> list[ViewFile]:
    files = find_view_files(root, view)
    if not files and not optional:
        raise BadInputError(f"{root}: no {view}.csv or {view}.parquet",
                            hint=f"Export system.billing.{view} to {root / (view + '.csv')}.")
    return [open_view_file(p, root, required=REQUIRED[view], what=WHAT.format(view=view))
            for p in files]


def collect_databricks_files(wh: Warehouse, state: State, path: Path, *,
                             max_rejected_share: float = 0.01) -> CollectResult:
    """Load system.billing.usage and list_prices exports from ``path`` (a folder)."""
    usage = _views(path, USAGE)
    prices = _views(path, LIST_PRICES)
    usage_schema = {**DBX_USAGE_SCHEMA, "query_tag": pl.String(), "ingestion_date": pl.Date(),
                    "x_SourceRow": pl.Int64()}
    tables = [
        Table(DBX_USAGE, conform(usage_frame(v), usage_schema), ("record_id",),
              month_expr("usage_date"),
              ("record_id", "sku_name", "usage_start_time", "usage_date", "usage_quantity"), v.label,
              cursor=("usage", pl.coalesce(pl.col("ingestion_date"), pl.col("usage_date"))))
        for v in usage
    ]
    tables += [
        Table(DBX_PRICES, conform(prices_frame(v), {**DBX_PRICES_SCHEMA, "x_SourceRow": pl.Int64()}),
              ("sku_name", "usage_unit", "currency", "price_start_time"), pl.lit(None, pl.String),
              ("sku_name", "usage_unit", "price_start_time", "price"), v.label, monthly=False)
        for v in prices
    ]
    return load_tables(wh, state, source=SOURCE, tables=tables, inputs=[t.label for t in tables],
                       max_rejected_share=max_rejected_share)


# ---- live --------------------------------------------------------------------------------
def fetch_live(settings: DatabricksSettings, out: Path, since: str) -> None:
    """Read system.billing.usage (ingested since ``since``) and list_prices into ``out``."""
    missing = [n for n in ("host", "http_path", "token") if getattr(settings, n) is None]
    if missing:
        raise ConfigError(
            "Databricks live collection needs " + ", ".join(missing),
            hint="Set " + ", ".join(f"FINOPS_DATABRICKS__{n.upper()}" for n in missing)
            + ", or use --path with exported tables.")
    try:
        from databricks import sql  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError("the Databricks SQL connector is not installed",
                          hint="pip install 'finops-toolkit[databricks]'") from None
    import pyarrow.parquet as pq

    assert settings.token is not None
    with sql.connect(server_hostname=settings.host, http_path=settings.http_path,
                     access_token=settings.token.get_secret_value()) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM system.billing.usage WHERE ingestion_date >= :since",
                    {"since": since})
        pq.write_table(cur.fetchall_arrow(), out / "usage.parquet")
        cur.execute("SELECT * FROM system.billing.list_prices")
        pq.write_table(cur.fetchall_arrow(), out / "list_prices.parquet")


def collect_databricks_live(wh: Warehouse, state: State, *, overlap: timedelta = DEFAULT_OVERLAP,
                            max_rejected_share: float = 0.01) -> CollectResult:
    since = window_start(state, SOURCE, "usage", overlap=overlap).date().isoformat()
    with tempfile.TemporaryDirectory(prefix="finops-databricks-") as tmp:
        fetch_live(DatabricksSettings(), Path(tmp), since)
        return collect_databricks_files(wh, state, Path(tmp), max_rejected_share=max_rejected_share)
