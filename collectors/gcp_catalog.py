"""List prices from the Cloud Billing Catalog API, cached on disk under the warehouse.

``<home>/_cache/gcp_catalog/`` holds ``services.json`` and one Parquet file per service
and currency (``skus-<service id>-<CUR>.parquet``): every SKU with its regions, units
and tiered list prices. The collector uses the first tier's price to fill ListCost
where the export has no ``cost_at_list``; right-sizing asks :func:`sku_price` and
:func:`machine_type_price` for the price of a SKU or a machine type in a region.

Nothing here calls Google unless asked to fetch (``--list-prices``); a fresh cache
(younger than ``MAX_AGE``) is used without a call.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from collectors.gcp_bigquery import anonymous_for
from finops.errors import ConfigError, FinopsError
from finops.focus import MONEY
from finops.progress import progress

if TYPE_CHECKING:
    from google.cloud import billing_v1

MAX_AGE_SECONDS = 7 * 24 * 3600
COMPUTE_ENGINE = "6F81-5844-456A"
PriceSource = Callable[[set[str], set[str]], pl.DataFrame | None]

SKU_SCHEMA = pl.Schema([
    ("service_id", pl.String()), ("service_name", pl.String()), ("sku_id", pl.String()),
    ("description", pl.String()), ("resource_family", pl.String()), ("resource_group", pl.String()),
    ("usage_type", pl.String()), ("regions", pl.List(pl.String())), ("usage_unit", pl.String()),
    ("usage_unit_description", pl.String()), ("base_unit", pl.String()),
    ("base_unit_conversion_factor", pl.Float64()), ("display_quantity", pl.Float64()),
    ("start_usage_amount", pl.Float64()), ("unit_price", pl.Decimal(38, 12)), ("currency", pl.String()),
    ("effective_time", pl.String()),
])

def cache_dir(home: Path) -> Path:
    return Path(home) / "_cache" / "gcp_catalog"


def make_client(endpoint: str | None = None) -> billing_v1.CloudCatalogClient:
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import billing_v1

    kwargs: dict[str, Any] = {"transport": "rest"}
    if endpoint:
        kwargs["client_options"] = {"api_endpoint": endpoint}
    if anonymous_for(endpoint):
        kwargs["credentials"] = AnonymousCredentials()  # type: ignore[no-untyped-call]
    try:
        return billing_v1.CloudCatalogClient(**kwargs)
    except DefaultCredentialsError as exc:
        raise ConfigError(
            f"no Google Cloud credentials for the Cloud Billing Catalog API: {str(exc).splitlines()[0]}",
            hint="Run `gcloud auth application-default login`, or leave out --list-prices "
            "(ListCost then comes from the export's cost_at_list, or cost).",
        ) from None


def _money(units: Any, nanos: Any) -> Decimal:
    return Decimal(int(units or 0)) + Decimal(int(nanos or 0)) / Decimal(1_000_000_000)


def _time_text(value: Any) -> str | None:
    if not value:
        return None
    for method in ("isoformat", "rfc3339", "ToJsonString"):
        if hasattr(value, method):
            return str(getattr(value, method)())
    return str(value)


def _sku_rows(service_id: str, service_name: str, sku: Any) -> list[dict[str, Any]]:
    rows = []
    category = sku.category
    for info in sku.pricing_info[:1]:  # the current price
        expr = info.pricing_expression
        for rate in expr.tiered_rates:
            rows.append({
                "service_id": service_id, "service_name": service_name, "sku_id": sku.sku_id,
                "description": sku.description, "resource_family": category.resource_family,
                "resource_group": category.resource_group, "usage_type": category.usage_type,
                "regions": list(sku.service_regions), "usage_unit": expr.usage_unit,
                "usage_unit_description": expr.usage_unit_description,
                "base_unit": expr.base_unit,
                "base_unit_conversion_factor": float(expr.base_unit_conversion_factor or 0),
                "display_quantity": float(expr.display_quantity or 1),
                "start_usage_amount": float(rate.start_usage_amount or 0),
                "unit_price": _money(rate.unit_price.units, rate.unit_price.nanos),
                "currency": rate.unit_price.currency_code,
                "effective_time": _time_text(info.effective_time),
            })
    return rows


def _fresh(path: Path) -> bool:
    return path.exists() and time.time() - path.stat().st_mtime < MAX_AGE_SECONDS


def _google_call(what: str, call: Callable[[], Any]) -> Any:
    from google.api_core.exceptions import GoogleAPICallError, RetryError
    from google.auth.exceptions import GoogleAuthError

    try:
        return call()
    except (GoogleAPICallError, RetryError, GoogleAuthError, OSError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise FinopsError(f"Cloud Billing Catalog API, {what}: {first}",
                          hint="Try again later, or leave out --list-prices.") from None


def fetch_services(home: Path, client: billing_v1.CloudCatalogClient) -> dict[str, str]:
    """service id → display name, from the cache when fresh."""
    path = cache_dir(home) / "services.json"
    if _fresh(path):
        cached: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return cached

    def listing() -> dict[str, str]:
        return {s.service_id: s.display_name for s in client.list_services(request={"page_size": 5000})}

    services: dict[str, str] = _google_call("listing services", listing)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(services, sort_keys=True, indent=0), encoding="utf-8")
    tmp.replace(path)
    return services


def sku_file(home: Path, service_id: str, currency: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9\-]", "_", service_id)
    return cache_dir(home) / f"skus-{safe}-{currency.upper()}.parquet"


def fetch_skus(home: Path, client: billing_v1.CloudCatalogClient, service_id: str,
               service_name: str, currency: str) -> pl.DataFrame:
    """Every SKU of a service with its list prices in ``currency``, cached."""
    path = sku_file(home, service_id, currency)
    if _fresh(path):
        return pl.read_parquet(path)

    def listing() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        request = {"parent": f"services/{service_id}", "currency_code": currency.upper(),
                   "page_size": 5000}
        for sku in client.list_skus(request=request):
            rows.extend(_sku_rows(service_id, service_name, sku))
        return rows

    rows = _google_call(f"listing SKUs of {service_name or service_id}", listing)
    df = pl.DataFrame(rows, schema=SKU_SCHEMA)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    df.write_parquet(tmp)
    tmp.replace(path)
    return df


def fetch_catalog(home: Path, service_ids: Iterable[str], currencies: Iterable[str], *,
                  endpoint: str | None = None,
                  client: billing_v1.CloudCatalogClient | None = None) -> pl.DataFrame:
    """Fetch (or reuse) the SKUs of the given services in the given currencies."""
    wanted = sorted(set(service_ids))
    curs = sorted({c.upper() for c in currencies if c})
    todo = [(s, c) for s in wanted for c in curs if not _fresh(sku_file(home, s, c))]
    if todo:
        client = client or make_client(endpoint)
        names = fetch_services(home, client)
        with progress("fetching list prices", len(todo)) as step:
            for service_id, currency in todo:
                if service_id in names:
                    fetch_skus(home, client, service_id, names[service_id], currency)
                step.advance(f"{names.get(service_id, service_id)} {currency}")
    return cached_catalog(home, wanted, curs)


def cached_catalog(home: Path, service_ids: Iterable[str] | None = None,
                   currencies: Iterable[str] | None = None) -> pl.DataFrame:
    """The SKUs in the cache (all of them, or of the given services and currencies)."""
    root = cache_dir(home)
    files = sorted(root.glob("skus-*.parquet")) if root.exists() else []
    frames = [pl.read_parquet(p) for p in files]
    if not frames:
        return pl.DataFrame(schema=SKU_SCHEMA)
    df = pl.concat(frames, how="vertical_relaxed")
    if service_ids is not None:
        df = df.filter(pl.col("service_id").is_in(list(service_ids)))
    if currencies is not None:
        df = df.filter(pl.col("currency").is_in([c.upper() for c in currencies]))
    return df


def list_prices(catalog: pl.DataFrame) -> pl.DataFrame:
    """First-tier list price per pricing unit, per SKU and currency (for ListCost)."""
    return (
        catalog.filter(pl.col("start_usage_amount") == 0)
        .group_by("sku_id", "currency")
        .agg((pl.col("unit_price").first().cast(pl.Float64)
              / pl.col("display_quantity").first()).cast(MONEY).alias("unit_price"))
    )


def prices_for_ingest(home: Path, *, fetch: bool, endpoint: str | None = None) -> PriceSource:
    """What the collector calls once it knows the services and currencies in the data."""

    def source(service_ids: set[str], currencies: set[str]) -> pl.DataFrame | None:
        if fetch:
            catalog = fetch_catalog(home, service_ids, currencies, endpoint=endpoint)
        else:
            catalog = cached_catalog(home, service_ids, currencies)
        return list_prices(catalog) if catalog.height else None

    return source


# ---- for right-sizing ---------------------------------------------------------------
def sku_price(home: Path, sku_id: str, *, region: str | None = None, currency: str = "USD"
              ) -> Decimal | None:
    """A SKU's first-tier list price per pricing unit (cache only), or None."""
    df = cached_catalog(home, currencies=[currency]).filter(
        (pl.col("sku_id") == sku_id) & (pl.col("start_usage_amount") == 0))
    if region is not None:
        df = df.filter(pl.col("regions").list.contains(region))
    if not df.height:
        return None
    row = df.row(0, named=True)
    price: Decimal = row["unit_price"] / Decimal(str(row["display_quantity"] or 1))
    return price


