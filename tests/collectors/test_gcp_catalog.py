"""List prices from the Cloud Billing Catalog API (REST transport, loopback stand-in):
paging, the on-disk cache, ListCost filled where the export has none, machine prices."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import google.cloud.billing_v1  # noqa: F401  a dev dependency: missing, the test must fail, not skip
import polars as pl

from collectors.gcp_catalog import (
    cache_dir,
    cached_catalog,
    fetch_catalog,
    machine_type_price,
    sku_price,
)
from tests.core.cli import finops
from tests.fixtures.gcp.fake_google import FakeGoogle, serve

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gcp"
COMPUTE, STORAGE = "6F81-5844-456A", "95FF-2EF5-5EA1"


def sku(service: str, sku_id: str, description: str, nanos: int, *, unit: str = "h",
        regions: tuple[str, ...] = ("us-central1", "us-east1"), usage_type: str = "OnDemand",
        tiers: tuple[tuple[float, int, int], ...] | None = None) -> dict[str, Any]:
    rates = [{"startUsageAmount": start, "unitPrice": {"currencyCode": "USD", "units": str(units),
                                                      "nanos": n}}
             for start, units, n in (tiers or ((0, 0, nanos),))]
    return {
        "name": f"services/{service}/skus/{sku_id}", "skuId": sku_id, "description": description,
        "category": {"serviceDisplayName": "x", "resourceFamily": "Compute", "resourceGroup": "G",
                     "usageType": usage_type},
        "serviceRegions": list(regions),
        "pricingInfo": [{
            "summary": "", "effectiveTime": "2024-04-01T00:00:00Z", "currencyConversionRate": 1,
            "pricingExpression": {"usageUnit": unit, "usageUnitDescription": unit, "baseUnit": "s",
                                  "baseUnitDescription": "second", "baseUnitConversionFactor": 3600,
                                  "displayQuantity": 1, "tieredRates": rates},
        }],
        "serviceProviderName": "Google",
    }


def fake_catalog() -> FakeGoogle:
    google = FakeGoogle()
    google.services = [
        {"name": f"services/{COMPUTE}", "serviceId": COMPUTE, "displayName": "Compute Engine",
         "businessEntityName": "businessEntities/GCP"},
        {"name": f"services/{STORAGE}", "serviceId": STORAGE, "displayName": "Cloud Storage",
         "businessEntityName": "businessEntities/GCP"},
        {"name": "services/24E6-581D-38E5", "serviceId": "24E6-581D-38E5", "displayName": "BigQuery",
         "businessEntityName": "businessEntities/GCP"},
    ]
    google.skus = {
        COMPUTE: [
            sku(COMPUTE, "2E27-4F75-95CD", "N1 Predefined Instance Core running in Americas", 31611000),
            sku(COMPUTE, "6C71-A2A1-0A3B", "N1 Predefined Instance Ram running in Americas", 4237000,
                unit="GiBy.h"),
            sku(COMPUTE, "1B1C-0000-SPOT", "Spot Preemptible N1 Predefined Instance Core running in "
                "Americas", 6667000, usage_type="Preemptible"),
            sku(COMPUTE, "BB77-5FDA-4B38", "N2 Instance Core running in Americas", 31611000),
            sku(COMPUTE, "BB77-RAM0-0002", "N2 Instance Ram running in Americas", 4237000,
                unit="GiBy.h"),
            sku(COMPUTE, "B2BA-9E4F-9E30", "Commitment v1: Cpu in Americas for 1 Year", 19915000,
                usage_type="Commit1Yr"),
        ],
        STORAGE: [
            sku(STORAGE, "E5F0-6A5D-7BAD", "Standard Storage US Multi-region", 0, unit="GiBy.mo",
                regions=("us",), tiers=((0, 0, 26000000), (1024, 0, 25000000))),
        ],
    }
    return google


def test_fetch_pages_caches_and_reuses(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    with serve(fake_catalog()) as (google, endpoint):
        df = fetch_catalog(home, [COMPUTE, STORAGE], ["USD"], endpoint=endpoint)
        assert df.height == 8  # 6 compute SKUs, storage with 2 tiers
        sku_calls = [p for _, p in google.requests if p.endswith("/skus")]
        assert len(sku_calls) == 3 + 1  # paged by 2: compute 3 pages, storage 1
        assert {p for _, p in google.requests if p == "/v1/services"} == {"/v1/services"}
        assert (cache_dir(home) / "services.json").exists()
        assert sorted(p.name for p in cache_dir(home).glob("skus-*")) == [
            f"skus-{COMPUTE}-USD.parquet", f"skus-{STORAGE}-USD.parquet"]
        google.requests.clear()
        again = fetch_catalog(home, [COMPUTE, STORAGE], ["USD"], endpoint=endpoint)
        assert google.requests == []  # a fresh cache is not fetched again
        assert again.sort("sku_id", "start_usage_amount").equals(df.sort("sku_id", "start_usage_amount"))
    core = df.filter(pl.col("sku_id") == "2E27-4F75-95CD").row(0, named=True)
    assert core["unit_price"] == Decimal("0.031611")
    assert core["regions"] == ["us-central1", "us-east1"]
    assert core["usage_unit"] == "h"


def test_prices_for_right_sizing(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    with serve(fake_catalog()) as (_, endpoint):
        fetch_catalog(home, [COMPUTE, STORAGE], ["USD"], endpoint=endpoint)
    # Offline from here on: the cache answers.
    assert sku_price(home, "2E27-4F75-95CD", region="us-central1") == Decimal("0.031611")
    assert sku_price(home, "2E27-4F75-95CD", region="europe-west1") is None
    assert sku_price(home, "E5F0-6A5D-7BAD") == Decimal("0.026")
    n1 = machine_type_price(home, "n1-standard-4", "us-central1")
    assert n1 is not None
    assert (n1.vcpus, n1.memory_gb) == (4.0, 15.0)
    assert (n1.core_sku, n1.ram_sku) == ("2E27-4F75-95CD", "6C71-A2A1-0A3B")
    assert n1.hourly == Decimal("0.031611") * 4 + Decimal("0.004237") * 15
    assert n1.monthly == n1.hourly * 730
    n2 = machine_type_price(home, "n2-highmem-2", "us-east1")
    assert n2 is not None and n2.memory_gb == 16.0
    assert machine_type_price(home, "n1-standard-4", "asia-east1") is None
    assert machine_type_price(home, "e2-micro", "us-central1") is None
    assert cached_catalog(home, currencies=["EUR"]).height == 0


def test_list_cost_filled_from_the_catalog(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    with serve(fake_catalog()) as (google, endpoint):
        proc = finops("collect", "gcp", "--path", FIXTURES / "export-2024-04.jsonl", "--home", home,
                      "--list-prices", "--catalog-endpoint", endpoint, "--format", "json", check=True)
        assert all(r["reconciled"] for r in json.loads(proc.stdout))
        asked = {p for _, p in google.requests}
    # Only services with rows lacking cost_at_list were fetched.
    assert f"/v1/services/{COMPUTE}/skus" in asked
    assert "/v1/services/24E6-581D-38E5/skus" not in asked
    df = pl.read_parquet(next(home.glob("billing/source=*/billing_period=2024-04/*.parquet")))
    covered = df.filter((pl.col("SkuId") == "2E27-4F75-95CD") & (pl.col("x_SourceRow") == 2)).row(
        0, named=True)
    assert covered["x_ListCostSource"] == "catalog"
    assert covered["ListUnitPrice"] == Decimal("0.031611")
    assert covered["ListCost"] == Decimal("0.031611") * 632
    first = df.filter(pl.col("x_SourceRow") == 1).row(0, named=True)
    assert (first["x_ListCostSource"], first["ListCost"]) == ("export", Decimal("0.151733"))
    storage = df.filter(pl.col("SkuId") == "E5F0-6A5D-7BAD").row(0, named=True)
    assert storage["ListCost"] == Decimal("0.026") * Decimal("0.012")
    # Without --list-prices, the cache still fills ListCost, and Google is not called.
    proc = finops("collect", "gcp", "--path", FIXTURES / "export-2024-04.jsonl", "--home", home,
                  "--catalog-endpoint", "http://127.0.0.1:9", check=True)
    again = pl.read_parquet(next(home.glob("billing/source=*/billing_period=2024-04/*.parquet")))
    assert again.sort("x_SourceRow")["ListCost"].to_list() == df.sort("x_SourceRow")["ListCost"].to_list()
