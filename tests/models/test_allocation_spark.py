"""The Spark path on local[2] gives the single-node path's results, row for row."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import polars as pl
import pytest

from finops.state import open_state
from finops.warehouse import Warehouse
from models.allocation import allocate, load_config
from models.allocation.spark import allocate_spark
from tests.models.billing_rows import line, write_billing
from tests.models.test_allocation_engine import CONFIG, ROWS

KEY = ["source", "x_SourceFile", "x_SourceRow", "x_Tenant"]


@pytest.fixture(scope="module")
def spark() -> object:
    from pyspark.sql import SparkSession

    # Loopback only: never let Spark pick the machine's other interfaces.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    # Workers run this interpreter, with the project's packages, not whatever python3 is first.
    os.environ["PYSPARK_PYTHON"] = sys.executable

    session = (
        SparkSession.builder.master("local[2]").appName("finops-test")
        .config("spark.ui.enabled", "false").config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_spark_matches_single_node(spark: object, tmp_path: Path) -> None:
    metric = tmp_path / "queries.csv"
    metric.write_text("day,tenant,value\n2026-03-01,acme,3\n2026-03-01,globex,1\n")
    cfg_path = tmp_path / "allocation.yaml"
    cfg_path.write_text(CONFIG.replace("METRIC", str(metric)))
    home = tmp_path / "wh"
    wh = Warehouse(home)
    # Two periods, two accounts, two sources: several Spark partitions.
    extra = [line("2026-04-02", "12.00", tags={"tenant": "globex"}, account="222", source="s2"),
             line("2026-04-02", "4.00", service="AWS Support", account="222", source="s2"),
             line("2026-04-03", "3.00", service="Amazon VPC", account="111")]
    write_billing(wh, [*ROWS, *extra])
    cfg = load_config(cfg_path)
    allocate(wh, open_state(home), config=cfg)
    single = wh.scan("allocated").collect()

    billing = spark.read.parquet(str(home / "billing"))  # type: ignore[attr-defined]
    distributed = pl.from_arrow(allocate_spark(spark, billing, cfg, wh).toArrow())
    assert isinstance(distributed, pl.DataFrame)

    columns = [c for c in single.columns if c not in ("x_BillingRow",)]
    left = single.select(columns).sort(KEY)
    right = distributed.select(columns).with_columns(
        pl.col(c).cast(single.schema[c]) for c in columns
    ).sort(KEY)
    assert left.height == right.height
    assert left.height > len(ROWS) + len(extra)  # pools split rows into several
    assert left.equals(right), left.join(right, on=KEY, how="anti")
