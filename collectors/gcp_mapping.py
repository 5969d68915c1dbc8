"""The Google Cloud Billing export, row for row, as FOCUS 1.2.

Input is the standard (``gcp_billing_export_v1_*``) or detailed
(``gcp_billing_export_resource_v1_*``) usage cost export, read from BigQuery or from files
written from it: JSON lines as ``bq extract --destination_format NEWLINE_DELIMITED_JSON``
writes them (nested), Parquet (nested) or CSV (flattened: ``service.description`` or
``service_description`` columns, repeated fields such as ``credits`` as JSON text).

Every input is first rewritten as one *canonical* Parquet file: flat columns named like
the export's field paths (``service.description``), every scalar as text (numbers keep
the digits the export wrote), the repeated fields as lists of structs of text. The
mapping below then works on that one shape, whatever the input format.

Mapping choices (see also ``collectors/gcp.py``):

- **Credits are netted** into the row they discount: ``BilledCost = cost + Σ credits.amount``
  (Google's invoice total is exactly that sum). Each export row stays one FOCUS row, so
  lineage (``x_SourceRow``) stays one to one and a credit lands on the project, labels
  and resource of the usage it discounts. The gross ``cost`` is kept in ``x_Cost``, the
  credit sum in ``x_CreditsAmount`` and the credits themselves as JSON in ``x_Credits``.
  ChargeCategory is never ``Credit``.
- **Committed use discounts**: the commitment fee rows (SKU ``Commitment…``) are
  ``Purchase``/``Recurring`` with BilledCost the fee. The usage they cover carries a
  ``COMMITTED_USAGE_DISCOUNT`` (resource-based) or ``…_DOLLAR_BASE`` (spend-based) credit,
  so its BilledCost is about zero. EffectiveCost amortises the fee: within a pool
  (billing account, invoice month, currency, CUD type and, for resource-based CUDs, the
  region) the fee is spread over the covered usage in proportion to each row's CUD
  credit, and the fee rows' EffectiveCost drops by the same amount. The sum of
  EffectiveCost per period and currency equals the sum of BilledCost exactly (the
  rounding remainder stays on one fee row). A pool with a fee but no covered usage keeps
  the fee as the fee rows' EffectiveCost (an unused commitment).
- **Tags**: the row's own ``labels``, then resource manager ``tags`` (by key), then the
  project's labels *inherited* for keys the row does not have itself. ``x_ProjectLabels``
  keeps the project labels as they are, ``x_SystemLabels`` the system labels.
- ``invoice.month`` (YYYYMM) gives the billing period: Google's invoice months run from
  midnight America/Los_Angeles, so BillingPeriodStart is that instant in UTC.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from polars.datatypes import DataTypeClass

from collectors.files import find_files
from finops import parse
from finops.errors import BadInputError
from finops.focus import MONEY, TAGS, TIMESTAMP
from finops.ingest import (
    PERIOD,
    REJECT,
    ensure_focus_columns,
    focus_row_reasons,
    period_of,
    reason_if,
    reject_reason,
)
from finops.lookup import mapped

WHAT = ("Google Cloud Billing export (standard or detailed usage cost, as JSON lines, "
        "CSV or Parquet)")
PROVIDER = "Google Cloud"
BILLING_TZ = "America/Los_Angeles"

S = pl.String()
DType = pl.DataType | DataTypeClass
KV_FIELDS = ("key", "value")
TAG_FIELDS = ("key", "value", "inherited", "namespace")
CREDIT_FIELDS = ("name", "amount", "full_name", "id", "type")

TEXT_FIELDS: tuple[str, ...] = (
    "billing_account_id",
    "service.id", "service.description",
    "sku.id", "sku.description",
    "usage_start_time", "usage_end_time",
    "project.id", "project.number", "project.name", "project.ancestry_numbers",
    "location.location", "location.country", "location.region", "location.zone",
    "resource.name", "resource.global_name",
    "export_time",
    "cost", "currency", "currency_conversion_rate",
    "usage.amount", "usage.unit", "usage.amount_in_pricing_units", "usage.pricing_unit",
    "invoice.month", "invoice.publisher_type",
    "cost_type",
    "adjustment_info.id", "adjustment_info.description", "adjustment_info.mode",
    "adjustment_info.type",
    "price.effective_price", "price.tier_start_amount", "price.unit",
    "price.pricing_unit_quantity", "price.list_price",
    "cost_at_list",
    "transaction_type", "seller_name",
    "subscription.instance_id",
    "consumption_model.id", "consumption_model.description",
)
LIST_FIELDS: dict[str, tuple[str, ...]] = {
    "labels": KV_FIELDS,
    "system_labels": KV_FIELDS,
    "project.labels": KV_FIELDS,
    "tags": TAG_FIELDS,
    "credits": CREDIT_FIELDS,
}
ROW = "x_SourceRow"
CANONICAL = pl.Schema({
    **dict.fromkeys(TEXT_FIELDS, S),
    **{name: pl.List(pl.Struct(dict.fromkeys(fields, S))) for name, fields in LIST_FIELDS.items()},
    ROW: pl.Int64(),
})
# Without these no row can be placed in time and money.
REQUIRED_FIELDS = ("billing_account_id", "service.description", "cost", "currency",
                   "usage_start_time", "usage_end_time", "invoice.month")
# A flattened file (CSV, Parquet) names every column it has, so a missing credits column
# means the credits were left out of the export: the totals would be wrong.
REQUIRED_FLAT = (*REQUIRED_FIELDS, "credits")

CUD_RESOURCE = "COMMITTED_USAGE_DISCOUNT"
CUD_SPEND = "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE"
CUD_TYPES = (CUD_RESOURCE, CUD_SPEND)
COST_TYPES = ("regular", "tax", "adjustment", "rounding_error")

JSON_SUFFIXES = (".json", ".jsonl", ".ndjson", ".json.gz", ".jsonl.gz", ".ndjson.gz")
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet",)
SUFFIXES = JSON_SUFFIXES + CSV_SUFFIXES + PARQUET_SUFFIXES
SAMPLE_LINES = 1000


# ---- lookups ------------------------------------------------------------------------
@cache
def _lookup(name: str, key: str, value: str) -> dict[str, str]:
    text = resources.files("collectors.gcp_data").joinpath(name).read_text(encoding="utf-8")
    return {row[key]: row[value] for row in csv.DictReader(text.splitlines())}


def service_categories() -> dict[str, str]:
    """service.description → FOCUS ServiceCategory (focus_converters' table, MIT)."""
    return _lookup("gcp_category_mapping.csv", "ConsumedService", "ServiceCategory")


def region_names() -> dict[str, str]:
    return _lookup("gcp_regions.csv", "RegionId", "RegionName")


# ---- finding and reading files -------------------------------------------------------
def find_export_files(path: Path) -> list[Path]:
    return find_files(path, what=WHAT, suffixes=SUFFIXES, kinds="JSON lines, CSV or Parquet")


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(JSON_SUFFIXES):
        return "json"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return "parquet"


def _nested_schema() -> dict[str, pl.DataType]:
    tree: dict[str, Any] = {}
    for name, dtype in CANONICAL.items():
        if name == ROW:
            continue
        head, _, tail = name.partition(".")
        if tail:
            tree.setdefault(head, {})[tail] = dtype
        else:
            tree[head] = dtype
    return {k: pl.Struct(v) if isinstance(v, dict) else v for k, v in tree.items()}


NESTED = _nested_schema()


def _conform(expr: pl.Expr, actual: DType, target: DType) -> pl.Expr:
    """``expr`` of type ``actual`` reshaped to ``target``: fields by name, scalars as text."""
    if isinstance(target, pl.Struct):
        if not isinstance(actual, pl.Struct):
            return pl.lit(None, target)
        have = {f.name: f.dtype for f in actual.fields}
        return pl.struct([
            (_conform(expr.struct.field(f.name), have[f.name], f.dtype) if f.name in have
             else pl.lit(None, f.dtype)).alias(f.name)
            for f in target.fields
        ])
    if isinstance(target, pl.List):
        if not isinstance(actual, pl.List | pl.Array):
            return pl.lit(None, target)
        return expr.list.eval(_conform(pl.element(), actual.inner, target.inner))
    if actual == pl.String:
        return expr
    if isinstance(actual, pl.Datetime):
        utc = expr.dt.convert_time_zone("UTC") if actual.time_zone else expr.dt.replace_time_zone("UTC")
        return utc.dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    if actual.is_nested():
        return pl.lit(None, S)
    return expr.cast(pl.String)


def _flat_from_nested(schema: pl.Schema) -> list[pl.Expr]:
    out = []
    for name, dtype in CANONICAL.items():
        if name == ROW:
            continue
        head, _, tail = name.partition(".")
        if head not in schema:
            out.append(pl.lit(None, dtype).alias(name))
            continue
        actual = schema[head]
        if not tail:
            out.append(_conform(pl.col(head), actual, dtype).alias(name))
            continue
        if not isinstance(actual, pl.Struct):
            out.append(pl.lit(None, dtype).alias(name))
            continue
        fields = {f.name: f.dtype for f in actual.fields}
        if tail not in fields:
            out.append(pl.lit(None, dtype).alias(name))
        else:
            out.append(_conform(pl.col(head).struct.field(tail), fields[tail], dtype).alias(name))
    return out


def _flat_keys(value: Any, prefix: str = "") -> set[str]:
    keys: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if v is None:
                continue
            name = f"{prefix}{k}"
            keys.add(name)
            if isinstance(v, dict) and not prefix:
                keys |= _flat_keys(v, f"{name}.")
    return keys


def _json_fields(path: Path) -> list[str]:
    """Field paths present (non-null) in the first lines of a JSON lines file."""
    seen: set[str] = set()
    try:
        with path.open("rt", encoding="utf-8") as fh:
            n = 0
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BadInputError(
                        f"{path.name}: line {number} is not JSON ({exc.msg})",
                        hint="Export with --destination_format NEWLINE_DELIMITED_JSON: one JSON "
                        "object per line.",
                    ) from None
                if not isinstance(record, dict):
                    raise BadInputError(
                        f"{path.name}: line {number} is not a JSON object",
                        hint="Each line must be one billing export row as a JSON object.",
                    )
                seen |= _flat_keys(record)
                n += 1
                if n >= SAMPLE_LINES:
                    break
    except UnicodeDecodeError:
        raise BadInputError(f"{path.name}: cannot be read: not UTF-8 text",
                            hint="Give the JSON lines file as bq extract wrote it.") from None
    return sorted(seen)


def _csv_aliases(names: Sequence[str]) -> dict[str, str]:
    """CSV header name → canonical name (``service.description`` or ``service_description``)."""
    wanted = [*TEXT_FIELDS, *LIST_FIELDS]
    by_alias = {}
    for name in wanted:
        by_alias[name] = name
        by_alias[name.replace(".", "_")] = name
    return {n: by_alias[n] for n in names if n in by_alias}


def _parquet_fields(path: Path) -> list[str]:
    schema = pq.read_schema(path)
    out = []
    for field in schema:
        out.append(field.name)
        if hasattr(field.type, "num_fields") and field.type.num_fields and not hasattr(
            field.type, "value_type"
        ):
            out.extend(f"{field.name}.{field.type.field(i).name}" for i in range(field.type.num_fields))
    return out


def _decode_list_batch(fields: tuple[str, ...]) -> Callable[[pl.Series], pl.Series]:
    dtype = pl.List(pl.Struct(dict.fromkeys(fields, S)))

    def one(text: str | None) -> list[dict[str, str | None]] | None:
        if text is None or not text.strip():
            return None
        try:
            value = json.loads(text, parse_float=str, parse_int=str)
        except json.JSONDecodeError:
            return None
        if isinstance(value, dict) and fields == KV_FIELDS:
            # Labels written as one object, {"team": "a"}.
            value = [{"key": k, "value": v} for k, v in value.items()]
        if not isinstance(value, list):
            return None
        out = []
        for item in value:
            if not isinstance(item, dict):
                return None
            out.append({f: (None if item.get(f) is None else
                            item[f] if isinstance(item[f], str) else json.dumps(item[f]))
                        for f in fields})
        return out

    def batch(series: pl.Series) -> pl.Series:
        return pl.Series(series.name, [one(v) for v in series.to_list()], dtype=dtype)

    return batch


def _list_invalid(raw: pl.Expr, parsed: pl.Expr) -> pl.Expr:
    text = raw.str.strip_chars()
    return text.is_not_null() & (text.str.len_bytes() > 0) & parsed.is_null()


def scan_source(path: Path) -> tuple[pl.LazyFrame, list[str]]:
    """A plain (not gzip) export file as canonical columns, and notes about it.

    Raises :class:`BadInputError` naming the file and the required fields it lacks.
    """
    kind = _kind(path)
    notes: list[str] = []
    required: tuple[str, ...]
    try:
        if kind == "json":
            present = _json_fields(path)
            lf = pl.scan_ndjson(path, schema=NESTED, infer_schema_length=None)
            lf = lf.select(_flat_from_nested(lf.collect_schema()))
            required = REQUIRED_FIELDS
        elif kind == "parquet":
            present = _parquet_fields(path)
            lf = pl.scan_parquet(path)
            lf = lf.select(_flat_from_nested(lf.collect_schema()))
            required = REQUIRED_FLAT
        else:
            header = [n.strip().lstrip("\ufeff") for n in
                      pl.scan_csv(path, infer_schema=False, n_rows=0).collect_schema().names()]
            aliases = _csv_aliases(header)
            present = sorted(set(aliases.values()) | set(header))
            lf = pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy")
            raw_names = lf.collect_schema().names()
            lf = lf.rename({r: aliases[h] for r, h in zip(raw_names, header, strict=True)
                            if h in aliases})
            have = set(aliases.values())
            exprs = []
            for name, dtype in CANONICAL.items():
                if name == ROW:
                    continue
                if name not in have:
                    exprs.append(pl.lit(None, dtype).alias(name))
                elif name in LIST_FIELDS:
                    exprs.append(pl.col(name).map_batches(_decode_list_batch(LIST_FIELDS[name]),
                                                          return_dtype=dtype, is_elementwise=True)
                                 .alias(name))
                    exprs.append(pl.col(name).alias(f"__raw_{name}"))
                else:
                    exprs.append(parse.blank_to_null(pl.col(name)).alias(name))
            lf = lf.select(exprs)
            bad = [_list_invalid(pl.col(f"__raw_{n}"), pl.col(n)).alias(f"__bad_{n}")
                   for n in LIST_FIELDS if n in have]
            lf = lf.with_columns(bad).drop([f"__raw_{n}" for n in LIST_FIELDS if n in have])
            required = REQUIRED_FLAT
    except (OSError, pl.exceptions.PolarsError, ValueError) as exc:
        if isinstance(exc, BadInputError):
            raise
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInputError(f"{path.name}: cannot be read: {first}",
                            hint="Check that the file is a complete, uncorrupted export.") from None
    missing = [f for f in required if f not in present]
    if missing:
        looks_focus = {"BilledCost", "ChargePeriodStart"} <= set(present)
        err = BadInputError.missing_columns(path.name, missing, present, what=WHAT)
        if looks_focus:
            err.hint = "This looks like a FOCUS file: load it with `finops collect focus --path`."
        raise err
    if "cost_type" not in present and kind != "json":
        notes.append(f"{path.name}: no cost_type column: every row is taken as regular usage")
    schema_names = lf.collect_schema().names()
    if not any(n.startswith("__bad_") for n in schema_names):
        lf = lf.with_columns(pl.lit(None, S).alias("__bad_lists"))
    else:
        names = [n for n in schema_names if n.startswith("__bad_")]
        lf = lf.with_columns(
            pl.concat_str(
                [pl.when(pl.col(n)).then(pl.lit(f"{n.removeprefix('__bad_')}: not a JSON list"))
                 for n in names],
                separator="; ", ignore_nulls=True,
            ).alias("__bad_lists")
        ).drop(names)
        lf = lf.with_columns(
            pl.when(pl.col("__bad_lists").str.len_bytes() > 0).then(pl.col("__bad_lists"))
            .alias("__bad_lists")
        )
    lf = lf.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    return lf.select(*CANONICAL.names(), "__bad_lists"), notes


def write_canonical(src: Path, out: Path, scratch: Path) -> list[str]:
    """Rewrite one export file as a canonical Parquet file; return notes about it."""
    plain = src
    if src.name.lower().endswith(".gz"):
        plain = scratch / src.name[:-3]
        try:
            with gzip.open(src, "rb") as fin, plain.open("wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
        except (OSError, EOFError) as exc:
            raise BadInputError(f"{src.name}: cannot be read: {exc}",
                                hint="Download the export again; the gzip file is damaged.") from None
    elif _kind(src) == "parquet":
        with src.open("rb") as fh:
            if fh.read(4) != b"PAR1":
                raise BadInputError(
                    f"{src.name}: cannot be read: the name says Parquet but the content is not",
                    hint="Export the file again, or rename it to what it really is.")
    lf, notes = scan_source(plain)
    try:
        lf.sink_parquet(out, engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise BadInputError(f"{src.name}: cannot be read: {str(exc).splitlines()[0]}",
                            hint="Check that the file is a complete, uncorrupted export.") from None
    finally:
        if plain != src:
            plain.unlink(missing_ok=True)
    return notes


# ---- canonical → FOCUS ----------------------------------------------------------------
def _c(name: str) -> pl.Expr:
    return pl.col(name)


def _time_batch(series: pl.Series) -> pl.Series:
    text = series.str.strip_chars().str.replace(r"\s*UTC$", "Z")
    # The shapes the export and this module write, parsed in one pass; anything else
    # goes through the general parser.
    fast = text.str.replace("T", " ", literal=True).str.to_datetime(
        "%Y-%m-%d %H:%M:%S%.fZ", strict=False, time_unit="us", time_zone="UTC")
    if bool((fast.is_null() & text.is_not_null()).any()):
        slow = pl.select(parse.timestamp(pl.lit(text))).to_series()
        fast = fast.fill_null(slow)
    return fast.cast(TIMESTAMP).rename(series.name)


def gcp_time(expr: pl.Expr) -> pl.Expr:
    """Export timestamps: ``2024-01-01 00:00:00 UTC`` (bq extract), ISO 8601, or parsed.

    Row by row, so declared elementwise: an undeclared batch function is a whole-column
    node that makes the streaming engine buffer every row before it.
    """
    return expr.map_batches(_time_batch, return_dtype=TIMESTAMP, is_elementwise=True)


def _credit_amounts() -> pl.Expr:
    return _c("credits").list.eval(parse.money(pl.element().struct.field("amount")))


def _credit_sum(types: Sequence[str] | None = None) -> pl.Expr:
    elem = pl.element()
    if types is None:
        picked = parse.money(elem.struct.field("amount"))
    else:
        picked = parse.money(elem.filter(elem.struct.field("type").is_in(list(types)))
                             .struct.field("amount"))
    return _c("credits").list.eval(picked).list.sum().fill_null(0).cast(MONEY)


def _first_cud(field: str) -> pl.Expr:
    elem = pl.element()
    return _c("credits").list.eval(
        elem.filter(elem.struct.field("type").is_in(list(CUD_TYPES))).struct.field(field)
    ).list.first()


SEP = "\x1f"  # never in a label or tag key (Google allows [a-z0-9_-] and a few more)


def _entries(name: str) -> pl.Expr:
    """A repeated key/value field as ``key<SEP>value`` texts, capped in length.

    Text lists concatenate and deduplicate far faster in Polars than lists of structs.
    """
    elem = pl.element().struct
    return _c(name).list.eval(
        pl.concat_str(elem.field("key").str.slice(0, parse.MAX_TAG_KEY), pl.lit(SEP),
                      elem.field("value").str.slice(0, parse.MAX_TAG_VALUE))
    ).fill_null(pl.lit([], pl.List(S)))


def _first_key_wins(series: pl.Series) -> pl.Series:
    keys = series.list.eval(pl.element().str.split(SEP).list.first())
    dup = (keys.list.n_unique() < series.list.len()).fill_null(False)
    if not dup.any():
        return series
    idx = dup.arg_true()
    fixed = series.gather(idx).list.eval(
        pl.element().filter(pl.element().str.split(SEP).list.first().is_first_distinct()))
    keep = (~dup).arg_true()
    parts = pl.concat([pl.DataFrame({"i": keep, "v": series.gather(keep)}),
                       pl.DataFrame({"i": idx, "v": fixed})])
    return parts.sort("i")["v"].rename(series.name)


def _as_map(entries: pl.Expr) -> pl.Expr:
    """``key<SEP>value`` texts to a tag map, the first entry of a key winning; null if empty."""
    unique = entries.map_batches(_first_key_wins, return_dtype=pl.List(S), is_elementwise=True)
    pairs = unique.list.eval(pl.element().str.split_exact(SEP, 1).struct.rename_fields(["key", "value"]))
    return pl.when(unique.list.len() > 0).then(pairs).otherwise(None).cast(TAGS)


def _json_list(name: str) -> pl.Expr:
    """A repeated field as JSON text (null when empty), for x_ columns."""
    body = _c(name).list.eval(pl.element().struct.json_encode()).list.join(",")
    return pl.when(_c(name).list.len() > 0).then(pl.concat_str(pl.lit("["), body, pl.lit("]")))


POOL_KEY = ("BillingAccountId", "x_InvoiceMonth", "BillingCurrency", "_g_region_key", "_g_family")
HELPERS = ("_g_fee", "_g_family", "_g_region_key", "_g_cud", "_g_cost")


def focus_frame(
    canonical: pl.LazyFrame,
    *,
    label: str,
    prices: pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """FOCUS columns, lineage and ``x_RejectReason`` for canonical rows, before CUD
    amortisation (EffectiveCost = BilledCost), with the ``_g_`` helper columns."""
    cost_raw = parse.blank_to_null(_c("cost"))
    cost = parse.money(cost_raw)
    amounts = _credit_amounts()
    credits_bad = (
        _c("credits").list.eval(
            parse.money(pl.element().struct.field("amount")).is_null()
            & pl.element().struct.field("amount").is_not_null()
        ).list.any().fill_null(False)
    )
    bad_amount = _c("credits").list.eval(
        pl.element().struct.field("amount").filter(
            parse.money(pl.element().struct.field("amount")).is_null()
            & pl.element().struct.field("amount").is_not_null()
        )
    ).list.first()
    credits_total = amounts.list.sum().fill_null(0).cast(MONEY)
    cost_type = parse.blank_to_null(_c("cost_type")).str.to_lowercase()
    month_raw = parse.blank_to_null(_c("invoice.month"))
    month_ok = month_raw.str.contains(r"^\d{6}$").fill_null(False)
    month_date = pl.when(month_ok).then(
        pl.concat_str(month_raw, pl.lit("01")).str.to_date("%Y%m%d", strict=False)
    )
    period_start = (month_date.cast(pl.Datetime("us")).dt.replace_time_zone(BILLING_TZ)
                    .dt.convert_time_zone("UTC").cast(TIMESTAMP))
    period_end = (month_date.dt.offset_by("1mo").cast(pl.Datetime("us"))
                  .dt.replace_time_zone(BILLING_TZ).dt.convert_time_zone("UTC").cast(TIMESTAMP))
    sku = parse.blank_to_null(_c("sku.description"))
    is_regular = cost_type.is_null() | (cost_type == "regular")
    is_fee = is_regular & sku.str.contains(r"(?i)^\s*commitment").fill_null(False)
    fee_family = pl.when(sku.str.contains(r"(?i)dollar|spend")).then(pl.lit(CUD_SPEND)).otherwise(
        pl.lit(CUD_RESOURCE))
    cud_type = _first_cud("type")
    category = (
        pl.when(is_fee).then(pl.lit("Purchase"))
        .when(is_regular).then(pl.lit("Usage"))
        .when(cost_type == "tax").then(pl.lit("Tax"))
        .when(cost_type.is_in(["adjustment", "rounding_error"])).then(pl.lit("Adjustment"))
        .otherwise(None)
    )
    adjustment = pl.any_horizontal(
        parse.blank_to_null(_c(f"adjustment_info.{f}")).is_not_null()
        for f in ("id", "description", "mode", "type")
    )
    region = parse.blank_to_null(_c("location.region"))
    global_name = parse.blank_to_null(_c("resource.global_name"))
    resource_name = parse.blank_to_null(_c("resource.name"))
    service = parse.blank_to_null(_c("service.description"))
    amount_pricing = parse.quantity(_c("usage.amount_in_pricing_units"))
    list_price = parse.money(parse.blank_to_null(_c("price.list_price")))
    effective_price = parse.money(parse.blank_to_null(_c("price.effective_price")))
    cost_at_list = parse.money(parse.blank_to_null(_c("cost_at_list")))
    transaction = parse.blank_to_null(_c("transaction_type"))
    seller = parse.blank_to_null(_c("seller_name"))
    tier = parse.quantity(_c("price.tier_start_amount"))
    sku_id = parse.blank_to_null(_c("sku.id"))
    spot = sku.str.contains(r"(?i)\b(spot|preemptible)\b").fill_null(False)

    lf = canonical.with_columns(
        cost.alias("_g_cost"),
        credits_total.alias("x_CreditsAmount"),
        _credit_sum(CUD_TYPES).alias("_g_cud"),
        cud_type.alias("_g_cud_type"),
        _first_cud("id").alias("_g_cud_id"),
        pl.coalesce(_first_cud("full_name"), _first_cud("name")).alias("_g_cud_name"),
        is_fee.alias("_g_fee"),
        category.alias("ChargeCategory"),
        cost_type.alias("x_CostType"),
        credits_bad.alias("_g_credits_bad"),
        bad_amount.alias("_g_bad_amount"),
    )
    lf = lf.with_columns(
        (pl.col("_g_cost") + pl.col("x_CreditsAmount")).alias("BilledCost"),
        pl.when(pl.col("_g_fee")).then(fee_family).otherwise(pl.col("_g_cud_type"))
        .alias("_g_family"),
    )
    has_cud = pl.col("_g_cud_type").is_not_null() & (pl.col("ChargeCategory") == "Usage")
    commitment_id = (
        pl.when(pl.col("_g_fee")).then(
            pl.coalesce(parse.blank_to_null(_c("subscription.instance_id")), global_name, resource_name))
        .when(has_cud).then(
            pl.coalesce(parse.blank_to_null(_c("subscription.instance_id")), pl.col("_g_cud_id")))
    )
    usage_like = pl.col("ChargeCategory").is_in(["Usage", "Purchase"])
    contracted = pl.col("_g_cost")
    catalog_price = pl.col("_c_unit_price") if prices is not None else pl.lit(None, MONEY)
    list_unit = pl.coalesce(list_price, catalog_price)
    list_from_price = pl.when(usage_like & amount_pricing.is_not_null()).then(
        (list_unit.cast(pl.Float64) * amount_pricing).cast(MONEY))
    if prices is not None:
        lf = lf.join(
            prices.lazy().select(
                pl.col("sku_id").alias("__sku"), pl.col("currency").alias("__cur"),
                pl.col("unit_price").cast(MONEY).alias("_c_unit_price"),
            ),
            left_on=[parse.blank_to_null(_c("sku.id")), parse.blank_to_null(_c("currency"))],
            right_on=["__sku", "__cur"], how="left", maintain_order="left",
        )
    lf = lf.with_columns(
        pl.col("BilledCost").alias("EffectiveCost"),
        contracted.alias("ContractedCost"),
        effective_price.alias("ContractedUnitPrice"),
        pl.coalesce(cost_at_list, list_from_price, contracted).alias("ListCost"),
        pl.when(cost_at_list.is_not_null()).then(pl.lit("export"))
        .when(list_from_price.is_not_null() & list_price.is_not_null()).then(pl.lit("export_price"))
        .when(list_from_price.is_not_null()).then(pl.lit("catalog"))
        .when(contracted.is_not_null()).then(pl.lit("cost")).alias("x_ListCostSource"),
        pl.when(usage_like).then(list_unit).alias("ListUnitPrice"),
        parse.blank_to_null(_c("billing_account_id")).alias("BillingAccountId"),
        pl.lit("Billing Account").alias("BillingAccountType"),
        parse.blank_to_null(_c("currency")).alias("BillingCurrency"),
        period_start.alias("BillingPeriodStart"),
        period_end.alias("BillingPeriodEnd"),
        pl.when(pl.col("x_CostType") == "adjustment").then(
            pl.when(adjustment).then(pl.lit("Correction"))).alias("ChargeClass"),
        sku.alias("ChargeDescription"),
        pl.when(pl.col("ChargeCategory") == "Usage").then(pl.lit("Usage-Based"))
        .when(pl.col("ChargeCategory") == "Purchase").then(pl.lit("Recurring"))
        .when(pl.col("ChargeCategory").is_not_null()).then(pl.lit("One-Time"))
        .alias("ChargeFrequency"),
        gcp_time(_c("usage_start_time")).alias("ChargePeriodStart"),
        gcp_time(_c("usage_end_time")).alias("ChargePeriodEnd"),
        pl.when(pl.col("_g_family") == CUD_SPEND).then(pl.lit("Spend"))
        .when(pl.col("_g_family") == CUD_RESOURCE).then(pl.lit("Usage"))
        .alias("CommitmentDiscountCategory"),
        commitment_id.alias("CommitmentDiscountId"),
        pl.when(pl.col("_g_fee")).then(pl.coalesce(resource_name, sku))
        .when(has_cud).then(pl.col("_g_cud_name")).alias("CommitmentDiscountName"),
        pl.when(commitment_id.is_not_null() & has_cud).then(pl.lit("Used"))
        .alias("CommitmentDiscountStatus"),
        pl.when(pl.col("_g_family") == CUD_SPEND).then(pl.lit("Committed Use Discount (spend-based)"))
        .when(pl.col("_g_family") == CUD_RESOURCE).then(pl.lit("Committed Use Discount"))
        .alias("CommitmentDiscountType"),
        pl.when(pl.col("ChargeCategory") == "Usage").then(parse.quantity(_c("usage.amount")))
        .alias("ConsumedQuantity"),
        pl.when(pl.col("ChargeCategory") == "Usage").then(parse.blank_to_null(_c("usage.unit")))
        .alias("ConsumedUnit"),
        pl.lit(PROVIDER).alias("InvoiceIssuerName"),
        pl.when(usage_like).then(
            pl.when(pl.col("_g_fee") | pl.col("_g_cud_type").is_not_null()).then(pl.lit("Committed"))
            .when(spot).then(pl.lit("Dynamic"))
            .otherwise(pl.lit("Standard"))
        ).alias("PricingCategory"),
        pl.when(usage_like).then(amount_pricing).alias("PricingQuantity"),
        pl.when(usage_like).then(parse.blank_to_null(_c("usage.pricing_unit"))).alias("PricingUnit"),
        parse.blank_to_null(_c("currency")).alias("PricingCurrency"),
        pl.lit(PROVIDER).alias("ProviderName"),
        pl.when(transaction.is_null() | (transaction == "GOOGLE")).then(pl.lit(PROVIDER))
        .otherwise(pl.coalesce(seller, pl.lit(PROVIDER))).alias("PublisherName"),
        region.alias("RegionId"),
        mapped(region, region_names(), return_dtype=S).alias("RegionName"),
        parse.blank_to_null(_c("location.zone")).alias("AvailabilityZone"),
        pl.coalesce(global_name, resource_name).alias("ResourceId"),
        resource_name.alias("ResourceName"),
        pl.when(global_name.is_not_null()).then(
            pl.concat_str(
                global_name.str.extract(r"^//([^/]+)/", 1),
                global_name.str.extract(r"/([^/]+)/[^/]+$", 1),
                separator="/",
            )
        ).alias("ResourceType"),
        mapped(service, service_categories(), default="Other", return_dtype=S)
        .alias("ServiceCategory"),
        service.alias("ServiceName"),
        sku_id.alias("SkuId"),
        pl.when(sku_id.is_not_null() & usage_like).then(
            pl.concat_str(sku_id, pl.lit("/"), tier.fill_null(0).cast(S))).alias("SkuPriceId"),
        parse.blank_to_null(_c("project.id")).alias("SubAccountId"),
        parse.blank_to_null(_c("project.name")).alias("SubAccountName"),
        pl.when(parse.blank_to_null(_c("project.id")).is_not_null()).then(pl.lit("Project"))
        .alias("SubAccountType"),
        _as_map(pl.concat_list(_entries("labels"), _entries("tags"), _entries("project.labels")))
        .alias("Tags"),
        # Provider columns with no FOCUS home.
        pl.col("_g_cost").alias("x_Cost"),
        _json_list("credits").alias("x_Credits"),
        parse.blank_to_null(_c("service.id")).alias("x_ServiceId"),
        parse.blank_to_null(_c("project.number")).alias("x_ProjectNumber"),
        parse.blank_to_null(_c("project.ancestry_numbers")).alias("x_ProjectAncestryNumbers"),
        _as_map(_entries("project.labels")).alias("x_ProjectLabels"),
        _as_map(_entries("system_labels")).alias("x_SystemLabels"),
        _json_list("tags").alias("x_ResourceManagerTags"),
        parse.blank_to_null(_c("location.location")).alias("x_Location"),
        parse.blank_to_null(_c("location.country")).alias("x_Country"),
        parse.quantity(_c("currency_conversion_rate")).alias("x_CurrencyConversionRate"),
        gcp_time(_c("export_time")).alias("x_ExportTime"),
        month_raw.alias("x_InvoiceMonth"),
        parse.blank_to_null(_c("invoice.publisher_type")).alias("x_InvoicePublisherType"),
        parse.blank_to_null(_c("adjustment_info.id")).alias("x_AdjustmentId"),
        parse.blank_to_null(_c("adjustment_info.description")).alias("x_AdjustmentDescription"),
        parse.blank_to_null(_c("adjustment_info.mode")).alias("x_AdjustmentMode"),
        parse.blank_to_null(_c("adjustment_info.type")).alias("x_AdjustmentType"),
        tier.alias("x_PriceTierStartAmount"),
        parse.blank_to_null(_c("price.unit")).alias("x_PriceUnit"),
        parse.quantity(_c("price.pricing_unit_quantity")).alias("x_PricingUnitQuantity"),
        transaction.alias("x_TransactionType"),
        seller.alias("x_SellerName"),
        parse.blank_to_null(_c("consumption_model.id")).alias("x_ConsumptionModelId"),
        parse.blank_to_null(_c("consumption_model.description")).alias("x_ConsumptionModelDescription"),
        pl.lit(label).alias("x_SourceFile"),
        pl.when(pl.col("_g_family") == CUD_RESOURCE).then(region.fill_null("")).otherwise(pl.lit(""))
        .alias("_g_region_key"),
    )
    raw_money = (
        pl.when(pl.col("_g_cost").is_null()).then(cost_raw).otherwise(pl.col("_g_bad_amount"))
    )
    reasons = [
        reason_if(pl.col("_g_credits_bad"),
                  pl.format("credits: cannot read amount '{}'",
                            pl.col("_g_bad_amount").str.slice(0, 40))),
        pl.col("__bad_lists"),
        reason_if(month_raw.is_not_null() & ~month_ok,
                  pl.format("invoice.month: '{}' is not YYYYMM", month_raw.str.slice(0, 20))),
        reason_if(pl.col("ChargeCategory").is_null() & cost_type.is_not_null(),
                  pl.format("cost_type: '{}' is not regular, tax, adjustment or rounding_error",
                            cost_type.str.slice(0, 30))),
        *focus_row_reasons({"BilledCost": raw_money, "EffectiveCost": raw_money}),
    ]
    lf = lf.with_columns(reject_reason(reasons))
    lf = lf.with_columns(period_of().alias(PERIOD))
    keep = [*HELPERS]
    lf = ensure_focus_columns(lf.drop([c for c in canonical.collect_schema().names() if c != ROW]))
    names = lf.collect_schema().names()
    drop = [n for n in names if n.startswith(("_g_", "_c_", "__")) and n not in keep]
    return lf.drop(drop)


def pool_frame(frames: Sequence[pl.LazyFrame]) -> pl.DataFrame:
    """Per CUD pool: the fee, the CUD credit it covers, and where the remainder goes.

    ``frames`` are :func:`focus_frame` results, one per input in order, each with the
    ``_file`` index column. Only rows that will be stored count.
    """
    if not frames:
        return _empty_pools()
    rows = pl.concat(
        [f.select(*POOL_KEY, "_g_fee", "_g_cost", "_g_cud", ROW, "_file", REJECT) for f in frames],
        how="vertical_relaxed",
    ).filter(pl.col(REJECT).is_null() & pl.col("_g_family").is_not_null())
    fee = pl.col("_g_fee")
    pools = (
        rows.group_by(POOL_KEY)
        .agg(
            pl.col("_g_cost").filter(fee).sum().cast(MONEY).alias("_p_fee"),
            (-pl.col("_g_cud")).filter(~fee).sum().cast(MONEY).alias("_p_credit"),
            pl.col("_file").filter(fee).min().alias("_p_anchor_file"),
            pl.col(ROW).filter(fee & (pl.col("_file") == pl.col("_file").filter(fee).min()))
            .min().alias("_p_anchor_row"),
        )
        .filter((pl.col("_p_fee") != 0) & (pl.col("_p_credit") > 0))
    )
    shares = (
        rows.filter(~fee)
        .join(pools, on=list(POOL_KEY), how="inner", nulls_equal=True)
        .group_by(POOL_KEY)
        .agg(_share().sum().cast(MONEY).alias("_p_shares"))
    )
    out = pools.join(shares, on=list(POOL_KEY), how="left", nulls_equal=True).with_columns(
        pl.col("_p_shares").fill_null(0).cast(MONEY)
    )
    return out.collect(engine="streaming")


def _empty_pools() -> pl.DataFrame:
    return pl.DataFrame(schema={
        "BillingAccountId": S, "x_InvoiceMonth": S, "BillingCurrency": S, "_g_region_key": S,
        "_g_family": S, "_p_fee": MONEY, "_p_credit": MONEY, "_p_anchor_file": pl.Int64,
        "_p_anchor_row": pl.Int64, "_p_shares": MONEY,
    })


def _share() -> pl.Expr:
    """A covered usage row's part of its pool's fee (float weights, rounded to MONEY)."""
    return (
        pl.col("_p_fee").cast(pl.Float64) * (-pl.col("_g_cud")).cast(pl.Float64)
        / pl.col("_p_credit").cast(pl.Float64)
    ).cast(MONEY)


def amortise(frame: pl.LazyFrame, pools: pl.DataFrame, file_index: int) -> pl.LazyFrame:
    """EffectiveCost with commitment fees spread over the usage they cover."""
    lf = frame.join(pools.lazy(), on=list(POOL_KEY), how="left", nulls_equal=True,
                   maintain_order="left")
    in_pool = pl.col("_p_fee").is_not_null() & pl.col(REJECT).is_null()
    fee = pl.col("_g_fee")
    anchor = (pl.col("_p_anchor_file") == file_index) & (pl.col(ROW) == pl.col("_p_anchor_row"))
    share = pl.when(in_pool & ~fee).then(_share()).otherwise(pl.lit(0, MONEY))
    effective = (
        pl.when(in_pool & fee)
        .then(pl.col("BilledCost") - pl.col("_g_cost")
              + pl.when(anchor).then(pl.col("_p_fee") - pl.col("_p_shares"))
              .otherwise(pl.lit(0, MONEY)))
        .otherwise(pl.col("BilledCost") + share)
    ).cast(MONEY)
    lf = lf.with_columns(effective.alias("EffectiveCost"))
    lf = lf.with_columns((pl.col("EffectiveCost") - pl.col("BilledCost")).cast(MONEY)
                         .alias("x_CommitmentAmortisedCost"))
    drop = [n for n in lf.collect_schema().names() if n.startswith(("_g_", "_p_"))]
    return lf.drop(drop)


def source_totals(canonical: pl.LazyFrame) -> pl.LazyFrame:
    """``cost + Σ credits.amount`` per invoice month and currency, straight from the
    export's own fields (a row whose money cannot be read counts nowhere)."""
    row_credit = _c("credits").list.eval(parse.money(pl.element().struct.field("amount")))
    credit_unreadable = (
        _c("credits").list.eval(
            parse.money(pl.element().struct.field("amount")).is_null()
            & pl.element().struct.field("amount").is_not_null()
        ).list.any().fill_null(False)
    )
    total = pl.when(credit_unreadable).then(None).otherwise(
        parse.money(parse.blank_to_null(_c("cost"))) + row_credit.list.sum().fill_null(0).cast(MONEY)
    )
    month = parse.blank_to_null(_c("invoice.month"))
    return (
        canonical.select(
            pl.when(month.str.contains(r"^\d{6}$")).then(
                pl.concat_str(month.str.slice(0, 4), pl.lit("-"), month.str.slice(4, 2))
            ).alias(PERIOD),
            parse.blank_to_null(_c("currency")).alias("BillingCurrency"),
            total.cast(MONEY).alias("BilledCost"),
        )
        .filter(pl.col(PERIOD).is_not_null())
        .group_by(PERIOD, "BillingCurrency")
        .agg(pl.col("BilledCost").sum(), pl.col("BilledCost").sum().alias("EffectiveCost"))
    )
