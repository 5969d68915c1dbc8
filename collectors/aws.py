"""``finops collect aws``: legacy CUR, CUR 2.0 Data Exports and AWS's FOCUS export.

The format is recognised from each file's columns:
- legacy CUR CSV (``lineItem/UnblendedCost``, ``resourceTags/user:team``) and its Athena
  Parquet flavour (``line_item_unblended_cost``, ``resource_tags_user_team``);
- CUR 2.0 (snake_case names; ``resource_tags``, ``product`` and ``cost_category`` maps);
- AWS's FOCUS 1.x export (FOCUS names), read by the FOCUS collector's rules.

Legacy names are first put in CUR 2.0's form, the way AWS itself does for Athena:
``lineItem/UsageAccountId`` → ``line_item_usage_account_id``, ``reservation/ReservationARN``
→ ``reservation_reservation_a_r_n``. One mapping then serves every CUR flavour.

How each line item type maps (see README "AWS mapping" for where this differs from
AWS's own FOCUS export, and why):

| LineItemType | ChargeCategory | ChargeClass | Frequency | EffectiveCost |
|---|---|---|---|---|
| Usage | Usage | | Usage-Based | unblended (net where present) |
| DiscountedUsage (RI) | Usage | | Usage-Based | reservation effective cost |
| SavingsPlanCoveredUsage | Usage | | Usage-Based | Savings Plan effective cost |
| SavingsPlanNegation | Usage | | Usage-Based | 0 |
| RIFee | Purchase | | Recurring | unused amortised upfront + unused recurring fee |
| SavingsPlanRecurringFee | Purchase | | Recurring | commitment to date − used commitment |
| SavingsPlanUpfrontFee | Purchase | | One-Time | 0 |
| Fee (with an RI ARN: upfront) | Purchase | | One-Time | 0 |
| Fee (other) | Purchase | | One-Time | unblended |
| Tax | Tax | | One-Time | unblended |
| Credit | Credit | | One-Time | unblended |
| Refund | Credit | Correction | One-Time | unblended |
| *Discount (EDP, bundled, private rate, distributor) | Credit | | Usage-Based | unblended |
| anything else | Adjustment | | One-Time | unblended |

BilledCost is the net unblended cost where the export has it, else the unblended cost.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import polars as pl

from collectors import focus as focus_collector
from collectors.files import columns_of, find_files, scan_text
from finops import parse
from finops.errors import BadInputError
from finops.focus import MONEY, RENAMED_COLUMNS, TAGS
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
from finops.lookup import mapped as lookup
from finops.state import State
from finops.warehouse import Warehouse

Format = Literal["focus", "cur"]
WHAT = "AWS Cost and Usage Report (CUR, CUR 2.0) or AWS FOCUS export"
CUR_REQUIRED = (
    "line_item_line_item_type", "line_item_unblended_cost", "line_item_usage_start_date",
    "line_item_usage_end_date", "line_item_currency_code", "bill_billing_period_start_date",
    "bill_billing_period_end_date", "bill_payer_account_id", "line_item_product_code",
)
LEGACY_TAG = re.compile(r"^resourceTags/(.+)$")
ATHENA_TAG = "resource_tags_"
DISCOUNT_TYPES = ("EdpDiscount", "BundledDiscount", "Discount", "PrivateRateDiscount",
                  "DistributorDiscount", "SppDiscount")


def snake(name: str) -> str:
    """A legacy CUR column name in CUR 2.0 / Athena form (``lineItem/UsageAccountId`` →
    ``line_item_usage_account_id``; every capital starts a word, as AWS does it)."""
    name = name.strip().lstrip("\ufeff")
    if "/" not in name and name == name.lower():
        return name
    out = re.sub(r"([A-Z])", r"_\1", name).lower().replace("/", "_")
    return re.sub(r"_+", "_", out).strip("_")


def detect(names: list[str]) -> Format | None:
    renamed = {RENAMED_COLUMNS.get(n, n) for n in names}
    if {"BilledCost", "ChargeCategory", "ChargePeriodStart"} <= renamed:
        return "focus"
    snaked = {snake(n) for n in names if not LEGACY_TAG.match(n)}
    if "line_item_unblended_cost" in snaked or "line_item_line_item_type" in snaked:
        return "cur"
    return None


def _check(path: Path) -> Format:
    names = columns_of(path)
    fmt = detect(names)
    if fmt is None:
        raise BadInputError(
            f"{path}: not a CUR, CUR 2.0 or FOCUS file: none of lineItem/UnblendedCost, "
            "line_item_unblended_cost or BilledCost is among its columns",
            hint=f"Point --path at a {WHAT}.",
        )
    if fmt == "cur":
        snaked = {snake(n) for n in names}
        missing = [c for c in CUR_REQUIRED if c not in snaked]
        if missing:
            raise BadInputError.missing_columns(str(path), missing, sorted(snaked), what=WHAT)
    else:
        focus_collector.check_header(path)
    return fmt


@cache
def _categories() -> dict[str, str]:
    text = resources.files("collectors.aws_data").joinpath("aws_category_mapping.csv").read_text()
    df = pl.read_csv(text.encode(), infer_schema=False)
    return dict(zip(df["product_code"].to_list(), df["ServiceCategory"].to_list(), strict=True))


def _tags(schema: pl.Schema) -> pl.Expr:
    """The resource tags as one map, whichever flavour the file has."""
    if "resource_tags" in schema and schema["resource_tags"] != pl.String:
        return pl.col("resource_tags").cast(TAGS, strict=False)
    if "resource_tags" in schema:
        return parse.tags_json(pl.col("resource_tags"))
    tag_cols = [(n, LEGACY_TAG.match(n)) for n in schema.names()]
    pairs = [(n, m.group(1)) for n, m in tag_cols if m]
    pairs += [(n, n[len(ATHENA_TAG):]) for n in schema.names() if n.startswith(ATHENA_TAG)]
    if not pairs:
        return pl.lit(None, TAGS)
    entries = pl.concat_list(
        pl.struct(pl.lit(key).alias("key"), parse.blank_to_null(pl.col(col)).alias("value"))
        for col, key in pairs
    ).list.eval(pl.element().filter(pl.element().struct.field("value").is_not_null()))
    return entries.cast(TAGS)


def build_cur_frame(item: InputFile) -> pl.LazyFrame:
    raw = scan_text(item.path)
    names = raw.collect_schema().names()
    renames = {n: snake(n) for n in names
               if n != "x_SourceRow" and not LEGACY_TAG.match(n) and snake(n) != n}
    raw = raw.rename(renames)
    schema = raw.collect_schema()
    have = set(schema.names())

    def text(name: str) -> pl.Expr:
        if name not in have:
            return pl.lit(None, pl.String)
        return parse.blank_to_null(pl.col(name)) if schema[name] == pl.String else pl.col(name)

    def money(name: str) -> pl.Expr:
        return parse.money(text(name)) if name in have else pl.lit(None, MONEY)

    def net_or(name: str, net: str) -> pl.Expr:
        # The net (after discounts) variant where the export has that column.
        return money(net) if net in have else money(name)

    kind = text("line_item_line_item_type")
    billed_name = "line_item_net_unblended_cost" if "line_item_net_unblended_cost" in have \
        else "line_item_unblended_cost"
    billed = money(billed_name)
    sp_arn = text("savings_plan_savings_plan_a_r_n")
    ri_arn = text("reservation_reservation_a_r_n")
    term = text("pricing_term")
    usage_type = text("line_item_usage_type")

    effective = (
        pl.when(kind == "SavingsPlanCoveredUsage").then(
            net_or("savings_plan_savings_plan_effective_cost",
                   "savings_plan_net_savings_plan_effective_cost"))
        .when(kind == "DiscountedUsage").then(
            net_or("reservation_effective_cost", "reservation_net_effective_cost"))
        .when(kind == "SavingsPlanNegation").then(pl.lit(0, MONEY))
        .when(kind == "SavingsPlanUpfrontFee").then(pl.lit(0, MONEY))
        .when(kind == "SavingsPlanRecurringFee").then(
            money("savings_plan_total_commitment_to_date").fill_null(0)
            - money("savings_plan_used_commitment").fill_null(0))
        .when(kind == "RIFee").then(
            net_or("reservation_unused_amortized_upfront_fee_for_billing_period",
                   "reservation_net_unused_amortized_upfront_fee_for_billing_period").fill_null(0)
            + net_or("reservation_unused_recurring_fee",
                     "reservation_net_unused_recurring_fee").fill_null(0))
        .when((kind == "Fee") & ri_arn.is_not_null()).then(pl.lit(0, MONEY))
        .otherwise(billed)
        .cast(MONEY)
    )
    category = (
        pl.when(kind.is_in(["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage",
                            "SavingsPlanNegation"])).then(pl.lit("Usage"))
        .when(kind.is_in(["RIFee", "SavingsPlanRecurringFee", "SavingsPlanUpfrontFee", "Fee"]))
        .then(pl.lit("Purchase"))
        .when(kind == "Tax").then(pl.lit("Tax"))
        .when(kind.is_in(["Credit", "Refund", *DISCOUNT_TYPES])).then(pl.lit("Credit"))
        .when(kind.is_not_null()).then(pl.lit("Adjustment"))
    )
    frequency = (
        pl.when(kind.is_in(["RIFee", "SavingsPlanRecurringFee"])).then(pl.lit("Recurring"))
        .when(kind.is_in(["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage",
                          "SavingsPlanNegation", *DISCOUNT_TYPES])).then(pl.lit("Usage-Based"))
        .otherwise(pl.lit("One-Time"))
    )
    commitment_id = (
        pl.when(kind.is_in(["SavingsPlanCoveredUsage", "SavingsPlanRecurringFee",
                            "SavingsPlanUpfrontFee", "SavingsPlanNegation"])).then(sp_arn)
        .when(kind.is_in(["DiscountedUsage", "RIFee"]) | ((kind == "Fee") & ri_arn.is_not_null()))
        .then(ri_arn)
    )
    is_sp = kind.str.starts_with("SavingsPlan")
    pricing = (
        pl.when(kind.is_in(["DiscountedUsage", "SavingsPlanCoveredUsage"])).then(pl.lit("Committed"))
        .when((term == "Spot") | usage_type.str.contains("SpotUsage")).then(pl.lit("Dynamic"))
        .when(kind.is_in(["Usage", "SavingsPlanNegation"])).then(pl.lit("Standard"))
    )
    status = (
        pl.when(kind.is_in(["DiscountedUsage", "SavingsPlanCoveredUsage"])).then(pl.lit("Used"))
        .when(kind.is_in(["RIFee", "SavingsPlanRecurringFee"]) & (effective != 0)).then(pl.lit("Unused"))
    )
    product_code = text("line_item_product_code")
    service_name = pl.coalesce(text("product_product_name"), text("product_servicename"), product_code)
    quantity = parse.quantity(text("line_item_usage_amount"))
    usage_like = category == "Usage"
    mapped: dict[str, pl.Expr] = {
        "AvailabilityZone": text("line_item_availability_zone"),
        "BilledCost": billed,
        "BillingAccountId": text("bill_payer_account_id"),
        "BillingAccountName": text("bill_payer_account_name"),
        "BillingCurrency": text("line_item_currency_code"),
        "BillingPeriodStart": parse.timestamp(text("bill_billing_period_start_date")),
        "BillingPeriodEnd": parse.timestamp(text("bill_billing_period_end_date")),
        "ChargeCategory": category,
        "ChargeClass": pl.when(kind == "Refund").then(pl.lit("Correction")),
        "ChargeDescription": text("line_item_line_item_description"),
        "ChargeFrequency": frequency,
        "ChargePeriodStart": parse.timestamp(text("line_item_usage_start_date")),
        "ChargePeriodEnd": parse.timestamp(text("line_item_usage_end_date")),
        "CommitmentDiscountCategory": pl.when(commitment_id.is_not_null())
        .then(pl.when(is_sp).then(pl.lit("Spend")).otherwise(pl.lit("Usage"))),
        "CommitmentDiscountId": commitment_id,
        "CommitmentDiscountName": commitment_id.str.split("/").list.last(),
        "CommitmentDiscountStatus": pl.when(commitment_id.is_not_null()).then(status),
        "CommitmentDiscountType": pl.when(commitment_id.is_not_null())
        .then(pl.when(is_sp).then(pl.lit("Savings Plan")).otherwise(pl.lit("Reserved Instance"))),
        "ConsumedQuantity": pl.when(usage_like).then(quantity),
        "ConsumedUnit": pl.when(usage_like).then(text("pricing_unit")),
        "ContractedCost": money("line_item_unblended_cost"),
        "ContractedUnitPrice": money("line_item_unblended_rate"),
        "EffectiveCost": effective,
        "InvoiceId": text("bill_invoice_id"),
        "InvoiceIssuerName": pl.coalesce(text("bill_invoicing_entity"),
                                         pl.lit("Amazon Web Services, Inc.")),
        "ListCost": pl.coalesce(money("pricing_public_on_demand_cost"), billed),
        "ListUnitPrice": money("pricing_public_on_demand_rate"),
        "PricingCategory": pricing,
        "PricingQuantity": quantity,
        "PricingUnit": text("pricing_unit"),
        "ProviderName": pl.lit("AWS"),
        "PublisherName": pl.coalesce(text("line_item_legal_entity"), pl.lit("Amazon Web Services, Inc.")),
        "RegionId": pl.coalesce(text("product_region_code"), text("product_region")),
        "RegionName": text("product_location"),
        "ResourceId": text("line_item_resource_id"),
        "ServiceCategory": lookup(product_code, _categories(), default="Other"),
        "ServiceName": service_name,
        "SkuId": text("product_sku"),
        "SkuPriceId": text("pricing_rate_id"),
        "SubAccountId": text("line_item_usage_account_id"),
        "SubAccountName": text("line_item_usage_account_name"),
        "Tags": _tags(schema),
    }
    used = {
        billed_name, "line_item_unblended_cost", "resource_tags",
        "x_SourceRow", "bill_payer_account_id", "bill_payer_account_name", "line_item_currency_code",
        "bill_billing_period_start_date", "bill_billing_period_end_date",
        "line_item_line_item_description", "line_item_usage_start_date", "line_item_usage_end_date",
        "line_item_usage_amount", "pricing_unit", "line_item_unblended_rate", "bill_invoice_id",
        "bill_invoicing_entity", "pricing_public_on_demand_cost", "pricing_public_on_demand_rate",
        "line_item_legal_entity", "product_region_code", "line_item_resource_id",
        "line_item_product_code", "product_sku", "pricing_rate_id", "line_item_usage_account_id",
        "line_item_usage_account_name", "line_item_availability_zone",
    }
    extras = [
        (pl.col(n) if schema[n] != pl.String else parse.blank_to_null(pl.col(n))).alias(f"x_{n}")
        for n in schema.names()
        if n not in used and not LEGACY_TAG.match(n) and not n.startswith(ATHENA_TAG)
    ]
    lf = raw.select(
        *[expr.alias(name) for name, expr in mapped.items()], *extras,
        pl.col("x_SourceRow"), pl.lit(item.label).alias("x_SourceFile"),
        money(billed_name).alias("__raw_cost_parsed"), text(billed_name).alias("__raw_cost"),
    )
    lf = ensure_focus_columns(lf)
    reasons = focus_row_reasons({"BilledCost": pl.col("__raw_cost")})
    return (
        lf.with_columns(reject_reason(reasons), period_of().alias(PERIOD))
        .drop("__raw_cost", "__raw_cost_parsed")
    )


def cur_source_totals(item: InputFile) -> pl.LazyFrame:
    """The export's own cost column summed per billing period and currency."""
    raw = scan_text(item.path)
    names = {snake(n): n for n in raw.collect_schema().names()}
    billed = names.get("line_item_net_unblended_cost", names["line_item_unblended_cost"])
    return (
        raw.select(
            parse.timestamp(pl.col(names["bill_billing_period_start_date"]).cast(pl.String))
            .dt.strftime("%Y-%m").alias(PERIOD),
            parse.blank_to_null(pl.col(names["line_item_currency_code"])).alias("BillingCurrency"),
            parse.money(pl.col(billed).cast(pl.String)).alias("BilledCost"),
        )
        .group_by(PERIOD, "BillingCurrency")
        .agg(pl.col("BilledCost").sum())
        # CUR has no single amortised column to reconcile EffectiveCost against.
        .with_columns(pl.lit(None, MONEY).alias("EffectiveCost"))
    )


