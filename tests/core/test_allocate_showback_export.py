"""The thin slice end to end: collect, allocate by tags, showback, export."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from finops.warehouse import Warehouse
from tests.core.cli import finops
from tests.core.focus_files import row, write_csv

ROWS = [
    # April: acme by three spellings of the key, globex, and untagged.
    row("2026-04", 1, "100.10", tags='{"tenant":"acme","team":"data"}', service="Amazon EC2"),
    row("2026-04", 2, "50.05", tags='{"Tenant":" ACME ","Team":"data"}', service="Amazon S3"),
    row("2026-04", 3, "0.333333333333", effective="0.3", tags='{"user:tenant":"acme"}',
        service="Amazon S3"),
    row("2026-04", 3, "20.00", tags='{"tenant":"globex","owner":"web"}', service="Amazon EC2"),
    row("2026-04", 4, "7.77", tags="", service="AWS Support"),
    row("2026-04", 5, "-2.00", category="Credit", tags='{"tenant":"globex"}', service="Amazon EC2"),
    # May: less for acme, and a EUR account.
    row("2026-05", 1, "80.00", tags='{"tenant":"acme"}', service="Amazon EC2"),
    row("2026-05", 2, "30.00", tags='{"tenant":"globex"}', service="Amazon EC2"),
    row("2026-05", 2, "9.99", currency="EUR", tags='{"tenant":"acme"}', service="Amazon EC2",
        account="999"),
]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "wh"
    path = write_csv(tmp_path / "bill.csv", ROWS)
    finops("collect", "focus", "--path", path, "--home", home, "--source", "aws", check=True)
    finops("allocate", "--home", home, check=True)
    return home


def showback(home: Path, *args: str) -> list[dict[str, str]]:
    proc = finops("showback", "--home", home, "--format", "json", *args, check=True)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_showback_by_tenant_is_exact_and_shows_unallocated(home: Path) -> None:
    got = {r["tenant"]: (r["billed_cost"], r["effective_cost"])
           for r in showback(home, "--period", "2026-04", "--by", "tenant")}
    assert got == {
        "acme": ("150.48", "150.45"),  # 100.10 + 50.05 + 0.333333333333 → 150.483333333333
        "globex": ("18.00", "18.00"),
        "unallocated": ("7.77", "7.77"),
    }


def test_showback_by_tenant_and_service(home: Path) -> None:
    rows = showback(home, "--period", "2026-04", "--by", "tenant", "--by", "service")
    got = {(r["tenant"], r["service"]): r["effective_cost"] for r in rows}
    assert got == {("acme", "Amazon EC2"): "100.10", ("acme", "Amazon S3"): "50.35",
                   ("globex", "Amazon EC2"): "18.00", ("unallocated", "AWS Support"): "7.77"}
    assert list(rows[0]) == ["tenant", "service", "billed_cost", "effective_cost"]


def test_two_currencies_are_never_added(home: Path) -> None:
    rows = showback(home, "--period", "2026-05", "--by", "tenant")
    got = {(r["tenant"], r["currency"]): r["billed_cost"] for r in rows}
    assert got == {("acme", "USD"): "80.00", ("globex", "USD"): "30.00", ("acme", "EUR"): "9.99"}


def test_csv_output_and_bad_grouping(home: Path) -> None:
    proc = finops("showback", "--home", home, "--period", "2026-04", "--by", "tenant",
                  "--format", "csv", check=True)
    assert proc.stdout.splitlines()[0] == "tenant,billed_cost,effective_cost"
    bad = finops("showback", "--home", home, "--period", "2026-04", "--by", "tenat")
    assert bad.returncode == 2
    assert "Did you mean 'tenant'" in bad.stderr and "Traceback" not in bad.stderr
    missing = finops("showback", "--home", home, "--period", "2025-01", "--by", "tenant")
    assert missing.returncode == 2
    assert "2026-04, 2026-05" in missing.stderr


def test_allocation_lineage_and_conservation(home: Path) -> None:
    wh = Warehouse(home)
    allocated = wh.scan("allocated").collect()
    billing = wh.scan("billing").collect()
    assert allocated.height == billing.height
    rules = dict(zip(allocated["x_SourceRow"].to_list(), allocated["x_AllocationRule"].to_list(),
                     strict=True))
    assert rules[1] == "tag:tenant"
    assert rules[2] == "tag:Tenant"
    assert rules[3] == "tag:user:tenant"
    assert rules[5] == "unallocated"
    teams = dict(zip(allocated["x_SourceRow"].to_list(), allocated["x_Team"].to_list(), strict=True))
    assert teams[2] == "data" and teams[4] == "web"
    for df in (billing, allocated):
        sums = df.group_by("billing_period", "BillingCurrency").agg(pl.col("BilledCost").sum())
        assert dict(zip(zip(sums["billing_period"], sums["BillingCurrency"], strict=True),
                        sums["BilledCost"], strict=True)) == {
            ("2026-04", "USD"): Decimal("176.253333333333"),
            ("2026-05", "USD"): Decimal("110"),
            ("2026-05", "EUR"): Decimal("9.99"),
        }


def test_allocate_prints_reconciliation(home: Path) -> None:
    proc = finops("allocate", "--home", home, "--format", "json", check=True)
    recon = json.loads(proc.stdout)
    assert all(r["reconciled"] for r in recon)
    assert {(r["period"], r["currency"], r["allocated_billed_cost"]) for r in recon} == {
        ("2026-04", "USD", "176.25"), ("2026-05", "USD", "110.00"), ("2026-05", "EUR", "9.99")}


def test_export_parquet_and_csv(home: Path, tmp_path: Path) -> None:
    finops("export", "--dataset", "allocated", "--format", "parquet", "--out", tmp_path / "out",
           "--home", home, check=True)
    back = pl.read_parquet(tmp_path / "out" / "allocated.parquet")
    assert back.height == len(ROWS)
    assert back.columns[:3] == ["AvailabilityZone", "BilledCost", "BillingAccountId"]
    assert back["BilledCost"].sum() == Decimal("296.243333333333")
    finops("export", "--dataset", "billing", "--format", "csv", "--out", tmp_path / "b.csv",
           "--home", home, check=True)
    flat = pl.read_csv(tmp_path / "b.csv", infer_schema=False)
    assert flat.height == len(ROWS)
    first = flat.filter(pl.col("x_SourceRow") == "1").row(0, named=True)
    assert json.loads(first["Tags"]) == {"tenant": "acme", "team": "data"}
    assert first["ChargePeriodStart"] == "2026-04-01T00:00:00Z"
    assert first["BillingAccountId"] == "000123456789"


def test_export_without_data_is_a_clear_error(tmp_path: Path) -> None:
    proc = finops("export", "--dataset", "billing", "--out", tmp_path / "x", "--home", tmp_path / "e")
    assert proc.returncode == 2
    assert "no billing data" in proc.stderr
