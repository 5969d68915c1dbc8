"""Query-history collectors: view exports read as the views write them, incremental and
idempotent loads, clear failures on bad input, and the ``finops`` commands around them."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from collectors.snowflake import collect_snowflake_files
from finops.state import open_state
from finops.warehouse import Warehouse
from tests.core.cli import finops, tree_snapshot

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "query_history"
UTC = dt.UTC


def rewrite(path: Path, edit: dict[str, dict[str, str]] | None = None,
            drop_columns: tuple[str, ...] = (), add: list[dict[str, str]] | None = None,
            keep: set[str] | None = None) -> None:
    """Edit a CSV fixture copy: change rows by their first column, drop columns, add rows."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = [h for h in rows[0] if h not in drop_columns]
    first = next(iter(rows[0]))
    out = []
    for row in rows:
        if keep is not None and row[first] not in keep:
            continue
        changed = {**row, **(edit or {}).get(row[first], {})}
        out.append({h: changed[h] for h in header})
    out.extend({h: r.get(h, "") for h in header} for r in add or [])
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, header)
        writer.writeheader()
        writer.writerows(out)


@pytest.fixture
def snow(tmp_path: Path) -> Path:
    folder = tmp_path / "snowflake"
    shutil.copytree(FIXTURES / "snowflake", folder)
    return folder


