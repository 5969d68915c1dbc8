"""What the Azure collector knows about Cost Management exports, apart from the mapping.

- the column catalogue: every column of the EA, MCA, pay-as-you-go and partner cost
  details schemas (actual and amortized views share one schema), in one canonical spelling
  (EA writes ``Cost``/``benefitId``, MCA ``costInBillingCurrency``/``BenefitId``);
- Microsoft's open-data lookups in ``collectors/azure_data`` (services, regions, pricing
  units), as vectorised Polars expressions;
- Azure resource ids: the ARM resource type.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import polars as pl

from finops.lookup import mapped

# Every column Cost Management writes in a cost details export, in one canonical spelling.
# Sources: "Enterprise Agreement cost and usage details file schema" (2019-10-01 to
# 2024-08-01), the MCA, MCA partner and pay-as-you-go schemas, and the older EA usage files.
KNOWN_COLUMNS: tuple[str, ...] = (
    "AccountId", "AccountName", "AccountOwnerId", "AdditionalInfo", "AvailabilityZone",
    "BenefitId", "BenefitName", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingCurrencyCode", "BillingPeriodEndDate", "BillingPeriodStartDate", "BillingProfileId",
    "BillingProfileName", "ChargeType", "ConsumedService", "Cost", "CostAllocationRuleName",
    "CostCenter", "CostInBillingCurrency", "CostInPricingCurrency", "CostInUsd", "Currency",
    "CustomerName", "CustomerTenantId", "Date", "DepartmentId", "DepartmentName",
    "EffectivePrice", "ExchangeRate", "ExchangeRateDate", "ExchangeRatePricingToBilling",
    "Frequency", "InstanceName", "InvoiceId", "InvoiceSectionId", "InvoiceSectionName",
    "IsAzureCreditEligible", "Location", "MarketPrice", "MeterCategory", "MeterId", "MeterName",
    "MeterRegion", "MeterSubCategory", "OfferId", "PartNumber", "PartnerEarnedCreditApplied",
    "PartnerEarnedCreditRate", "PartnerName", "PartnerTenantId", "PayGPrice", "PayGPriceUsd",
    "PaygCostInBillingCurrency", "PaygCostInUsd", "PlanName", "PreTaxCost", "PreviousInvoiceId",
    "PricingCurrency", "PricingModel", "Product", "ProductId", "ProductName", "ProductOrderId",
    "ProductOrderName", "Provider", "PublisherId", "PublisherName", "PublisherType", "Quantity",
    "ReservationId", "ReservationName", "ResellerMpnId", "ResellerName", "ResourceGroup",
    "ResourceId", "ResourceLocation", "ResourceLocationNormalized", "ResourceName",
    "ResourceType", "ServiceFamily", "ServiceInfo1", "ServiceInfo2", "ServicePeriodEndDate",
    "ServicePeriodStartDate", "SubscriptionGuid", "SubscriptionId", "SubscriptionName", "Tags",
    "Term", "UnitOfMeasure", "UnitPrice", "UsageDate",
)
# The same column under two names in different schemas.
ALIASES: dict[str, str] = {
    "resourcegroupname": "ResourceGroup",
    "invoicesection": "InvoiceSectionName",
    "paygpriceusd": "PayGPriceUsd",
}
CANONICAL: dict[str, str] = {**{c.lower(): c for c in KNOWN_COLUMNS}, **ALIASES}

DATA_PACKAGE = "collectors.azure_data"


def canonical_names(names: list[str]) -> tuple[dict[str, str], list[str]]:
    """Renames to canonical spellings, and the names that are not Azure columns at all.

    A name is only renamed when its canonical spelling is not already taken by another
    column of the same file.
    """
    taken = set(names)
    renames: dict[str, str] = {}
    unknown: list[str] = []
    for name in names:
        if name == "x_SourceRow" or name.startswith("x_"):
            continue
        canon = CANONICAL.get(name.lower())
        if canon is None:
            unknown.append(name)
        elif canon != name and canon not in taken:
            renames[name] = canon
            taken.add(canon)
    return renames, unknown


@cache
def _table(name: str) -> pl.DataFrame:
    text = resources.files(DATA_PACKAGE).joinpath(name).read_bytes()
    return pl.read_csv(text, infer_schema=False)


def _first_per_key(keys: list[str | None], values: list[str | None]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in zip(keys, values, strict=True):
        if key is not None and value is not None and key not in out:
            out[key] = value
    return out


@cache
def _region_maps() -> tuple[dict[str, str], dict[str, str]]:
    df = _table("Regions.csv").with_columns(
        pl.col("OriginalValue").str.strip_chars().str.to_lowercase()
    )
    keys = df["OriginalValue"].to_list()
    return (_first_per_key(keys, df["RegionId"].to_list()),
            _first_per_key(keys, df["RegionName"].to_list()))


def region(location: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """RegionId and RegionName for a location as Azure writes it (``EastUS``, ``uk south``).

    A location the table does not know keeps its own text as the name, and that text in
    lower case without spaces as the id (how Microsoft derives RegionId from RegionName).
    """
    ids, names = _region_maps()
    key = location.str.strip_chars().str.to_lowercase()
    region_id = mapped(key, ids)
    region_name = mapped(key, names)
    return (
        pl.coalesce(region_id, key.str.replace_all(" ", "", literal=True)),
        pl.coalesce(region_name, location.str.strip_chars()),
    )


@cache
def _unit_maps() -> tuple[dict[str, str], dict[str, str]]:
    df = _table("PricingUnits.csv").with_columns(
        pl.col("UnitOfMeasure").str.strip_chars().str.to_lowercase()
    )
    keys = df["UnitOfMeasure"].to_list()
    return (_first_per_key(keys, df["DistinctUnits"].to_list()),
            _first_per_key(keys, df["PricingBlockSize"].to_list()))


def pricing_unit(unit_of_measure: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The distinct unit (``Units``, ``Hours``) and the pricing block size (``10K`` → 10000).

    An unknown unit of measure is its own distinct unit, with a block size of 1.
    """
    units, blocks = _unit_maps()
    key = unit_of_measure.str.strip_chars().str.to_lowercase()
    distinct = pl.coalesce(mapped(key, units),
                           unit_of_measure.str.strip_chars())
    block = mapped(key, blocks).cast(pl.Float64)
    return distinct, pl.when(unit_of_measure.is_not_null()).then(block.fill_null(1.0))


