"""The BigQuery path, against a loopback stand-in for the BigQuery REST API: incremental
reads by export time with an overlap, whole restated months replaced, never doubled."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import google.cloud.bigquery  # noqa: F401  a dev dependency: missing, the test must fail, not skip
import polars as pl

from collectors.gcp import collect_gcp_files, collect_gcp_table
from finops.state import open_state
from finops.warehouse import Warehouse
from tests.collectors.test_gcp_files import FILES, FIXTURES, expected_sums, stored_sums
from tests.core.cli import finops, tree_snapshot
from tests.fixtures.gcp.fake_google import load_rows, parse_time, serve

TABLE = "billing-proj.billing_ds.gcp_billing_export_resource_v1_01A2B3_C4D5E6_F7A8B9"
CENT = Decimal("0.01")


def sums_of(rows: list[dict[str, object]]) -> dict[tuple[str, str], Decimal]:
    return expected_sums(json.loads(json.dumps(rows, default=str), parse_float=Decimal))


def test_first_run_reads_every_month_like_the_files(tmp_path: Path) -> None:
    rows = load_rows(*FILES)
    wh = Warehouse(tmp_path / "wh")
    state = open_state(wh.home)
    with serve() as (google, endpoint):
        google.add_table(TABLE, rows)
        run = collect_gcp_table(wh, state, TABLE, source="bq", max_rejected_share=0.0,
                                endpoint=endpoint)
    assert run.result is not None
    assert run.months == ["202404", "202405"]
    assert run.window_start is None
    assert run.cursor == "2024-06-02T09:00:00+00:00"
    assert state.get_cursor("gcp", "bq:export_time") == run.cursor
    assert all(r.reconciled for r in run.result.reconciliation)
    stored = wh.scan("billing", where={"source": "bq"}).collect()
    assert stored_sums(stored) == sums_of(rows)
    assert stored_sums(stored, "EffectiveCost") == sums_of(rows)
    # The first query finds the months, the others read each month whole, pruned by partition.
    first, *months = google.queries
    assert "GROUP BY month" in first["sql"] and "WHERE" not in first["sql"]
    assert [q["params"]["month"] for q in months] == ["202404", "202405"]
    assert all("_PARTITIONTIME >= @partition_floor" in q["sql"] for q in months)
    assert parse_time(months[0]["params"]["partition_floor"]) == datetime(2024, 3, 25, tzinfo=UTC)
    # Row for row what the same rows give from files (BigQuery returns FLOAT as doubles).
    files_wh = Warehouse(tmp_path / "files")
    files_state = open_state(files_wh.home)
    collect_gcp_files(files_wh, files_state, FIXTURES, source="f", max_rejected_share=0.0)
    from_files = files_wh.scan("billing").collect()
    key = ["x_InvoiceMonth", "ChargePeriodStart", "ChargeDescription", "BilledCost"]
    a = stored.drop("x_SourceFile", "x_SourceRow", "source", "x_Credits").sort(key)
    b = from_files.drop("x_SourceFile", "x_SourceRow", "source", "x_Credits").sort(key)
    assert a.columns == b.columns
    for name in a.columns:
        assert a[name].to_list() == b[name].to_list(), name


def test_incremental_overlap_and_restated_month(tmp_path: Path) -> None:
    rows = load_rows(*FILES)
    wh = Warehouse(tmp_path / "wh")
    state = open_state(wh.home)
    with serve() as (google, endpoint):
        google.add_table(TABLE, rows)
        first = collect_gcp_table(wh, state, TABLE, source="bq", max_rejected_share=0.0,
                                  endpoint=endpoint)
        assert first.cursor == "2024-06-02T09:00:00+00:00"
        # Google restates April (a correction exported in June) and a May row arrives late:
        # exported before the cursor, but visible only now, inside the overlap.
        april_fix = {**rows[0], "cost": Decimal("-0.05"), "credits": [], "cost_type": "adjustment",
                     "export_time": "2024-06-04 10:00:00 UTC",
                     "adjustment_info": {"id": "adj-9", "description": "Price correction",
                                         "mode": "PARTIAL_CORRECTION", "type": "PRICE_CORRECTION"}}
        may_late = {**rows[-2], "cost": Decimal("0.5"), "export_time": "2024-06-01 12:00:00 UTC"}
        rows.extend([april_fix, may_late])
        google.queries.clear()
        second = collect_gcp_table(wh, state, TABLE, source="bq", max_rejected_share=0.0,
                                   endpoint=endpoint)
        assert second.window_start == datetime(2024, 6, 2, 9, tzinfo=UTC) - timedelta(days=3)
        discovery = google.queries[0]
        assert parse_time(discovery["params"]["since"]) == second.window_start
        assert "export_time >= @since" in discovery["sql"]
        assert "_PARTITIONTIME >=" in discovery["sql"]
        assert second.months == ["202404", "202405"]
        assert second.cursor == "2024-06-04T10:00:00+00:00"
        stored = wh.scan("billing", where={"source": "bq"}).collect()
        # Whole months replaced: every row once, totals those of the restated export.
        assert stored.height == len(rows)
        assert stored_sums(stored) == sums_of(rows)
        assert first.result is not None and second.result is not None
        april = {r.period: r for r in second.result.reconciliation}["2024-04"]
        assert april.stored_billed == sums_of(rows)[("2024-04", "USD")]
        # A run with nothing new after the overlap: the window moves on, nothing doubles.
        google.queries.clear()
        third = collect_gcp_table(wh, state, TABLE, source="bq", max_rejected_share=0.0,
                                  endpoint=endpoint)
        assert third.window_start == datetime(2024, 6, 1, 10, tzinfo=UTC)
        assert stored_sums(wh.scan("billing", where={"source": "bq"}).collect()) == sums_of(rows)
        # --since overrides the cursor.
        later = collect_gcp_table(wh, state, TABLE, source="bq", max_rejected_share=0.0,
                                  endpoint=endpoint, since=datetime(2024, 7, 1).date())
        assert later.result is None and later.months == []
        assert later.cursor == "2024-06-04T10:00:00+00:00"


def test_cli_table_and_bad_table(tmp_path: Path) -> None:
    rows = load_rows(*FILES)
    home = tmp_path / "wh"
    with serve() as (google, endpoint):
        google.add_table(TABLE, rows)
        proc = finops("collect", "gcp", "--table", TABLE, "--bigquery-endpoint", endpoint,
                      "--home", home, "--format", "json", check=True)
        printed = {(r["period"], r["currency"]): r for r in json.loads(proc.stdout)}
        for key, total in sums_of(rows).items():
            assert printed[key]["billed_cost"] == str(total.quantize(CENT))
            assert printed[key]["reconciled"] is True
        assert "read invoice months 202404, 202405" in proc.stderr
        before = tree_snapshot(home)
        proc = finops("collect", "gcp", "--table", "billing-proj.billing_ds.nope",
                      "--bigquery-endpoint", endpoint, "--home", home)
        assert proc.returncode == 2, proc.stderr
        assert "not found" in proc.stderr and "Traceback" not in proc.stderr
        proc = finops("collect", "gcp", "--table", "just-a-name", "--home", home)
        assert proc.returncode == 2 and "PROJECT.DATASET.TABLE" in proc.stderr
        assert tree_snapshot(home) == before
        df = pl.read_parquet(next(home.glob("billing/source=*/billing_period=2024-04/*.parquet")))
        assert df.height == 15
