"""``finops collect azure``: Cost Management cost details exports (EA and MCA, actual and
amortized, CSV, CSV.gz or Parquet) to FOCUS 1.2.

The mapping is Microsoft's, from "Convert Cost Management data to FOCUS" (FinOps toolkit,
docs-mslearn/focus/convert.md) and its open-data lookups (``collectors/azure_data``).
Column names are matched in any case (EA ``Cost``/``benefitId``, MCA
``costInBillingCurrency``/``BenefitId``).

FOCUS column ← Azure column: rule

- BilledCost ← CostInBillingCurrency (EA, MCA), Cost (older EA) or PreTaxCost: 0 for
  commitment usage¹
- EffectiveCost ← the same cost: 0 for commitment purchases and refunds²
- ChargeCategory ← ChargeType: Usage, Purchase, Tax, Credit as they are;
  UnusedReservation, UnusedSavingsPlan → Usage; Refund → Purchase; RoundingAdjustment
  and anything else → Adjustment
- ChargeClass ← ChargeType: Refund → Correction
- ChargeFrequency ← Frequency: OneTime → One-Time, Recurring, UsageBased → Usage-Based;
  none: Usage-Based for usage, else One-Time
- PricingCategory ← PricingModel: OnDemand → Standard, Spot → Dynamic, Reservation and
  SavingsPlan → Committed, other values → Other; commitment purchases and refunds →
  Standard; Tax → null
- CommitmentDiscountId, Name ← BenefitId, BenefitName (else ReservationId, Name)
- CommitmentDiscountType, Category ← BenefitId: ``/microsoft.capacity/`` → Reservation,
  Usage; ``/microsoft.billingbenefits/`` → Savings Plan, Spend (else from PricingModel)
- CommitmentDiscountStatus ← ChargeType: Unused* → Unused, other usage of a commitment →
  Used; null on purchases
- BillingAccountId, Name ← EA: BillingAccountId, BillingAccountName; MCA:
  BillingProfileId, BillingProfileName. BillingAccountType: Billing Account (EA), Billing
  Profile (MCA). MCA is a row whose billing profile is not its billing account.
- BillingCurrency ← BillingCurrency or BillingCurrencyCode
- BillingPeriodStart, End ← BillingPeriodStartDate, BillingPeriodEndDate + 1 day (Azure's
  end is the last day, FOCUS's is exclusive)
- ChargePeriodStart, End ← Date, Date + 1 day
- ChargeDescription ← ProductName or Product
- ConsumedQuantity, ConsumedUnit ← Quantity × block size, distinct unit (PricingUnits.csv);
  usage only, not unused commitment
- PricingQuantity, PricingUnit ← Quantity, "<block> <distinct unit>" (PricingUnits.csv);
  null for Tax
- ContractedUnitPrice, ContractedCost ← UnitPrice, UnitPrice × Quantity
- ListUnitPrice, ListCost ← PayGPrice; PaygCostInBillingCurrency (MCA) or PayGPrice × Quantity
  (prices × ExchangeRatePricingToBilling where the export has it: MCA prices are in the
  pricing currency)
- InvoiceIssuerName ← PartnerName, else Microsoft; ProviderName: Microsoft;
  PublisherName ← PublisherName
- RegionId, RegionName ← ResourceLocation (else Location, MeterRegion), via Regions.csv
- ResourceId ← ResourceId; ResourceName: its last segment; ResourceType (and
  x_ResourceType): its ARM type, ``microsoft.sql/servers/databases``
- ServiceName, ServiceCategory, ServiceSubcategory ← ConsumedService and ARM type via
  Services.csv, else MeterCategory and Other
- SkuId ← ProductId; SkuMeter ← MeterName; InvoiceId, PricingCurrency as they are
- SubAccountId, Name ← SubscriptionId, SubscriptionName; SubAccountType: Subscription
- Tags ← Tags, a JSON object (Azure leaves out the braces)

¹ ChargeType Usage with PricingModel Reservation or SavingsPlan, or an Unused* row: its
cost is the amortised purchase, billed when bought. ² Purchase or Refund with PricingModel
Reservation or SavingsPlan: amortised into the usage it covers.

Every other column is kept as ``x_<name>`` (canonical Azure spelling: ``x_AdditionalInfo``,
``x_ChargeType``, ``x_ResourceGroup``); columns Microsoft's schemas do not have are kept the
same way and named in a note. The collector adds ``x_BillingAccountAgreement`` (EA or MCA),
``x_PricingBlockSize``, ``x_SourceView`` and, when a row's tags are not a JSON object,
``x_TagsUnparsed``.

Where this departs from Microsoft's table, and why:
- PricingCategory of a commitment purchase or refund is Standard, not Committed: FOCUS 1.2
  says Committed is usage a commitment covers and a purchase at agreed rates is Standard
  (Microsoft's own hubs price data does the same). A missing PricingModel on usage or a
  purchase is Standard, an unknown one Other (FOCUS forbids null there; Microsoft: null).
- CommitmentDiscountStatus is set on usage rows only (FOCUS: null unless usage).
- PricingQuantity is Quantity and ContractedCost = UnitPrice × Quantity, without
  Microsoft's division by the block size: Azure's Quantity already counts blocks (0.0004
  of ``10K`` at 0.1 costs 0.00004), so the division would break FOCUS's rule that
  quantity × unit price = cost. PricingUnit names the block (``10000 Units``);
  ConsumedQuantity is in single units.
- ListCost for EA (Microsoft: not available) is PayGPrice × Quantity; where PayGPrice or
  UnitPrice is empty or 0 on a row with a cost, the price falls back as Microsoft's FinOps
  hubs do (list ← contracted ← effective price).
- ChargeFrequency has no "Other" (not a FOCUS 1.2 value): see the table.
- ResourceName is always the id's last segment (Microsoft: EA's ResourceName column).
- BillingAccountId and SubAccountId are the plain ids, not ARM paths.

Actual and amortized views: each file's view is told from its rows (amortized: unused
commitment rows, or commitment usage with a cost; actual: commitment purchases, or
commitment usage all at cost 0), else from ``actual``/``amortized`` in its file or folder
name; ``--view`` overrides both. The row rules above are the same in either view. When the
files of one collect hold both views of the same billing period and billing account, they
are combined as Microsoft says: every amortized row, plus only the commitment purchases
and refunds of the actual view. BilledCost then reconciles to the actual file (the
invoice) and EffectiveCost to the amortized file. A view alone is loaded whole; see
``source_totals`` for what it is reconciled against.
"""

