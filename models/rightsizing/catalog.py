"""The instance catalog: vCPU, memory, architecture, family, generation, burst baseline and
on-demand list price per region, for AWS (EC2, RDS), GCP machine types and Azure VM sizes.

Sources, later ones overriding earlier ones row by row:

1. the offline snapshot shipped in ``catalog_data/`` (see its README for the date);
2. the warehouse dataset ``instance_catalog`` (partition ``provider=<aws|gcp|azure>/source=<id>``)
   with :data:`CATALOG_SCHEMA`. ``collectors/aws_pricing.py`` writes AWS rows from the Price
   List API (``finops collect catalog``). **Hook for GCP:** ``collectors/gcp_catalog.py``
   (Cloud Catalog API) writes its machine types with :func:`store_catalog` under
   ``provider=gcp``; nothing else is needed for them to be used here.

Prices are list prices; what a customer pays is read from the bill (see ``prices.py``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Final

import polars as pl

from finops.state import State
from finops.warehouse import Warehouse

DATA: Final = Path(__file__).resolve().parent / "catalog_data"
SNAPSHOT_DATE: Final = "2026-11-25"  # as in catalog_data/README.md (not installed with the package)
CATALOG: Final = "instance_catalog"
CATALOG_SCHEMA: Final[dict[str, pl.DataType]] = {
    "provider": pl.String(),  # aws | gcp | azure
    "service": pl.String(),  # ec2 | rds | compute | vm
    "instance_type": pl.String(),
    "family": pl.String(),
    "category": pl.String(),  # general | compute | memory | burstable | accelerated
    "generation": pl.Int64(),
    "architecture": pl.String(),  # x86_64 | arm64
    "vcpu": pl.Float64(),
    "memory_gib": pl.Float64(),
    "gpus": pl.Int64(),
    "burstable_baseline_pct": pl.Float64(),  # sustained CPU % of the whole instance; null: not burstable
    "region": pl.String(),
    "price_hourly": pl.Decimal(38, 12),  # on-demand list price, Linux, USD
}
REFERENCE_REGION: Final = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}
PROVIDER_ALIASES: Final = {
    "aws": "aws", "amazon web services": "aws", "amazon": "aws",
    "gcp": "gcp", "google cloud": "gcp", "google": "gcp", "google cloud platform": "gcp",
    "azure": "azure", "microsoft": "azure", "microsoft azure": "azure",
}


def normalize_provider(text: str | None) -> str:
    if text is None:
        return "other"
    return PROVIDER_ALIASES.get(text.strip().lower(), text.strip().lower())


@dataclass(frozen=True)
class InstanceType:
    provider: str
    service: str
    name: str
    family: str
    category: str
    generation: int
    architecture: str
    vcpu: float
    memory_gib: float
    gpus: int = 0
    baseline_pct: float | None = None  # burstable: CPU % of the whole instance sustained on credits

    @property
    def burstable(self) -> bool:
        return self.baseline_pct is not None

    @property
    def baseline_vcpu(self) -> float:
        """vCPUs sustained without spending credits (all of them when not burstable)."""
        return self.vcpu if self.baseline_pct is None else self.vcpu * self.baseline_pct / 100.0

    def describe(self) -> dict[str, object]:
        out: dict[str, object] = {"type": self.name, "vcpu": self.vcpu, "memory_gib": self.memory_gib,
                                  "architecture": self.architecture, "family": self.family}
        if self.burstable:
            out["baseline_pct"] = self.baseline_pct
        return out


@dataclass(frozen=True)
class ListPrice:
    price: Decimal
    region: str  # the region the price is for (the reference region when the asked one is missing)
    exact_region: bool


@dataclass
class Catalog:
    types: dict[tuple[str, str], InstanceType] = field(default_factory=dict)
    prices: dict[tuple[str, str, str], Decimal] = field(default_factory=dict)
    # (provider, region, resource_type, variant) -> (unit, price)
    other: dict[tuple[str, str, str, str], tuple[str, Decimal]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def spec(self, provider: str, name: str | None) -> InstanceType | None:
        if not name:
            return None
        return self.types.get((normalize_provider(provider), name))

    def list_price(self, provider: str, region: str | None, name: str) -> ListPrice | None:
        """The on-demand price in ``region``, else in the provider's reference region."""
        p = normalize_provider(provider)
        if region and (p, region, name) in self.prices:
            return ListPrice(self.prices[(p, region, name)], region, True)
        ref = REFERENCE_REGION.get(p)
        if ref and (p, ref, name) in self.prices:
            return ListPrice(self.prices[(p, ref, name)], ref, False)
        return None

    def price_region(self, provider: str, region: str | None) -> str | None:
        """The region whose prices compare types: ``region`` if the catalog has it."""
        p = normalize_provider(provider)
        if region and any(k[0] == p and k[1] == region for k in self.prices):
            return region
        return REFERENCE_REGION.get(p)

    def candidates(self, current: InstanceType, *, cross_family: bool) -> list[InstanceType]:
        """Types a resource could move to: same provider, service and architecture, no
        accelerators; the same family unless crossing families is allowed."""
        return [
            t for t in self.types.values()
            if t.provider == current.provider and t.service == current.service
            and t.architecture == current.architecture and t.gpus == 0
            and (cross_family or t.family == current.family)
        ]

    def other_price(self, provider: str, region: str | None, resource_type: str,
                    variant: str) -> tuple[str, Decimal] | None:
        p = normalize_provider(provider)
        for reg in (region, REFERENCE_REGION.get(p)):
            if reg and (p, reg, resource_type, variant) in self.other:
                return self.other[(p, reg, resource_type, variant)]
        return None


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