SERVICE_FIELDS = ("ServiceName", "ServiceCategory", "ServiceSubcategory", "PublisherName")


@cache
def _service_maps() -> tuple[dict[str, int], dict[str, int], dict[str, int], dict[str, dict[int, str]]]:
    df = _table("Services.csv").with_columns(
        pl.col("ConsumedService").str.strip_chars().str.to_lowercase().fill_null(""),
        pl.col("ResourceType").str.strip_chars().str.to_lowercase().fill_null(""),
    ).with_row_index("i")
    pair: dict[str, int] = {}
    by_type: dict[str, int] = {}
    by_service: dict[str, int] = {}
    for i, consumed, rtype in df.select("i", "ConsumedService", "ResourceType").iter_rows():
        pair.setdefault(f"{consumed}|{rtype}", i)
        if rtype:
            by_type.setdefault(rtype, i)
        if consumed:
            by_service.setdefault(consumed, i)
    fields = {
        name: {i: v for i, v in zip(df["i"].to_list(), df[name].to_list(), strict=True) if v is not None}
        for name in SERVICE_FIELDS
    }
    return pair, by_type, by_service, fields


def service_index(consumed_service: pl.Expr, resource_type: pl.Expr) -> pl.Expr:
    """The Services.csv row for a charge: matched on ConsumedService and resource type
    together (case-insensitively, as Microsoft's ``Get-FinOpsSchemaService`` does), else on
    the resource type alone, else on ConsumedService alone; null where nothing matches."""
    pair, by_type, by_service, _ = _service_maps()
    consumed = consumed_service.str.strip_chars().str.to_lowercase()
    rtype = resource_type.str.to_lowercase()
    return pl.coalesce(
        mapped(pl.concat_str([consumed.fill_null(""), pl.lit("|"), rtype.fill_null("")]), pair,
               return_dtype=pl.UInt32),
        mapped(rtype, by_type, return_dtype=pl.UInt32),
        mapped(consumed, by_service, return_dtype=pl.UInt32),
    )


def service_field(index: pl.Expr, name: str) -> pl.Expr:
    """ServiceName, ServiceCategory, ServiceSubcategory or PublisherName of a Services.csv row."""
    return mapped(index, _service_maps()[3][name])


def arm_type(resource_id: pl.Expr) -> pl.Expr:
    """``/subscriptions/…/providers/Microsoft.Sql/servers/s/databases/d`` →
    ``microsoft.sql/servers/databases``; null for ids with no provider segment.

    What follows the last ``/providers/`` is the namespace, then type/name pairs; the
    names are dropped (a trailing type without a name, as in
    ``…/reservationOrders/o/reservations/``, is kept).
    """
    low = resource_id.str.to_lowercase()
    tail = low.str.replace(r"^.*/providers/", "").str.strip_chars_end("/")
    types = tail.str.replace_all(r"/([^/]+)/[^/]+", "/$1")
    return pl.when(low.str.contains("/providers/", literal=True) & tail.str.contains("/", literal=True)) \
        .then(types)