@dataclass(frozen=True)
class MachinePrice:
    machine_type: str
    region: str
    vcpus: float
    memory_gb: float
    core_sku: str
    ram_sku: str
    hourly: Decimal
    currency: str

    @property
    def monthly(self) -> Decimal:
        """730 hours, the usual month for on-demand comparisons."""
        return self.hourly * 730


# family → (description pattern before "Core"/"Ram", GB per vCPU for standard/highmem/highcpu)
_FAMILIES: dict[str, tuple[str, dict[str, float]]] = {
    "n1": (r"N1 Predefined Instance", {"standard": 3.75, "highmem": 6.5, "highcpu": 0.9}),
    "n2": (r"N2 Instance", {"standard": 4, "highmem": 8, "highcpu": 1}),
    "n2d": (r"N2D AMD Instance", {"standard": 4, "highmem": 8, "highcpu": 1}),
    "e2": (r"E2 Instance", {"standard": 4, "highmem": 8, "highcpu": 1}),
    "c2": (r"Compute optimized", {"standard": 4}),
    "c2d": (r"C2D AMD Instance", {"standard": 4, "highmem": 8, "highcpu": 2}),
    "c3": (r"C3 Instance", {"standard": 4, "highmem": 8, "highcpu": 2}),
    "t2d": (r"T2D AMD Instance", {"standard": 4}),
}
_MACHINE = re.compile(r"^(?P<family>[a-z0-9]+)-(?P<shape>standard|highmem|highcpu)-(?P<vcpus>\d+)$")
_EXCLUDE = r"(?i)custom|sole tenancy|preemptible|spot|commitment|extended"