from __future__ import annotations

import gzip
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from collectors import azure_ref as ref
from collectors.files import columns_of, find_files, scan_text
from finops import parse
from finops.errors import BadInputError
from finops.focus import MONEY, TAGS, TIMESTAMP
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
from finops.state import State
from finops.warehouse import Warehouse

View = Literal["actual", "amortized"]
FileView = Literal["actual", "amortized", "either", "mixed"]
WHAT = "Azure cost export"
DEFAULT_SOURCE = "azure"

# Columns that may carry the same thing, in order of preference (EA, MCA, older schemas).
ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "cost": ("CostInBillingCurrency", "Cost", "PreTaxCost"),
    "currency": ("BillingCurrency", "BillingCurrencyCode", "Currency"),
    "date": ("Date", "UsageDate"),
    "description": ("ProductName", "Product"),
    "location": ("ResourceLocation", "Location", "ResourceLocationNormalized", "MeterRegion"),
    "subscription": ("SubscriptionId", "SubscriptionGuid"),
    "rate": ("ExchangeRatePricingToBilling", "ExchangeRate"),
}
REQUIRED: tuple[tuple[str, ...], ...] = (
    ALTERNATIVES["cost"], ALTERNATIVES["currency"], ALTERNATIVES["date"],
    ("BillingPeriodStartDate",), ("BillingPeriodEndDate",), ("ChargeType",), ("BillingAccountId",),
)
# Azure columns whose value is copied unchanged into a FOCUS column; every other column is
# kept as x_<name> (Azure names in canonical spelling), unknown ones too.
CONSUMED: frozenset[str] = frozenset({
    *ALTERNATIVES["cost"], *ALTERNATIVES["currency"], *ALTERNATIVES["date"],
    *ALTERNATIVES["description"], *ALTERNATIVES["subscription"],
    "BillingPeriodStartDate", "BillingPeriodEndDate", "SubscriptionName", "MeterName",
    "ProductId", "ResourceId", "AvailabilityZone", "PublisherName", "InvoiceId",
    "PricingCurrency", "Tags", "BenefitId", "BenefitName", "Quantity", "UnitPrice", "PayGPrice",
    "PartnerName",
})

COMMITMENT_MODELS = ("reservation", "savingsplan")
UNUSED = ("unusedreservation", "unusedsavingsplan")
KNOWN_CHARGE_TYPES = ("usage", "purchase", "tax", "credit", "refund", "roundingadjustment", "adjustment",
                      *UNUSED)
KNOWN_PRICING_MODELS = ("ondemand", "spot", *COMMITMENT_MODELS)


# ---- reading one file's columns ----------------------------------------------------------

def _canonical(lf: pl.LazyFrame) -> pl.LazyFrame:
    renames, _ = ref.canonical_names(lf.collect_schema().names())
    return lf.rename(renames) if renames else lf


def _word(expr: pl.Expr) -> pl.Expr:
    """A code as Azure writes it in any spelling (``On Demand``, ``OnDemand``) → ``ondemand``."""
    return expr.str.to_lowercase().str.replace_all(" ", "", literal=True)


def per_value(expr: pl.Expr, fn: Callable[[pl.Expr], pl.Expr], dtype: pl.DataType) -> pl.Expr:
    """``fn(expr)``, worked out once per distinct value of each batch and joined back.

    Days, billing periods, resource ids and tag sets repeat on every daily row of a
    resource, and parsing them is the costly part of a row. Elementwise, so it streams.
    """
    def run(batch: pl.Series) -> pl.Series:
        keys = batch.to_frame("k")
        table = keys.unique().with_columns(fn(pl.col("k")).alias("v"))
        out = keys.join(table, on="k", how="left", nulls_equal=True, maintain_order="left")
        return out["v"].rename(batch.name)

    return expr.map_batches(run, return_dtype=dtype, is_elementwise=True)


def _timestamp(expr: pl.Expr) -> pl.Expr:
    return per_value(expr, parse.timestamp, TIMESTAMP)