def test_snowflake_views_read_as_exported(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    state = open_state(wh.home)
    result = collect_snowflake_files(wh, state, FIXTURES / "snowflake")
    assert result.rows == {"queries": 7, "warehouse_metering": 8}
    q = wh.scan("queries").collect().sort("query_id")
    loader = q.row(5, named=True)
    # "2026-05-04 03:00:00.000 -0700" is 10:00 UTC.
    assert loader["start_time"] == dt.datetime(2026, 5, 4, 10, tzinfo=UTC)
    assert loader["execution_ms"] == 2_700_000 and loader["bytes_scanned"] == 3 * 10**12
    assert dict(q.row(1, named=True)["tags"]) == {"tenant": "globex", "team": "data"}  # key=value
    assert q["query_hash"][0] == "ph-daily-sales"
    assert q["queued_ms"][2] == 240_000 and q["execution_status"][3] == "FAIL"
    assert q.row(6, named=True)["warehouse"] is None  # SHOW ran without a warehouse
    m = wh.scan("warehouse_metering").collect()
    assert m["credits_compute"].sum() == Decimal("10.1")
    assert wh.partitions("queries") == [{"source": "snowflake", "month": "2026-05"}]
    assert state.get_cursor("snowflake", "query_history") == "2026-05-04T13:55:00+00:00"
    run = state.runs(stage="collect", limit=1)[0]
    assert (run["status"], run["rows_out"]) == ("succeeded", 15)


def test_recollecting_overlapping_windows_never_double_counts(tmp_path: Path, snow: Path) -> None:
    wh = Warehouse(tmp_path / "wh")
    state = open_state(wh.home)
    collect_snowflake_files(wh, state, snow)
    collect_snowflake_files(wh, state, snow)
    assert wh.scan("queries").select(pl.len()).collect().item() == 7
    assert wh.scan("warehouse_metering").select(pl.len()).collect().item() == 8
    # A later window overlapping the first: one late query, one corrected, one metering hour
    # restated; rows not in it are kept.
    late = tmp_path / "late"
    late.mkdir()
    shutil.copy(snow / "query_history.csv", late / "query_history.csv")
    q2 = "01b4a1f0-0000-0001-0000-000000000002"
    rewrite(late / "query_history.csv", keep={q2},
            edit={q2: {"EXECUTION_STATUS": "FAIL"}},
            add=[{"QUERY_ID": "late-1", "WAREHOUSE_NAME": "LOADING_WH", "QUERY_TAG": "tenant=acme",
                  "START_TIME": "2026-05-05 09:10:00.000 +0000",
                  "END_TIME": "2026-05-05 09:40:00.000 +0000", "EXECUTION_TIME": "1800000"}])
    shutil.copy(snow / "warehouse_metering_history.csv", late / "warehouse_metering_history.csv")
    rewrite(late / "warehouse_metering_history.csv", keep={"2026-05-05 09:00:00.000 +0000"},
            edit={"2026-05-05 09:00:00.000 +0000": {"CREDITS_USED_COMPUTE": "1.250000000"}})
    collect_snowflake_files(wh, state, late)
    q = wh.scan("queries").collect()
    assert q.height == 8
    assert q.filter(pl.col("query_id") == q2)["execution_status"].to_list() == ["FAIL"]
    m = wh.scan("warehouse_metering").collect()
    assert m.height == 8 and m["credits_compute"].sum() == Decimal("10.35")
    assert state.get_cursor("snowflake", "query_history") == "2026-05-05T09:40:00+00:00"


def test_missing_columns_exit_2_and_leave_the_warehouse_unchanged(tmp_path: Path, snow: Path) -> None:
    home = tmp_path / "wh"
    finops("collect", "snowflake", "--path", snow, "--home", home, check=True)
    before = tree_snapshot(home)
    bad = tmp_path / "bad"
    shutil.copytree(snow, bad)
    rewrite(bad / "query_history.csv", drop_columns=("EXECUTION_TIME", "END_TIME"))
    with (bad / "query_history.csv").open() as fh:
        text = fh.read().replace("COMPILATION_TIME", "EXECUTION_TIMES", 1)
    (bad / "query_history.csv").write_text(text)
    proc = finops("collect", "snowflake", "--path", bad, "--home", home)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert "query_history.csv" in out and "END_TIME" in out
    assert "EXECUTION_TIME (did you mean EXECUTION_TIMES?)" in out
    assert tree_snapshot(home) == before

    (bad / "query_history.csv").unlink()
    proc = finops("collect", "snowflake", "--path", bad, "--home", home)
    assert proc.returncode == 2 and "no query_history.csv" in proc.stderr
    assert tree_snapshot(home) == before


def test_unreadable_rows_fail_the_load_when_too_many(tmp_path: Path, snow: Path) -> None:
    rewrite(snow / "warehouse_metering_history.csv",
            edit={"2026-05-04 12:00:00.000 +0000": {"CREDITS_USED_COMPUTE": "lots"}})
    proc = finops("collect", "snowflake", "--path", snow, "--home", tmp_path / "wh")
    assert proc.returncode == 2
    assert "warehouse_metering_history.csv: 1 of 8 rows cannot be read" in proc.stderr
    assert "credits_compute missing or unreadable" in proc.stderr
    assert not (tmp_path / "wh" / "warehouse_metering").exists()


def test_live_without_credentials_is_a_configuration_error(tmp_path: Path) -> None:
    proc = finops("collect", "snowflake", "--home", tmp_path / "wh")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "FINOPS_SNOWFLAKE__ACCOUNT" in proc.stderr or "pip install" in proc.stderr


def test_queries_command_formats(tmp_path: Path, snow: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "wh"
    monkeypatch.setenv("FINOPS_SNOWFLAKE__CREDIT_PRICE", "3")
    finops("collect", "snowflake", "--path", snow, "--home", home, check=True)
    proc = finops("queries", "--by", "tenant", "--home", home, "--format", "csv", check=True)
    rows = list(csv.DictReader(proc.stdout.splitlines()))
    assert list(rows[0]) == ["tenant", "queries", "tb_scanned", "credits", "cost", "cost_per_query",
                             "cost_per_tb"]
    assert {r["tenant"]: r["cost"] for r in rows} == {"globex": "16.02", "acme": "10.14",
                                                      "unallocated": "3.54", "idle": "3.00"}
    proc = finops("queries", "--by", "warehouse", "--since", "2026-05-04", "--home", home,
                  "--format", "json", check=True)
    data = json.loads(proc.stdout)
    assert {r["warehouse"] for r in data} == {"ANALYTICS_WH", "LOADING_WH", "idle", "unallocated"}
    assert sum(Decimal(r["cost"]) for r in data) == Decimal("32.70")
    proc = finops("queries", "--by", "user", "--home", home, check=True)
    assert "ALICE" in proc.stdout and "cost_per_tb" in proc.stdout
    proc = finops("queries", "--by", "tenants", "--home", home)
    assert proc.returncode == 2 and "tenant" in proc.stderr
    proc = finops("queries", "--since", "May 4", "--home", home)
    assert proc.returncode == 2 and "YYYY-MM-DD" in proc.stderr


def test_databricks_usage_and_prices_any_header_case(tmp_path: Path) -> None:
    folder = tmp_path / "dbx"
    shutil.copytree(FIXTURES / "databricks", folder)
    # The same export with upper-case names (as some tools write them) reads the same.
    text = (folder / "usage.csv").read_text().split("\n", 1)
    (folder / "usage.csv").write_text(text[0].upper() + "\n" + text[1])
    home = tmp_path / "wh"
    proc = finops("collect", "databricks", "--path", folder, "--home", home, "--format", "json",
                  check=True)
    assert {r["dataset"]: r["rows"] for r in json.loads(proc.stdout)} == {"dbx_usage": 6,
                                                                        "dbx_list_prices": 3}
    usage = Warehouse(home).scan("dbx_usage").collect().sort("record_id")
    assert usage["record_type"].to_list() == ["ORIGINAL"] * 4 + ["RETRACTION", "RESTATEMENT"]
    assert usage["usage_quantity"].sum() == Decimal("39")
    assert usage["user_name"][0] == "alice@example.com" and usage["warehouse"][0] == "wh-1"
    proc = finops("queries", "--by", "tenant", "--source", "databricks", "--home", home,
                  "--format", "csv", check=True)
    costs = {r["tenant"]: r["cost"] for r in csv.DictReader(proc.stdout.splitlines())}
    assert costs == {"globex": "5.75", "acme": "5.50", "unallocated": "2.40"}

    bad = tmp_path / "bad"
    shutil.copytree(FIXTURES / "databricks", bad)
    rewrite(bad / "usage.csv", drop_columns=("usage_quantity",))
    before = tree_snapshot(home)
    proc = finops("collect", "databricks", "--path", bad, "--home", home)
    assert proc.returncode == 2 and "usage.csv" in proc.stderr and "USAGE_QUANTITY" in proc.stderr
    assert tree_snapshot(home) == before


def test_bigquery_jobs_collected(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    finops("collect", "bigquery-jobs", "--path", FIXTURES / "bigquery", "--home", home, check=True)
    jobs = Warehouse(home).scan("queries").collect().sort("query_id")
    assert jobs.height == 7  # the script parent job repeats its child: skipped
    assert jobs.filter(pl.col("execution_status") == "FAIL")["query_id"].to_list() == [
        "shared-bi:bquxjob_3"]
    assert jobs.filter(pl.col("pricing_model") == "reservation")["warehouse"].unique().to_list() == [
        "admin-project:US.prod"]
    assert dict(jobs.row(0, named=True)["tags"]) == {"tenant": "acme"}
    capacity = Warehouse(home).scan("reservation_capacity").collect()
    assert capacity["slot_ms"].to_list() == [3 * 3_600_000.0] * 3
    proc = finops("queries", "--by", "warehouse", "--home", home, "--format", "json", check=True)
    rows = {r["warehouse"]: r for r in json.loads(proc.stdout)}
    assert Decimal(rows["on-demand:acme-analytics"]["cost"]) == Decimal("7.81")
    assert rows["admin-project:US.prod"]["queries"] == 2