def machine_type_price(home: Path, machine_type: str, region: str, *, currency: str = "USD"
                       ) -> MachinePrice | None:
    """On-demand list price of a predefined Compute Engine machine type in a region,
    from the cached catalog (vCPU price × vCPUs + RAM price × GB); None if unknown."""
    m = _MACHINE.match(machine_type)
    if not m or m["family"] not in _FAMILIES:
        return None
    pattern, shapes = _FAMILIES[m["family"]]
    if m["shape"] not in shapes:
        return None
    vcpus = float(m["vcpus"])
    memory = vcpus * shapes[m["shape"]]
    skus = cached_catalog(home, [COMPUTE_ENGINE], [currency]).filter(
        pl.col("regions").list.contains(region)
        & (pl.col("start_usage_amount") == 0)
        & ~pl.col("description").str.contains(_EXCLUDE)
        & pl.col("usage_type").is_in(["OnDemand", ""])
    )

    def pick(kind: str) -> dict[str, Any] | None:
        rx = rf"^{pattern} {kind} running in "
        hits = skus.filter(pl.col("description").str.contains(rx)).sort("sku_id")
        return hits.row(0, named=True) if hits.height else None

    core, ram = pick("Core"), pick("Ram")
    if core is None or ram is None:
        return None
    hourly = (core["unit_price"] / Decimal(str(core["display_quantity"] or 1)) * Decimal(str(vcpus))
              + ram["unit_price"] / Decimal(str(ram["display_quantity"] or 1)) * Decimal(str(memory)))
    return MachinePrice(machine_type, region, vcpus, memory, core["sku_id"], ram["sku_id"], hourly,
                        currency.upper())
