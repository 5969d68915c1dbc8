"""``finops collect utilization|inventory --path``: formats, re-import, and bad input (exit 2,
named columns and rows, no traceback, warehouse unchanged)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from finops.warehouse import Warehouse
from tests.core.cli import finops, tree_snapshot

UTIL = """timestamp,resource_id,metric,value
2026-05-01T00:00:00Z,i-1,cpu_percent,12.5
2026-05-01 01:00:00,i-1,CPU_Percent,20
1777600800,i-1,cpu_percent,30
1777604400000,i-1,memory_percent,40.25
2026-05-01T00:00:00+02:00,i-2,network_bytes,1000
2026-05-31T23:00:00Z,i-2,disk_bytes,5e3
2026-06-01T00:00:00Z,i-2,cpu_percent,1
"""
INVENTORY = """resource_id,provider,region,resource_type,instance_type,hourly_cost,attached,launch_time
i-1,aws,us-east-1,ec2_instance,m5.2xlarge,0.384,,2026-01-01T00:00:00Z
vol-1,aws,us-east-1,ebs_volume,gp3,0.011,false,
"""


def test_utilization_file_import_and_reimport(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    src = tmp_path / "metrics.csv"
    src.write_text(UTIL, encoding="utf-8")
    finops("collect", "utilization", "--path", src, "--home", home, check=True)
    wh = Warehouse(home)
    assert sorted(k["month"] for k in wh.partitions("utilization")) == ["2026-04", "2026-05", "2026-06"]
    df = wh.scan("utilization").collect().sort("resource_id", "metric", "timestamp")
    i1 = df.filter(pl.col("resource_id") == "i-1")
    utc = dt.UTC
    assert i1.select("timestamp", "metric", "value").rows() == [
        (dt.datetime(2026, 5, 1, 0, tzinfo=utc), "cpu_percent", 12.5),  # ISO with Z
        (dt.datetime(2026, 5, 1, 1, tzinfo=utc), "cpu_percent", 20.0),  # no zone: UTC; case ignored
        (dt.datetime(2026, 5, 1, 2, tzinfo=utc), "cpu_percent", 30.0),  # epoch seconds
        (dt.datetime(2026, 5, 1, 3, tzinfo=utc), "memory_percent", 40.25),  # epoch milliseconds
    ]
    i2 = df.filter(pl.col("resource_id") == "i-2").sort("timestamp")
    assert i2["timestamp"][0] == dt.datetime(2026, 4, 30, 22, tzinfo=utc)  # +02:00 read as UTC
    assert i2.filter(pl.col("metric") == "disk_bytes")["value"].to_list() == [5000.0]

    # Re-importing i-1 over the same hours replaces its samples; i-2 and other hours stay.
    again = tmp_path / "again.csv"
    again.write_text("timestamp,resource_id,metric,value\n"
                     "2026-05-01T00:00:00Z,i-1,cpu_percent,99\n"
                     "2026-05-01T01:00:00Z,i-1,cpu_percent,98\n", encoding="utf-8")
    finops("collect", "utilization", "--path", again, "--home", home, check=True)
    df2 = wh.scan("utilization").collect()
    i1b = df2.filter(pl.col("resource_id") == "i-1").sort("timestamp", "metric")
    assert i1b.filter(pl.col("metric") == "cpu_percent")["value"].to_list() == [99.0, 98.0, 30.0]
    assert i1b.filter(pl.col("metric") == "memory_percent")["value"].to_list() == [40.25]
    assert df2.filter(pl.col("resource_id") == "i-2").height == 3
    assert df2.height == df.height


@pytest.mark.parametrize(("header", "missing"), [
    ("timestamp,resource_id,metric", "value"),
    ("time,resource,metric,value", "resource_id (did you mean resource?), timestamp"),
])
def test_utilization_missing_columns_exit_2(tmp_path: Path, header: str, missing: str) -> None:
    home = tmp_path / "wh"
    good = tmp_path / "good.csv"
    good.write_text(UTIL, encoding="utf-8")
    finops("collect", "utilization", "--path", good, "--home", home, check=True)
    before = tree_snapshot(home)
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "\n" + "x," * (header.count(",")) + "x\n", encoding="utf-8")
    proc = finops("collect", "utilization", "--path", bad, "--home", home)
    assert proc.returncode == 2
    assert f"missing required column(s): {missing}" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    assert tree_snapshot(home) == before


def test_utilization_bad_rows_exit_2_naming_them(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    good = tmp_path / "good.csv"
    good.write_text(UTIL, encoding="utf-8")
    finops("collect", "utilization", "--path", good, "--home", home, check=True)
    before = tree_snapshot(home)
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,resource_id,metric,value\n"
                   "2026-05-02T00:00:00Z,i-1,cpu_percent,10\n"
                   "2026-05-02T01:00:00Z,i-1,cpu_pct,10\n"
                   "yesterday,i-1,cpu_percent,10\n"
                   "2026-05-02T03:00:00Z,i-1,memory_percent,lots\n"
                   "2026-05-02T04:00:00Z,i-1,cpu_percent,140\n", encoding="utf-8")
    proc = finops("collect", "utilization", "--path", bad, "--home", home)
    assert proc.returncode == 2, proc.stderr
    text = " ".join(proc.stderr.split())
    assert "4 of 5 rows cannot be read" in text
    assert "row 2: metric 'cpu_pct' is not one of cpu_percent" in text
    assert "row 3: timestamp 'yesterday'" in text
    assert "row 4: value 'lots' is not a number" in text
    assert "row 5: cpu_percent 140.0 is above 100" in text
    assert "Did you mean 'cpu_percent'" in text
    assert "Traceback" not in proc.stderr
    assert tree_snapshot(home) == before


def test_inventory_file_import_and_bad_input(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    src = tmp_path / "inventory.parquet"
    pl.read_csv(_write(tmp_path / "inv.csv", INVENTORY), infer_schema=False).write_parquet(src)
    finops("collect", "inventory", "--path", src, "--home", home, check=True)
    inv = Warehouse(home).scan("inventory").collect().sort("resource_id")
    assert inv["resource_id"].to_list() == ["i-1", "vol-1"]
    assert inv["attached"].to_list() == [None, False]
    assert inv["hourly_cost"].to_list() == [0.384, 0.011]
    assert inv["launch_time"][0] == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    before = tree_snapshot(home)

    missing = _write(tmp_path / "m.csv", "resource_id,provider,region,resource_type,instance_type\n"
                     "i-1,aws,us-east-1,ec2_instance,m5.large\n")
    proc = finops("collect", "inventory", "--path", missing, "--home", home)
    assert proc.returncode == 2
    assert "missing required column(s): hourly_cost" in proc.stderr
    assert "Traceback" not in proc.stderr
    bad = _write(tmp_path / "b.csv", INVENTORY.replace("0.384,,", "cheap,maybe,"))
    proc = finops("collect", "inventory", "--path", bad, "--home", home)
    assert proc.returncode == 2
    text = " ".join(proc.stderr.split())
    assert "hourly_cost 'cheap' is not a number" in text
    assert "attached 'maybe' is not true or false" in text
    assert tree_snapshot(home) == before


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_catalog_snapshot_is_dated_and_consistent() -> None:
    from models.rightsizing.catalog import DATA, SNAPSHOT_DATE, snapshot

    assert f"Snapshot date: {SNAPSHOT_DATE}" in (DATA / "README.md").read_text(encoding="utf-8")
    cat = snapshot()
    for provider, region in (("aws", "us-east-1"), ("aws", "us-west-2"), ("aws", "eu-west-1"),
                             ("gcp", "us-central1"), ("azure", "eastus")):
        priced = {k[2] for k in cat.prices if k[:2] == (provider, region)}
        typed = {name for (p, name) in cat.types if p == provider}
        assert priced == typed, (provider, region, typed ^ priced)
    t3 = cat.types[("aws", "t3.large")]
    assert (t3.vcpu, t3.memory_gib, t3.baseline_vcpu) == (2.0, 8.0, 0.6)
    assert cat.types[("aws", "m6g.large")].architecture == "arm64"
    assert str(cat.prices[("gcp", "us-central1", "n2-standard-2")]) == "0.097118"


def test_demo_inputs_import_and_recommend(tmp_path: Path) -> None:
    """The demo's utilisation and inventory files go through the same import."""
    from collectors.demo import generate_demo, inputs_dir
    from finops.state import open_state

    demo = Warehouse(tmp_path / "demo")
    generate_demo(demo, open_state(demo.home))
    inputs = inputs_dir(demo)
    import json

    from models.rightsizing.base import COLUMNS

    home = tmp_path / "wh"
    finops("collect", "utilization", "--path", inputs / "utilization.csv", "--home", home, check=True)
    finops("collect", "inventory", "--path", inputs / "inventory.csv", "--home", home, check=True)
    rows = json.loads(finops("recommend", "--home", home, "--format", "json", check=True).stdout)
    assert rows, "the demo fleet has over-provisioned and idle resources to recommend on"
    assert all(list(r) == list(COLUMNS) for r in rows)
