"""allocated/ as a ledger: narrow rows, the rest of each billing row read back by
x_BillingRow, refused once billing has changed, and exported as whole FOCUS rows."""

from __future__ import annotations

import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from finops.errors import StageError
from finops.state import open_state
from finops.warehouse import Warehouse
from models.access import View, scoped_warehouse
from models.allocation import allocate, allocated_rows, ledger
from models.allocation.engine import ALLOCATION_COLUMNS, LEDGER_FOCUS, LINEAGE
from tests.core.cli import finops
from tests.models.billing_rows import line, write_billing

CONFIG = """\
version: 1
tenants: [{id: acme}, {id: globex}, {id: initech}]
pools:
  - {id: support, match: {service: "AWS Support*"}, method: even}
  - {id: network, match: {service: Amazon VPC}, method: proportional}
"""

CENT = Decimal("0.01")
D = "2026-03-01"
ROWS = [
    line(D, "60.00", tags={"tenant": "acme", "env": "prod"}),
    line(D, "30.00", tags={"tenant": "globex", "env": "dev"}, resource="r-2"),
    line(D, "10.00", tags={"tenant": "initech"}, service="Amazon RDS", resource="db-1"),
    line(D, "9.00", tags={"cost": "support", "env": "shared"}, service="AWS Support (Business)"),
    line(D, "10.00", tags={"env": "shared"}, service="Amazon VPC", resource="nat-1"),
    line(D, "2.50", service="Mystery", resource="x-1"),
    line("2026-04-02", "7.00", tags={"tenant": "acme", "env": "prod"}),
]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "wh"
    write_billing(Warehouse(home), ROWS)
    (home / "allocation.yaml").write_text(CONFIG)
    allocate(Warehouse(home), open_state(home))
    return home


def billing_rows(home: Path, period: str) -> pl.DataFrame:
    return Warehouse(home).scan("billing", where={"billing_period": period}).collect()


def test_a_split_row_repeats_the_ledger_columns_only(home: Path) -> None:
    ledger = Warehouse(home).scan("allocated").collect()
    assert set(ledger.columns) == {*LEDGER_FOCUS, *LINEAGE, *ALLOCATION_COLUMNS, "billing_period"}
    assert "Tags" not in ledger.columns and "SkuId" not in ledger.columns
    # Support (3 tenants, even) and network (3 tenants, proportional) rows are split.
    assert ledger.height == len(ROWS) + 2 + 2


@pytest.mark.parametrize("chunk", [2, 3, 1_000])
def test_billing_columns_come_back_with_their_own_row(home: Path, chunk: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger, "JOIN_CHUNK_ROWS", chunk)  # slices of billing, or one
    monkeypatch.setattr(ledger, "SLICE_BLOCK", 1)
    parts = list(ledger.allocated_parts(Warehouse(home), ["2026-03"], columns=["Tags"]))
    assert "CACHE" not in parts[0].explain()  # one cached scan of billing would hold it all
    assert len(parts) > 3 if chunk < 4 else len(parts) == 3  # slices, unpaired, other sources
    rows = allocated_rows(Warehouse(home), ["2026-03"],
                          columns=["Tags", "ChargePeriodEnd", "ServiceName"],
                          derived={"env": pl.col("Tags").map.get("env")}).collect()
    billing = billing_rows(home, "2026-03")
    assert rows.height == Warehouse(home).scan("allocated", where={"billing_period": "2026-03"}) \
        .select(pl.len()).collect().item()
    for r in rows.iter_rows(named=True):
        source = billing.filter(pl.col("x_SourceRow") == r["x_SourceRow"]).row(0, named=True)
        assert r["ResourceId"] == source["ResourceId"]
        assert r["Tags"] == source["Tags"]
        assert r["ChargePeriodEnd"] == source["ChargePeriodEnd"]
        assert r["env"] == (source["Tags"] or {}).get("env")
    support = rows.filter(pl.col("ServiceName") == "AWS Support (Business)")
    assert sorted(support["x_Tenant"]) == ["acme", "globex", "initech"]
    assert set(support["env"]) == {"shared"}
    assert support["BilledCost"].sum() == Decimal("9.00")


def test_a_scoped_viewer_gets_billing_columns_of_its_own_rows_only(home: Path) -> None:
    acme = scoped_warehouse(home, View("viewer", ("acme",)))
    rows = allocated_rows(acme, None, columns=["Tags"]).collect()
    assert set(rows["x_Tenant"]) == {"acme"}
    assert rows.height == 4  # its own row in each month, and its parts of two pools
    assert rows["EffectiveCost"].sum().quantize(CENT) == Decimal("76.00")  # 60 + 7 + 9/3 + 6
    assert {t for tags in rows["Tags"] for t in (tags or [])} == {
        t for tags in billing_rows(home, "2026-03")["Tags"][[0, 3, 4]] for t in (tags or [])} | {
        t for tags in billing_rows(home, "2026-04")["Tags"] for t in (tags or [])}