@cache
def snapshot() -> Catalog:
    """The offline snapshot in ``catalog_data/`` (read once per process)."""
    cat = Catalog(sources=["snapshot " + snapshot_date()])
    with (DATA / "instance_types.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            t = InstanceType(r["provider"], r["service"], r["instance_type"], r["family"],
                             r["category"], int(r["generation"]), r["architecture"],
                             float(r["vcpu"]), float(r["memory_gib"]), int(r["gpus"] or 0),
                             _float(r["burstable_baseline_pct"]))
            cat.types[(t.provider, t.name)] = t
    with (DATA / "prices.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            cat.prices[(r["provider"], r["region"], r["instance_type"])] = Decimal(r["price_hourly"])
    with (DATA / "other_prices.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            cat.other[(r["provider"], r["region"], r["resource_type"], r["instance_type"])] = (
                r["unit"], Decimal(r["price"]))
    return cat


def snapshot_date() -> str:
    return SNAPSHOT_DATE


def merge_rows(base: Catalog, rows: Iterable[dict[str, object]], source: str) -> Catalog:
    """A copy of ``base`` with ``rows`` (CATALOG_SCHEMA dicts) laid over it."""
    cat = Catalog(dict(base.types), dict(base.prices), dict(base.other), [*base.sources, source])
    for r in rows:
        provider = normalize_provider(str(r["provider"]))
        name = str(r["instance_type"])
        old = cat.types.get((provider, name))
        vcpu, mem = r.get("vcpu"), r.get("memory_gib")
        if vcpu is not None and mem is not None:
            baseline = r.get("burstable_baseline_pct")
            if baseline is None and old is not None:
                baseline = old.baseline_pct
            cat.types[(provider, name)] = InstanceType(
                provider, str(r.get("service") or (old.service if old else "ec2")), name,
                str(r.get("family") or (old.family if old else name.rsplit(".", 1)[0])),
                str(r.get("category") or (old.category if old else "general")),
                int(r.get("generation") or (old.generation if old else 0)),  # type: ignore[call-overload]
                str(r.get("architecture") or (old.architecture if old else "x86_64")),
                float(vcpu), float(mem),  # type: ignore[arg-type]
                int(r.get("gpus") or (old.gpus if old else 0)),  # type: ignore[call-overload]
                None if baseline is None else float(baseline),  # type: ignore[arg-type]
            )
        price, region = r.get("price_hourly"), r.get("region")
        if price is not None and region:
            cat.prices[(provider, str(region), name)] = Decimal(str(price))
    return cat


def load_catalog(wh: Warehouse | None = None) -> Catalog:
    """The snapshot, with whatever collectors stored in the warehouse laid over it."""
    cat = snapshot()
    if wh is None or not wh.has_data(CATALOG):
        return cat
    df = wh.scan(CATALOG).collect()
    for (provider, source), part in df.group_by("provider", "source", maintain_order=True):
        rows = part.with_columns(pl.lit(provider).alias("provider")).to_dicts()
        cat = merge_rows(cat, rows, f"{provider}:{source}")
    return cat


def store_catalog(wh: Warehouse, state: State, frame: pl.DataFrame, *, provider: str,
                  source: str) -> int:
    """Replace the ``instance_catalog`` partition of (provider, source) with ``frame``.

    ``frame`` has :data:`CATALOG_SCHEMA` columns (missing ones are null); this is the call
    ``collectors/gcp_catalog.py`` and ``collectors/aws_pricing.py`` make.
    """
    cols = [pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
            for c, t in CATALOG_SCHEMA.items()]
    clean = frame.select(cols).with_columns(pl.lit(normalize_provider(provider)).alias("provider"))
    run_id = state.start_run("collect", f"catalog-{provider}-{source}", [])
    try:
        wh.replace_partition(CATALOG, {"provider": normalize_provider(provider), "source": source},
                             clean.drop("provider"), run_id=run_id)
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        wh.drop_staging(run_id)
    state.finish_run(run_id, status="succeeded", rows_in=clean.height, rows_out=clean.height)
    return clean.height
