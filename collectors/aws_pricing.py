"""AWS list prices and instance specifications from the Price List API
(``finops collect catalog``), through boto3's ``pricing`` client.

``GetProducts`` is paginated (``NextToken``) and filtered to one region, Linux, shared
tenancy, no pre-installed software, on-demand capacity (EC2) or single-AZ MySQL (RDS).
Each product's attributes give vCPU, memory, architecture (Graviton processors are
``arm64``), GPUs and family; its ``OnDemand`` hourly price dimension gives the price.
Rows go to the warehouse dataset ``instance_catalog`` (``provider=aws``,
``source=price-list-<service>-<region>``), where they override the offline snapshot.
Burstable types keep the snapshot's credit baseline (the API does not publish it); a
burstable type the snapshot does not know is stored with its price only, so it is never
offered as a candidate with a baseline it does not have.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import polars as pl

from collectors.aws_inventory import aws_errors, aws_session
from finops.errors import BadInputError
from finops.state import State
from finops.warehouse import Warehouse
from models.rightsizing.catalog import CATALOG_SCHEMA, snapshot, store_catalog

PRICING_REGION: Final = "us-east-1"  # the Price List API answers in us-east-1, eu-central-1, ap-south-1
SERVICES: Final = {
    "ec2": ("AmazonEC2", {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA",
                          "capacitystatus": "Used", "licenseModel": "No License required"}),
    "rds": ("AmazonRDS", {"databaseEngine": "MySQL", "deploymentOption": "Single-AZ"}),
}
CATEGORIES: Final = {"general purpose": "general", "compute optimized": "compute",
                     "memory optimized": "memory", "gpu instance": "accelerated",
                     "machine learning asic instances": "accelerated", "storage optimized": "storage"}


def pricing_client(session: Any) -> Any:
    return session.client("pricing", region_name=PRICING_REGION)


def products(client: Any, service: str, region: str) -> Iterator[dict[str, Any]]:
    code, fixed = SERVICES[service]
    filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v}
               for k, v in {**fixed, "regionCode": region}.items()]
    for page in client.get_paginator("get_products").paginate(
            ServiceCode=code, Filters=filters, FormatVersion="aws_v1"):
        for item in page.get("PriceList", []):
            yield json.loads(item) if isinstance(item, str) else item


def _number(text: str | None) -> float | None:
    if not text:
        return None
    match = re.search(r"[\d.]+", text.replace(",", ""))
    return float(match.group()) if match else None


def on_demand_hourly(product: dict[str, Any]) -> Decimal | None:
    for term in (product.get("terms", {}).get("OnDemand") or {}).values():
        for dim in (term.get("priceDimensions") or {}).values():
            if str(dim.get("unit", "")).lower() in {"hrs", "hours", "hour"}:
                try:
                    price = Decimal(str(dim.get("pricePerUnit", {}).get("USD")))
                except InvalidOperation:
                    continue
                if price > 0:
                    return price
    return None


def product_row(product: dict[str, Any], service: str, region: str) -> dict[str, Any] | None:
    attrs = product.get("product", {}).get("attributes", {})
    itype = attrs.get("instanceType")
    price = on_demand_hourly(product)
    if not itype or price is None:
        return None
    family = itype.rsplit(".", 1)[0]
    bare = family.removeprefix("db.")
    processor = str(attrs.get("physicalProcessor", "")).lower()
    arm = "graviton" in processor or "arm" in str(attrs.get("processorArchitecture", "")).lower()
    arch = "arm64" if arm else "x86_64"
    known = snapshot().types.get(("aws", itype))
    burstable = bare[:1] == "t" and bare[1:2].isdigit()
    category = "burstable" if burstable else CATEGORIES.get(str(attrs.get("instanceFamily", "")).lower(),
                                                            "general")
    gen = re.search(r"\d+", bare)
    vcpu, memory = _number(attrs.get("vcpu")), _number(attrs.get("memory"))
    if burstable and known is None:
        vcpu = memory = None  # without its credit baseline it must not be a candidate
    return {
        "service": service, "instance_type": itype, "family": family, "category": category,
        "generation": int(gen.group()) if gen else None, "architecture": arch,
        "vcpu": vcpu, "memory_gib": memory, "gpus": int(_number(attrs.get("gpu")) or 0),
        "burstable_baseline_pct": known.baseline_pct if known else None,
        "region": region, "price_hourly": price,
    }


def fetch_catalog(client: Any, service: str, region: str) -> pl.DataFrame:
    """The region's catalog rows for ``service`` (ec2 or rds), one per instance type."""
    if service not in SERVICES:
        raise BadInputError(f"--service {service!r} is not one of {', '.join(SERVICES)}")
    rows: dict[str, dict[str, Any]] = {}
    for product in products(client, service, region):
        row = product_row(product, service, region)
        if row is not None:
            # Several SKUs can share a type (e.g. capacity variants): keep the cheapest.
            old = rows.get(row["instance_type"])
            if old is None or row["price_hourly"] < old["price_hourly"]:
                rows[row["instance_type"]] = row
    if not rows:
        return pl.DataFrame(schema=CATALOG_SCHEMA)
    return pl.DataFrame([{"provider": "aws", **rows[k]} for k in sorted(rows)], schema=CATALOG_SCHEMA)


def collect_aws_catalog(wh: Warehouse, state: State, *, regions: list[str], services: list[str],
                        profile: str | None = None, client: Any = None) -> list[tuple[str, str, int]]:
    """Fetch and store each (service, region); returns (service, region, rows) for each."""
    if not regions:
        raise BadInputError("give at least one --region", hint="e.g. --region us-east-1")
    client = client or pricing_client(aws_session(profile))
    out = []
    for service in services:
        for region in regions:
            with aws_errors(f"Price List API ({service}, {region})"):
                frame = fetch_catalog(client, service, region)
            if frame.is_empty():
                raise BadInputError(f"the Price List API returned no {service} prices for {region}",
                                    hint="Check the region code (e.g. us-east-1).")
            n = store_catalog(wh, state, frame, provider="aws", source=f"price-list-{service}-{region}")
            out.append((service, region, n))
    return out
