"""Bad input: a clear message naming file, column and rule; exit 2; no traceback; the
warehouse exactly as it was."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from finops.state import open_state
from tests.core.cli import finops, tree_snapshot
from tests.core.focus_files import HEADER_10, row, write_csv


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "wh"
    good = write_csv(tmp_path / "good.csv", [row(cost="10.00"), row(day=2, cost="5.50")])
    finops("collect", "focus", "--path", good, "--home", home, "--source", "s", check=True)
    return home


def assert_clean_failure(proc: object, *needles: str) -> None:
    out = proc.stdout + proc.stderr  # type: ignore[attr-defined]
    assert proc.returncode == 2, out  # type: ignore[attr-defined]
    assert "Traceback" not in out
    for needle in needles:
        assert needle in out, f"{needle!r} not in:\n{out}"


def test_missing_columns_named_with_near_matches(tmp_path: Path, home: Path) -> None:
    header = [h for h in HEADER_10 if h not in ("BilledCost", "ChargePeriodStart")] + ["BiledCost"]
    bad = write_csv(tmp_path / "drift.csv", [{**row(), "BiledCost": "1"}], header)
    before = tree_snapshot(home)
    proc = finops("collect", "focus", "--path", bad, "--home", home, "--source", "s")
    assert_clean_failure(proc, "drift.csv", "BilledCost (did you mean BiledCost?)", "ChargePeriodStart")
    assert tree_snapshot(home) == before


def test_unreadable_file(tmp_path: Path, home: Path) -> None:
    bad = tmp_path / "broken.csv.gz"
    bad.write_bytes(b"this is not gzip")
    before = tree_snapshot(home)
    proc = finops("collect", "focus", "--path", bad, "--home", home, "--source", "s")
    assert_clean_failure(proc, "broken.csv.gz", "cannot be read")
    assert tree_snapshot(home) == before


def test_not_an_export(tmp_path: Path, home: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    proc = finops("collect", "focus", "--path", bad, "--home", home)
    assert_clean_failure(proc, "notes.txt", "not a CSV")
    proc = finops("collect", "focus", "--path", tmp_path / "nowhere", "--home", home)
    assert_clean_failure(proc, "nowhere", "no such file")


def test_bad_rows_set_aside_with_reasons_and_counted(tmp_path: Path, home: Path) -> None:
    rows = [row(cost=f"{i}.00", day=1 + i % 28) for i in range(1, 400)]
    rows.append(row(cost="abc", day=3))
    rows.append({**row(cost="0.01", day=4), "ChargePeriodStart": "2026-04-31T00:00:00Z"})
    path = write_csv(tmp_path / "some-bad.csv", rows)
    proc = finops("collect", "focus", "--path", path, "--home", home, "--source", "t")
    assert proc.returncode == 0, proc.stderr
    assert "2 set aside" in proc.stderr.replace("\n", " ")
    assert "BilledCost: cannot read" in proc.stderr
    assert "ChargePeriodStart: missing or not a date" in proc.stderr
    state = open_state(home)
    run = state.runs(stage="collect", limit=1)[0]
    assert (run["rows_in"], run["rows_out"], run["rows_rejected"]) == (401, 399, 2)
    import polars as pl

    from finops.warehouse import Warehouse

    rejected = Warehouse(home).scan("rejected").collect()
    assert rejected.height == 2
    assert sorted(rejected["x_SourceRow"].to_list()) == [400, 401]
    assert all(r for r in rejected["x_RejectReason"].to_list())
    stored = Warehouse(home).scan("billing", where={"source": "t"}).select(pl.col("BilledCost").sum())
    assert stored.collect().item() == sum(range(1, 400))


def test_too_much_set_aside_fails_and_changes_nothing(tmp_path: Path, home: Path) -> None:
    rows = [row(cost="10.00"), row(cost="oops", day=2), row(cost="12.00", day=3, currency="usd")]
    path = write_csv(tmp_path / "mostly-bad.csv", rows)
    before = tree_snapshot(home)
    proc = finops("collect", "focus", "--path", path, "--home", home, "--source", "s")
    assert_clean_failure(proc, "2 of 3 rows could not be read", "BillingCurrency",
                         "MAX_REJECTED_COST_SHARE")
    assert tree_snapshot(home) == before
    run = open_state(home).runs(stage="collect", limit=1)[0]
    assert run["status"] == "failed"


def test_invalid_setting_names_env_var_and_file_key(tmp_path: Path, home: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "finops.toml"
    cfg.write_text("[ingest]\nmax_rejected_cost_share = 7\n")
    monkeypatch.setenv("FINOPS_CONFIG", str(cfg))
    proc = finops("showback", "--period", "2026-04", "--by", "tenant", "--home", home)
    assert_clean_failure(proc, "FINOPS_INGEST__MAX_REJECTED_COST_SHARE",
                         "[ingest] max_rejected_cost_share", str(cfg))


def test_gzip_and_folder_input(tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    write_csv(folder / "a.csv.gz", [row(cost="1.25")], gz=True)
    write_csv(folder / "sub" / "b.csv", [row(period="2026-05", cost="2.50")])
    with gzip.open(folder / "a.csv.gz", "rt") as fh:
        assert fh.readline().startswith("BilledCost")
    home = tmp_path / "wh"
    proc = finops("collect", "focus", "--path", folder, "--home", home, "--format", "csv", check=True)
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("period,currency,rows,source_billed_cost,billed_cost")
    assert lines[1].startswith("2026-04,USD,1,1.25,1.25")
    assert lines[2].startswith("2026-05,USD,1,2.50,2.50")