def _build(item: InputFile) -> pl.LazyFrame:
    return focus_collector.build_frame(item) if detect(columns_of(item.path)) == "focus" \
        else build_cur_frame(item)


def _totals(item: InputFile) -> pl.LazyFrame:
    return focus_collector.source_totals(item) if detect(columns_of(item.path)) == "focus" \
        else cur_source_totals(item)


def ingest_files(
    wh: Warehouse, state: State, inputs: list[InputFile], *, source: str, max_rejected_share: float,
    notes: list[str] | None = None,
) -> IngestResult:
    kinds = {item.label: _check(item.path) for item in inputs}
    notes = list(notes or [])
    for fmt in sorted(set(kinds.values())):
        count = sum(1 for k in kinds.values() if k == fmt)
        notes.append(f"{count} file(s) read as {'AWS FOCUS export' if fmt == 'focus' else 'CUR'}")
    cur_inputs = [i for i in inputs if kinds[i.label] == "cur"]
    if cur_inputs:
        names = columns_of(cur_inputs[0].path)
        kept = sorted({snake(n) for n in names} - set(CUR_REQUIRED))
        notes.append(f"CUR columns with no FOCUS home are kept as x_<name> ({len(kept)} columns)")
    return ingest_billing(
        wh, state, source=source, inputs=inputs, build=_build, source_totals=_totals,
        max_rejected_share=max_rejected_share, notes=notes,
    )


def collect_aws_path(
    wh: Warehouse, state: State, path: Path, *, source: str | None, max_rejected_share: float
) -> IngestResult:
    files = find_files(path, what=WHAT)
    base = path if path.is_dir() else path.parent
    inputs = [InputFile(f, str(f.relative_to(base))) for f in files]
    return ingest_files(wh, state, inputs, source=source or "aws",
                        max_rejected_share=max_rejected_share)