def test_billing_collected_again_is_refused_until_allocated_again(home: Path, tmp_path: Path) -> None:
    wh = Warehouse(home)
    assert allocated_rows(wh, ["2026-04"], columns=["Tags"]).collect().height == 1
    # A source collected for the first time changes no row of the others.
    before = allocated_rows(wh, ["2026-03"], columns=["Tags"]).collect()
    write_billing(wh, [line(D, "1.00", tags={"tenant": "acme"}, source="a-new-source")])
    assert_frame_equal(allocated_rows(wh, ["2026-03"], columns=["Tags"]).collect(), before,
                       check_row_order=False)
    # The same source again, in another order: x_BillingRow no longer points where it did.
    write_billing(wh, [ROWS[5], *ROWS[:5]])
    with pytest.raises(StageError, match="billing of 2026-03 from t was collected again"):
        allocated_rows(wh, ["2026-03"], columns=["Tags"]).collect()
    # April was not touched, and ledger columns alone never need billing.
    assert allocated_rows(wh, ["2026-04"], columns=["Tags"]).collect().height == 1
    assert allocated_rows(wh, ["2026-03"]).collect().height == len(ROWS) - 1 + 4

    proc = finops("export", "--dataset", "allocated", "--out", tmp_path / "x", "--home", home)
    assert proc.returncode == 1
    assert "finops allocate" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())

    allocate(wh, open_state(home))
    rows = allocated_rows(wh, ["2026-03"], columns=["Tags"]).collect()
    mystery = rows.filter(pl.col("ResourceId") == "x-1")
    assert mystery["x_BillingRow"].to_list() == [0]
    own = billing_rows(home, "2026-03").filter(pl.col("source") == "t")
    assert mystery["Tags"].equals(own["Tags"].head(1), check_names=False)


def test_export_gives_every_allocated_row_its_whole_focus_row(home: Path, tmp_path: Path) -> None:
    finops("export", "--dataset", "allocated", "--format", "parquet", "--out", tmp_path / "p",
           "--home", home, check=True)
    out = pl.read_parquet(tmp_path / "p" / "allocated.parquet")
    billing = Warehouse(home).scan("billing").collect()
    focus = [c for c in billing.columns if c not in {"BilledCost", "EffectiveCost", "billing_period"}]
    assert set(focus) <= set(out.columns) and set(ALLOCATION_COLUMNS) <= set(out.columns)
    assert out.height == len(ROWS) + 4
    # Each exported row is its billing row, but for its share of the costs.
    keys = ["source", "x_SourceFile", "x_SourceRow"]
    both = out.select(focus).join(billing.select(focus), on=keys, how="left", suffix="_billing")
    for column in set(focus) - set(keys):
        assert both[column].equals(both[f"{column}_billing"], check_names=False), column
    by_tenant = out.group_by("x_Tenant").agg(pl.col("BilledCost").sum())
    assert {t: c.quantize(CENT) for t, c in by_tenant.iter_rows()} == {
        "acme": Decimal("76.00"), "globex": Decimal("36.00"), "initech": Decimal("14.00"),
        "unallocated": Decimal("2.50"),
    }
    finops("export", "--dataset", "allocated", "--format", "csv", "--out", tmp_path / "a.csv",
           "--home", home, check=True)
    flat = pl.read_csv(tmp_path / "a.csv", infer_schema=False)
    support = flat.filter(pl.col("ServiceName") == "AWS Support (Business)")
    assert support.height == 3
    assert {json.dumps(json.loads(t), sort_keys=True) for t in support["Tags"]} == {
        json.dumps({"cost": "support", "env": "shared"}, sort_keys=True)}


def test_a_ledger_without_a_fingerprint_is_refused(home: Path) -> None:
    wh = Warehouse(home)
    old = wh.scan("allocated", where={"billing_period": "2026-04"}).collect()
    wh.replace_partition("allocated", {"billing_period": "2026-04"}, old, run_id="old")
    with pytest.raises(StageError, match="older version of finops"):
        allocated_rows(wh, ["2026-04"], columns=["Tags"]).collect()


def test_a_rewrite_is_told_by_its_content_not_its_time(home: Path, tmp_path: Path) -> None:
    wh = Warehouse(home)
    keys = {"source": "t", "billing_period": "2026-03"}
    path = wh.partition_dir("billing", keys) / "part-0.parquet"
    before, stat = pl.read_parquet(path), path.stat()
    # The same rows written again: the pairing still holds.
    wh.replace_partition("billing", keys, before, run_id="x")
    assert allocated_rows(wh, ["2026-03"], columns=["Tags"]).collect().height == 10
    # One row fewer, with the old modification time: refused all the same.
    wh.replace_partition("billing", keys, before.tail(-1), run_id="x")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(StageError, match="collected again"):
        allocated_rows(wh, ["2026-03"], columns=["Tags"]).collect()
    # A copy of the warehouse (new times, same files) is as fresh as the original.
    allocate(wh, open_state(home))
    copy = tmp_path / "copy"
    shutil.copytree(home, copy, copy_function=shutil.copy)
    # Without acme's own row the network pool splits between globex and initech only.
    assert allocated_rows(Warehouse(copy), ["2026-03"], columns=["Tags"]).collect().height == 8


def test_no_allocated_row_is_lost_when_billing_cannot_pair_it(home: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    wh = Warehouse(home)
    wh.delete_partition("billing", {"source": "t", "billing_period": "2026-04"})
    with pytest.raises(StageError, match="from t was collected again"):
        allocated_rows(wh, ["2026-04"], columns=["Tags"]).collect()
    monkeypatch.setattr(ledger, "_check_fresh", lambda *args: None)
    rows = allocated_rows(wh, None, columns=["Tags"]).collect()
    assert rows.height == Warehouse(home).scan("allocated").select(pl.len()).collect().item()
    april = rows.filter(pl.col("billing_period") == "2026-04")
    assert april["EffectiveCost"].to_list() == [Decimal(7)] and april["Tags"].to_list() == [None]