class _Source:
    """Expressions over one file's raw columns, whichever schema it has.

    ``prepare`` adds the values every rule depends on as ``__`` columns, worked out once;
    the properties below read those columns.
    """

    def __init__(self, schema: pl.Schema) -> None:
        self.schema = schema

    def has(self, name: str) -> bool:
        return name in self.schema

    def text(self, name: str) -> pl.Expr:
        if name not in self.schema:
            return pl.lit(None, pl.String)
        dtype = self.schema[name]
        if dtype == pl.String:
            # Empty is null. Values are not stripped: Cost Management does not pad them,
            # stripping every field costs more than the rest of the mapping, and the
            # parsers (dates, money, codes, lookups) strip what they read.
            col = pl.col(name)
            return pl.when(col.str.len_bytes() == 0).then(None).otherwise(col)
        if dtype.is_nested():
            return pl.col(name).cast(pl.String, strict=False)
        return pl.col(name).cast(pl.String)

    def currency(self) -> pl.Expr:
        return self.first("currency").str.strip_chars()

    def first(self, what: str) -> pl.Expr:
        present = [self.text(n) for n in ALTERNATIVES[what] if self.has(n)]
        if not present:
            return pl.lit(None, pl.String)
        return present[0] if len(present) == 1 else pl.coalesce(present)

    def money(self, name: str) -> pl.Expr:
        return parse.money(self.text(name)) if self.has(name) else pl.lit(None, MONEY)

    def number(self, name: str) -> pl.Expr:
        return parse.quantity(self.text(name)) if self.has(name) else pl.lit(None, pl.Float64)

    def prepare(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        account, profile = self.text("BillingAccountId"), self.text("BillingProfileId")
        pm = pl.col("__pm")
        ct = pl.col("__ct")
        # A row about a reservation or savings plan: PricingModel says so, or, in exports
        # without PricingModel, the row names one.
        commitment = (pm.is_in(COMMITMENT_MODELS) | (pm.is_null() & pl.col("__cid").is_not_null()))
        return lf.with_columns(
            self.first("cost").alias("__cost_text"),
            _word(self.text("ChargeType")).alias("__ct"),
            _word(self.text("PricingModel")).alias("__pm"),
            pl.coalesce(self.text("BenefitId"), self.text("ReservationId")).alias("__cid"),
            _timestamp(self.text("BillingPeriodStartDate")).alias("__bps"),
            # MCA: the billing profile is not the billing account (in EA both are the
            # enrollment; in pay-as-you-go the profile is the subscription).
            (profile.is_not_null() & account.is_not_null() & (profile != account)
             & (profile != self.first("subscription")).fill_null(True)).fill_null(False).alias("__mca"),
            # Billing period and billing account: what an actual and an amortized file
            # must share for their rows to be two views of the same charges.
            pl.concat_str([account.fill_null(""), profile.fill_null("")], separator="|").alias("__acct"),
        ).with_columns(
            parse.money(pl.col("__cost_text")).alias("__cost"),
            pl.col("__bps").dt.strftime("%Y-%m").alias("__period"),
            commitment.fill_null(False).alias("__commitment"),
        ).with_columns(
            pl.concat_str([pl.col("__period").fill_null(""), pl.col("__acct")], separator="|").alias("__key"),
            (ct.is_in(UNUSED) | ((ct == "usage") & pl.col("__commitment")))
            .fill_null(False).alias("__cusage"),
            (ct.is_in(["purchase", "refund"]) & pl.col("__commitment")).fill_null(False).alias("__cpurchase"),
        )

    cost_text = pl.col("__cost_text")
    cost = pl.col("__cost")
    charge_type = pl.col("__ct")
    pricing_model = pl.col("__pm")
    commitment_id = pl.col("__cid")
    commitment = pl.col("__commitment")
    # ChargeType Usage on a reservation or savings plan, or its unused part
    commitment_usage = pl.col("__cusage")
    # a Purchase or Refund of a reservation or savings plan
    commitment_purchase = pl.col("__cpurchase")
    period = pl.col("__period")
    key = pl.col("__key")
    is_mca = pl.col("__mca")


def _open(path: Path) -> tuple[pl.LazyFrame, _Source]:
    lf = _canonical(scan_text(path))
    src = _Source(lf.collect_schema())
    return src.prepare(lf), src


def check_header(path: Path) -> list[str]:
    """The file's columns; a clear error (exit 2) naming what a cost export must have."""
    names = [n.strip().lstrip("\ufeff") for n in columns_of(path)]
    renames, _ = ref.canonical_names(names)
    have = {renames.get(n, n) for n in names}
    missing = [" or ".join(group) for group in REQUIRED if not any(n in have for n in group)]
    if missing:
        raise BadInputError.missing_columns(str(path), missing, names, what=WHAT)
    return names


# ---- looking at every file before loading ------------------------------------------------

@dataclass
class KeyStats:
    rows: int = 0
    unused: int = 0
    usage_with_cost: int = 0
    usage_at_zero: int = 0
    purchases: int = 0
    mca: int = 0

    def add(self, other: KeyStats) -> None:
        for name in ("rows", "unused", "usage_with_cost", "usage_at_zero", "purchases", "mca"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class FilePlan:
    item: InputFile
    view: FileView
    how: str
    keys: dict[str, KeyStats]
    charge_types: set[str]
    pricing_models: set[str]
    unknown_columns: list[str]
    merged: frozenset[str] = frozenset()

    def total(self) -> KeyStats:
        out = KeyStats()
        for stats in self.keys.values():
            out.add(stats)
        return out


def _scan(item: InputFile) -> tuple[dict[str, KeyStats], set[str], set[str]]:
    lf, src = _open(item.path)
    cost = src.cost
    usage = (src.charge_type == "usage") & src.commitment
    df = (
        lf.select(
            src.key.alias("key"), src.charge_type.alias("ct"), src.pricing_model.alias("pm"),
            src.text("ChargeType").alias("ChargeType"), src.text("PricingModel").alias("PricingModel"),
            (src.charge_type.is_in(UNUSED)).fill_null(False).alias("unused"),
            (usage & (cost != 0)).fill_null(False).alias("usage_with_cost"),
            (usage & (cost == 0)).fill_null(False).alias("usage_at_zero"),
            src.commitment_purchase.alias("purchases"), src.is_mca.alias("mca"),
        )
        .group_by("key")
        .agg(
            pl.len().alias("rows"),
            *[pl.col(c).sum() for c in ("unused", "usage_with_cost", "usage_at_zero", "purchases", "mca")],
            pl.col("ChargeType").filter(~pl.col("ct").is_in(KNOWN_CHARGE_TYPES).fill_null(True))
            .unique().alias("odd_ct"),
            pl.col("PricingModel").filter(~pl.col("pm").is_in(KNOWN_PRICING_MODELS).fill_null(False))
            .unique().alias("odd_pm"),
        )
        .collect(engine="streaming")
    )
    keys: dict[str, KeyStats] = {}
    odd_ct: set[str] = set()
    odd_pm: set[str] = set()
    for rec in df.iter_rows(named=True):
        keys[rec["key"]] = KeyStats(rec["rows"], rec["unused"], rec["usage_with_cost"],
                                    rec["usage_at_zero"], rec["purchases"], rec["mca"])
        odd_ct.update("(empty)" if v is None else v for v in rec["odd_ct"])
        odd_pm.update(v for v in rec["odd_pm"] if v is not None)
    return keys, odd_ct, odd_pm


def _hint(label: str) -> View | None:
    """``actual`` or ``amortized`` in the file's name or its folders below --path."""
    for part in reversed(Path(label).parts):
        low = part.lower()
        amortized = "amortiz" in low or "amortis" in low
        actual = "actual" in low
        if amortized != actual:
            return "amortized" if amortized else "actual"
    return None


def _view(total: KeyStats, label: str, forced: View | None) -> tuple[FileView, str]:
    """The file's view and what told it."""
    if forced:
        return forced, "told by --view"
    amortized = bool(total.unused or total.usage_with_cost)
    actual = bool(total.purchases) or (bool(total.usage_at_zero) and not amortized)
    hint = _hint(label)
    if amortized and actual:
        if hint:
            return hint, "told by its name; its rows have both commitment purchases and amortized usage"
        return "mixed", "its rows have both commitment purchases and amortized commitment usage"
    if amortized:
        return "amortized", "told by its rows: amortized reservation/savings plan usage"
    if actual:
        return "actual", "told by its rows: reservation/savings plan purchases or usage at cost 0"
    if hint:
        return hint, "told by its name; no reservation or savings plan rows, so both views are the same"
    return "either", "no reservation or savings plan rows, so the actual and amortized views are the same"


def plan_files(inputs: list[InputFile], forced: View | None) -> tuple[list[FilePlan], list[str]]:
    """Every file's view, and the billing periods where both views are given; with notes."""
    unknown = {item.label: ref.canonical_names(check_header(item.path))[1] for item in inputs}
    plans: list[FilePlan] = []
    for item in inputs:
        keys, odd_ct, odd_pm = _scan(item)
        plan = FilePlan(item, "either", "", keys, odd_ct, odd_pm, unknown[item.label])
        plan.view, plan.how = _view(plan.total(), item.label, forced)
        plans.append(plan)

    # Both views of one billing period and account: combine them as Microsoft does.
    by_key: dict[str, list[FilePlan]] = {}
    for plan in plans:
        for key in plan.keys:
            by_key.setdefault(key, []).append(plan)
    merged = {k for k, ps in by_key.items() if {"actual", "amortized"} <= {p.view for p in ps}}
    for key in sorted(merged):
        unclear = [p.item.label for p in by_key[key] if p.view not in ("actual", "amortized")]
        if unclear:
            raise BadInputError(
                f"{', '.join(unclear)}: cannot tell whether this is the actual or the amortized "
                f"view of billing period {key.split('|')[0]}, which other files here have in both "
                "views: it has no reservation or savings plan rows to tell by",
                hint="Put 'actual' or 'amortized' in its file or folder name.",
            )
    for plan in plans:
        plan.merged = frozenset(k for k in plan.keys if k in merged)
    return plans, _notes(plans)


def _where(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else f"{len(labels)} files ({labels[0]}, …)"


def _notes(plans: list[FilePlan]) -> list[str]:
    notes: list[str] = []
    groups: dict[tuple[str, str, str], list[FilePlan]] = {}
    for plan in plans:
        total = plan.total()
        agreement = "MCA" if total.mca * 2 > total.rows else "EA"
        groups.setdefault((agreement, plan.view, plan.how), []).append(plan)
    for (agreement, view, how), group in groups.items():
        rows = sum(p.total().rows for p in group)
        name = "actual or amortized view" if view == "either" else f"{view} view"
        notes.append(f"{_where([p.item.label for p in group])}: Azure {agreement} cost export, "
                     f"{rows:,} rows, {name} ({how})")

    combined = [p for p in plans if p.merged and p.view == "actual"]
    if combined:
        kept = sum(p.keys[k].purchases for p in combined for k in p.merged)
        dropped = sum(p.keys[k].rows for p in combined for k in p.merged) - kept
        notes.append(
            f"{_where([p.item.label for p in combined])}: combined with the amortized view of "
            f"{_periods(k for p in combined for k in p.merged)} as Microsoft does: only the "
            f"{kept:,} reservation/savings plan purchase and refund rows of the actual view are "
            f"loaded; its other {dropped:,} rows are the amortized rows before amortisation. "
            "BilledCost is checked against the actual file and EffectiveCost against the amortized "
            "one: a difference means the two exports do not hold the same charges")
    alone = [p for p in plans if not p.merged]
    bought = [p for p in alone if p.view == "actual" and p.total().purchases]
    if bought:
        notes.append(
            f"{_where([p.item.label for p in bought])}: actual view alone: reservation/savings plan "
            "purchases have EffectiveCost 0 (FOCUS amortises prepaid commitments) and their "
            "amortised cost is only in the amortized export; collect both views together (one "
            "--path folder) to have it")
    amortised = [p for p in alone
                 if p.view == "amortized" and (p.total().unused or p.total().usage_with_cost)]
    if amortised:
        notes.append(
            f"{_where([p.item.label for p in amortised])}: amortized view alone: reservation/savings "
            "plan usage and unused commitment rows have BilledCost 0, and the purchases they "
            "amortise are only in the actual export, so BilledCost is below the invoice until both "
            "views are collected together (one --path folder)")
    mixed = [p for p in plans if p.view == "mixed"]
    if mixed:
        notes.append(
            f"{_where([p.item.label for p in mixed])}: holds both commitment purchases and amortized "
            "commitment usage; each row is mapped by Microsoft's rules, nothing is combined")
    _note_values(plans, notes)
    return notes


def _periods(keys: Iterable[str]) -> str:
    return ", ".join(sorted({k.split("|")[0] or "(no period)" for k in keys}))


def _note_values(plans: list[FilePlan], notes: list[str]) -> None:
    unknown: dict[str, list[str]] = {}
    for plan in plans:
        for name in plan.unknown_columns:
            unknown.setdefault(name, []).append(plan.item.label)
    if unknown:
        files = {label for labels in unknown.values() for label in labels}
        where = next(iter(files)) if len(files) == 1 else f"{len(files)} files"
        notes.append(f"{where}: kept column(s) that are not in Microsoft's cost export schemas as "
                     + ", ".join(f"{n} → x_{n}" for n in sorted(unknown)))
    odd_ct = sorted(set().union(*(p.charge_types for p in plans)))
    if odd_ct:
        notes.append(f"ChargeType value(s) {', '.join(odd_ct)} mapped to ChargeCategory Adjustment "
                     "(Microsoft's rule for charge types it does not name)")
    odd_pm = sorted(set().union(*(p.pricing_models for p in plans)))
    if odd_pm:
        notes.append(f"PricingModel value(s) {', '.join(odd_pm)} mapped to PricingCategory Other")


# ---- the mapping -------------------------------------------------------------------------

def _nonzero(expr: pl.Expr) -> pl.Expr:
    return (expr.is_not_null() & (expr != 0)).fill_null(False)


def _to_money(expr: pl.Expr) -> pl.Expr:
    """A float price × quantity product as money; null (not an error) when out of range."""
    return pl.when(expr.is_finite() & (expr.abs() < 1e24)).then(expr).cast(MONEY, strict=False)


def _braced_tags(expr: pl.Expr) -> pl.Expr:
    # Azure writes the object's members without the braces.
    return parse.tags_json(pl.when(expr.str.starts_with("{")).then(expr)
                           .otherwise(pl.concat_str([pl.lit("{"), expr, pl.lit("}")])))


def _tags(src: _Source) -> pl.Expr:
    if not src.has("Tags"):
        return pl.lit(None, TAGS)
    dtype = src.schema["Tags"]
    if isinstance(dtype, pl.Struct):
        return parse.tags_json(pl.col("Tags").struct.json_encode())
    if dtype.is_nested():
        return pl.col("Tags").cast(TAGS, strict=False)
    return per_value(src.text("Tags"), _braced_tags, TAGS)


def _last_segment(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr.str.contains("/", literal=True)).then(expr.str.replace(r"^.*/", "")).otherwise(expr)


def _prices(src: _Source, rate: pl.Expr) -> list[pl.Expr]:
    """Unit prices in the billing currency (MCA prices are in the pricing currency), as
    money (``__UnitPrice``) and as float for products with quantities (``__UnitPrice_f``)."""
    has_rate = any(src.has(n) for n in ALTERNATIVES["rate"])
    out = []
    for name in ("UnitPrice", "PayGPrice", "EffectivePrice"):
        as_float = src.number(name) * rate
        out.append(as_float.alias(f"__{name}_f"))
        out.append((_to_money(as_float) if has_rate else src.money(name)).alias(f"__{name}"))
    return out


def _stage(lf: pl.LazyFrame, src: _Source) -> pl.LazyFrame:
    """The intermediate values of the mapping, each worked out once."""
    ct = src.charge_type
    distinct_unit, block = ref.pricing_unit(src.text("UnitOfMeasure"))
    region_id, region_name = ref.region(src.first("location"))
    rate_name = next((n for n in ALTERNATIVES["rate"] if src.has(n)), None)
    rate = src.number(rate_name) if rate_name else pl.lit(1.0)
    rate = pl.when(_nonzero(rate)).then(rate).otherwise(1.0)
    resource_id = src.text("ResourceId")
    return lf.with_columns(
        pl.when(ct.is_in(["usage", *UNUSED])).then(pl.lit("Usage"))
        .when(ct.is_in(["purchase", "refund"])).then(pl.lit("Purchase"))
        .when(ct == "tax").then(pl.lit("Tax"))
        .when(ct == "credit").then(pl.lit("Credit"))
        .otherwise(pl.lit("Adjustment")).alias("__category"),
        src.number("Quantity").alias("__qty"),
        distinct_unit.alias("__unit"),
        block.alias("__block"),
        region_id.alias("__region_id"),
        region_name.alias("__region_name"),
        *_prices(src, rate),
        resource_id.alias("__rid"),
        per_value(resource_id, ref.arm_type, pl.String()).alias("__rtype"),
        per_value(resource_id, _last_segment, pl.String()).alias("__rlast"),
        _timestamp(src.first("date")).alias("__day"),
        _timestamp(src.text("BillingPeriodEndDate")).alias("__bpe"),
        _tags(src).alias("__tags"),
    ).with_columns(
        ref.service_index(src.text("ConsumedService"), pl.col("__rtype")).alias("__svc"),
    )


def _mapped(src: _Source) -> dict[str, pl.Expr]:
    """FOCUS columns (and the collector's own x_ columns) over a ``_stage``d frame."""
    ct, pm = src.charge_type, src.pricing_model
    cost = src.cost
    category = pl.col("__category")
    is_tax = category == "Tax"
    frequency = _word(src.text("Frequency"))
    charge_frequency = (
        pl.when(frequency == "onetime").then(pl.lit("One-Time"))
        .when(frequency == "recurring").then(pl.lit("Recurring"))
        .when(frequency == "usagebased").then(pl.lit("Usage-Based"))
        .when(category == "Usage").then(pl.lit("Usage-Based"))
        .otherwise(pl.lit("One-Time"))
    )
    commitment = src.commitment
    pricing_category = (
        pl.when(is_tax).then(None)
        .when(src.commitment_purchase).then(pl.lit("Standard"))  # FOCUS: buying one is Standard
        .when(pm == "ondemand").then(pl.lit("Standard"))
        .when(pm == "spot").then(pl.lit("Dynamic"))
        .when(pm.is_in(COMMITMENT_MODELS)).then(pl.lit("Committed"))
        .when(pm.is_not_null()).then(pl.lit("Other"))
        .when(category.is_in(["Usage", "Purchase"]) & (ct != "refund"))
        .then(pl.when(commitment).then(pl.lit("Committed")).otherwise(pl.lit("Standard")))
    )

    cid = src.commitment_id
    cid_low = cid.str.to_lowercase()
    savings_plan = (
        pl.when(cid_low.str.contains("/microsoft.capacity/", literal=True)).then(False)
        .when(cid_low.str.contains("/microsoft.billingbenefits/", literal=True)).then(True)
        .otherwise((pm == "savingsplan") | (ct == "unusedsavingsplan"))
    ).fill_null(False)
    has_cid = cid.is_not_null()

    # Microsoft: BilledCost 0 for commitment usage (its cost is the purchase's, billed
    # once), EffectiveCost 0 for commitment purchases (amortised into the usage instead).
    billed = pl.when(src.commitment_usage & cost.is_not_null()).then(pl.lit(0, MONEY)).otherwise(cost)
    effective = pl.when(src.commitment_purchase & cost.is_not_null()).then(pl.lit(0, MONEY)).otherwise(cost)

    # Quantities: Azure's Quantity counts UnitOfMeasure blocks (0.0004 of "10K" is 4
    # operations), which is what its unit prices are per.
    quantity, block, distinct_unit = pl.col("__qty"), pl.col("__block"), pl.col("__unit")
    consumed = (category == "Usage") & ~ct.is_in(UNUSED).fill_null(False)
    unit_text = pl.when(block == 1).then(distinct_unit).otherwise(
        pl.concat_str([block.cast(pl.Int64).cast(pl.String), pl.lit(" "), distinct_unit]))

    def price(name: str) -> tuple[pl.Expr, pl.Expr]:
        """(money, float) of a unit price in the billing currency (see ``_stage``)."""
        return pl.col(f"__{name}"), pl.col(f"__{name}_f")

    has_cost = _nonzero(cost)
    unit_price, unit_price_f = price("UnitPrice")
    payg_price, payg_price_f = price("PayGPrice")
    eff_price, eff_price_f = price("EffectivePrice")
    # Where the export leaves a price empty or 0 on a row that has a cost, fall back as
    # Microsoft's FinOps hubs do: contracted ← effective price, list ← contracted price.
    contracted_price = pl.when(_nonzero(unit_price) | ~has_cost).then(unit_price) \
        .otherwise(pl.coalesce(eff_price, unit_price))
    contracted_price_f = pl.when(_nonzero(unit_price) | ~has_cost).then(unit_price_f) \
        .otherwise(pl.coalesce(eff_price_f, unit_price_f))
    list_price = pl.when(_nonzero(payg_price) | ~has_cost).then(payg_price).otherwise(contracted_price)
    list_price_f = pl.when(_nonzero(payg_price) | ~has_cost).then(payg_price_f) \
        .otherwise(contracted_price_f)
    contracted_cost = pl.coalesce(_to_money(contracted_price_f * quantity), cost)
    payg_cost = src.money("PaygCostInBillingCurrency")
    list_cost = pl.coalesce(pl.when(_nonzero(payg_cost)).then(payg_cost),
                            _to_money(list_price_f * quantity), contracted_cost)

    mca = src.is_mca
    resource_id, resource_type = pl.col("__rid"), pl.col("__rtype")
    day = pl.col("__day")

    def service(name: str) -> pl.Expr:
        return ref.service_field(pl.col("__svc"), name)

    return {
        "AvailabilityZone": src.text("AvailabilityZone"),
        "BilledCost": billed,
        "BillingAccountId": pl.when(mca).then(src.text("BillingProfileId"))
        .otherwise(pl.coalesce(src.text("BillingAccountId"), src.text("BillingProfileId"))),
        "BillingAccountName": pl.when(mca).then(src.text("BillingProfileName"))
        .otherwise(pl.coalesce(src.text("BillingAccountName"), src.text("BillingProfileName"))),
        "BillingAccountType": pl.when(mca).then(pl.lit("Billing Profile"))
        .otherwise(pl.lit("Billing Account")),
        "BillingCurrency": src.currency(),
        "BillingPeriodStart": pl.col("__bps"),
        # Azure's end date is the last day of the period; FOCUS's end is exclusive.
        "BillingPeriodEnd": pl.col("__bpe") + pl.duration(days=1),
        "ChargeCategory": category,
        "ChargeClass": pl.when(ct == "refund").then(pl.lit("Correction")),
        "ChargeDescription": src.first("description"),
        "ChargeFrequency": charge_frequency,
        "ChargePeriodStart": day,
        "ChargePeriodEnd": day + pl.duration(days=1),
        "CommitmentDiscountCategory": pl.when(has_cid)
        .then(pl.when(savings_plan).then(pl.lit("Spend")).otherwise(pl.lit("Usage"))),
        "CommitmentDiscountId": cid,
        "CommitmentDiscountName": pl.when(has_cid)
        .then(pl.coalesce(src.text("BenefitName"), src.text("ReservationName"))),
        "CommitmentDiscountStatus": pl.when(has_cid & (category == "Usage"))
        .then(pl.when(ct.is_in(UNUSED)).then(pl.lit("Unused")).otherwise(pl.lit("Used"))),
        "CommitmentDiscountType": pl.when(has_cid)
        .then(pl.when(savings_plan).then(pl.lit("Savings Plan")).otherwise(pl.lit("Reservation"))),
        "ConsumedQuantity": pl.when(consumed).then(quantity * block),
        "ConsumedUnit": pl.when(consumed & quantity.is_not_null()).then(distinct_unit),
        "ContractedCost": contracted_cost,
        "ContractedUnitPrice": pl.when(~is_tax).then(contracted_price),
        "EffectiveCost": effective,
        "InvoiceId": src.text("InvoiceId"),
        "InvoiceIssuerName": pl.coalesce(src.text("PartnerName"), pl.lit("Microsoft")),
        "ListCost": list_cost,
        "ListUnitPrice": pl.when(~is_tax).then(list_price),
        "PricingCategory": pricing_category,
        "PricingCurrency": src.text("PricingCurrency"),
        "PricingQuantity": pl.when(~is_tax).then(quantity),
        "PricingUnit": pl.when(~is_tax).then(unit_text),
        "ProviderName": pl.lit("Microsoft"),
        "PublisherName": pl.coalesce(src.text("PublisherName"), service("PublisherName"),
                                     pl.lit("Microsoft")),
        "RegionId": pl.col("__region_id"),
        "RegionName": pl.col("__region_name"),
        "ResourceId": resource_id,
        "ResourceName": pl.when(resource_id.str.ends_with("/").fill_null(True))
        .then(src.text("ResourceName")).otherwise(pl.coalesce(pl.col("__rlast"), src.text("ResourceName"))),
        "ResourceType": resource_type,
        "ServiceCategory": pl.coalesce(service("ServiceCategory"), pl.lit("Other")),
        "ServiceName": pl.coalesce(service("ServiceName"), src.text("MeterCategory"),
                                   src.text("ConsumedService"), src.first("description"),
                                   pl.lit("Unassigned")),
        "ServiceSubcategory": service("ServiceSubcategory"),
        "SkuId": src.text("ProductId"),
        "SkuMeter": src.text("MeterName"),
        "SubAccountId": src.first("subscription"),
        "SubAccountName": src.text("SubscriptionName"),
        "SubAccountType": pl.when(src.first("subscription").is_not_null()).then(pl.lit("Subscription")),
        "Tags": pl.col("__tags"),
        "x_BillingAccountAgreement": pl.when(mca).then(pl.lit("MCA")).otherwise(pl.lit("EA")),
        "x_PricingBlockSize": block,
        "x_ResourceType": resource_type,
        **({"x_TagsUnparsed": pl.when(pl.col("__tags").is_null()).then(src.text("Tags"))}
           if src.schema.get("Tags") == pl.String else {}),
    }


def build_frame(item: InputFile, plan: FilePlan) -> pl.LazyFrame:
    lf, src = _open(item.path)
    if plan.merged and plan.view == "actual":
        # The amortized file of the same period has every other row of this one.
        lf = lf.filter(~src.key.is_in(sorted(plan.merged)) | src.commitment_purchase)
    lf = _stage(lf, src)
    mapped = _mapped(src)
    extras = [
        src.text(n).alias(n if n.startswith("x_") else f"x_{n}")
        for n in src.schema.names()
        if n != "x_SourceRow" and n not in CONSUMED and f"x_{n}" not in mapped
    ]
    cost_text = src.cost_text
    out = lf.select(
        *[expr.alias(name) for name, expr in mapped.items()], *extras,
        pl.lit(plan.view).alias("x_SourceView"),
        pl.col("x_SourceRow"), pl.lit(item.label).alias("x_SourceFile"),
        cost_text.alias("__raw_cost"),
    )
    out = ensure_focus_columns(out)
    reasons = focus_row_reasons({"BilledCost": pl.col("__raw_cost"), "EffectiveCost": pl.col("__raw_cost")})
    return out.with_columns(reject_reason(reasons), period_of().alias(PERIOD)).drop("__raw_cost")


def source_totals(item: InputFile, plan: FilePlan) -> pl.LazyFrame:
    """The export's own cost column summed by billing period and currency.

    - both views given (a period and account in ``plan.merged``): the actual file's cost is
      the billed side and the amortized file's cost the effective side, whole: the
      combined rows must add up to each;
    - one view: its cost, less Microsoft's two exclusions: commitment usage (cost of a
      purchase, billed when bought) on the billed side, commitment purchases and refunds
      (amortised into usage) on the effective side. In an actual export commitment usage
      costs 0, so its billed side is the whole file, the invoice; in an amortized export
      there are no commitment purchases, so its effective side is the whole file.
    """
    lf, src = _open(item.path)
    cost = src.cost
    zero = pl.lit(0, MONEY)
    both = src.key.is_in(sorted(plan.merged)) if plan.merged else pl.lit(False)
    whole_billed, whole_effective = plan.view == "actual", plan.view == "amortized"
    billed = (pl.when(both).then(cost if whole_billed else zero)
              .when(src.commitment_usage).then(zero).otherwise(cost))
    effective = (pl.when(both).then(cost if whole_effective else zero)
                 .when(src.commitment_purchase).then(zero).otherwise(cost))
    return (
        lf.select(
            src.period.alias(PERIOD), src.currency().alias("BillingCurrency"),
            billed.cast(MONEY).alias("BilledCost"), effective.cast(MONEY).alias("EffectiveCost"),
        )
        .group_by(PERIOD, "BillingCurrency")
        .agg(pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum())
    )


# ---- collecting --------------------------------------------------------------------------

@dataclass
class _Scratch:
    """Gzip CSVs decompressed once, read three times (scan, load, totals) from disk."""

    wh: Warehouse
    name: str = field(default_factory=lambda: f"azure-{uuid.uuid4().hex[:12]}")

    def plain(self, item: InputFile, n: int) -> InputFile:
        if not item.path.name.lower().endswith(".csv.gz"):
            return item
        columns_of(item.path)  # a clear error when the content is not gzip
        target = self.wh.staging_dir(self.name) / f"input-{n:05d}.csv"
        try:
            with gzip.open(item.path, "rb") as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (OSError, EOFError) as exc:
            raise BadInputError(f"{item.label}: cannot be read: {exc}",
                                hint="Download the export again; the gzip file is damaged.") from None
        return InputFile(target, item.label)

    def drop(self) -> None:
        self.wh.drop_staging(self.name)


def collect_azure(
    wh: Warehouse, state: State, path: Path, *, source: str | None, view: View | None,
    max_rejected_share: float,
) -> IngestResult:
    files = find_files(path, what=WHAT)
    base = path if path.is_dir() else path.parent
    scratch = _Scratch(wh)
    try:
        inputs = [scratch.plain(InputFile(f, str(f.relative_to(base))), n) for n, f in enumerate(files)]
        plans, notes = plan_files(inputs, view)
        by_label = {p.item.label: p for p in plans}

        def with_plan(
            fn: Callable[[InputFile, FilePlan], pl.LazyFrame],
        ) -> Callable[[InputFile], pl.LazyFrame]:
            return lambda item: fn(item, by_label[item.label])

        return ingest_billing(
            wh, state, source=source or DEFAULT_SOURCE, inputs=inputs,
            build=with_plan(build_frame), source_totals=with_plan(source_totals),
            max_rejected_share=max_rejected_share, notes=notes,
        )
    finally:
        scratch.drop()
