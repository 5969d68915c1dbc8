"""The real FOCUS 1.0 sample, ingested and reconciled to the cent against its own sums."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from collectors.focus import collect_focus
from finops.focus import MONEY, TAGS, TIMESTAMP
from finops.state import open_state
from finops.validate import validate
from finops.warehouse import Warehouse

CENT = Decimal("0.01")


def file_sums(path: Path) -> dict[tuple[str, str], tuple[Decimal, Decimal, int]]:
    """The file's own sums, by plain csv and decimal: independent of the toolkit."""
    sums: dict[tuple[str, str], list[Decimal | int]] = defaultdict(lambda: [Decimal(0), Decimal(0), 0])
    with path.open(newline="", encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            key = (rec["BillingPeriodStart"][:7], rec["BillingCurrency"])
            acc = sums[key]
            acc[0] += Decimal(rec["BilledCost"])  # type: ignore[operator]
            acc[1] += Decimal(rec["EffectiveCost"])  # type: ignore[operator]
            acc[2] += 1  # type: ignore[operator]
    return {k: (v[0], v[1], v[2]) for k, v in sums.items()}  # type: ignore[misc]


@pytest.fixture
def sample(samples: Path) -> Path:
    return samples / "focus-1.0" / "focus_sample.csv"


@pytest.fixture
def loaded(tmp_path: Path, sample: Path) -> tuple[Warehouse, pl.DataFrame]:
    wh = Warehouse(tmp_path / "wh")
    state = open_state(wh.home)
    result = collect_focus(wh, state, sample, source=None, max_rejected_share=0.0)
    assert result.rows_rejected == 0
    return wh, wh.scan("billing").collect()


def test_totals_reconcile_to_the_cent(loaded: tuple[Warehouse, pl.DataFrame], sample: Path) -> None:
    _, df = loaded
    expected = file_sums(sample)
    got = {
        (r["billing_period"], r["BillingCurrency"]): (r["BilledCost"], r["EffectiveCost"], r["n"])
        for r in df.group_by("billing_period", "BillingCurrency")
        .agg(pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum(), pl.len().alias("n"))
        .iter_rows(named=True)
    }
    assert set(got) == set(expected)
    for key, (billed, effective, rows) in expected.items():
        assert got[key][2] == rows
        assert got[key][0].quantize(CENT) == billed.quantize(CENT), key
        assert got[key][1].quantize(CENT) == effective.quantize(CENT), key
        # Not just to the cent: every digit the file has is kept.
        assert got[key][0] == billed


def test_quirks_are_normalised(loaded: tuple[Warehouse, pl.DataFrame], sample: Path) -> None:
    _, df = loaded
    assert df.schema["BilledCost"] == MONEY
    assert df.schema["ChargePeriodStart"] == TIMESTAMP
    assert df.schema["Tags"] == TAGS
    assert df.schema["BillingAccountId"] == pl.String
    assert df.schema["SubAccountId"] == pl.String
    # The literal NULL is null, never the text "NULL".
    assert df["ChargeClass"].null_count() == df.height
    for name, dtype in df.schema.items():
        if dtype == pl.String:
            assert (df[name] == "NULL").sum() == 0, name
    # Oracle's "Usage-based" is the canonical "Usage-Based".
    with sample.open(newline="", encoding="utf-8") as fh:
        raw_lower = sum(1 for r in csv.DictReader(fh) if r["ChargeFrequency"] == "Usage-based")
    assert raw_lower > 0
    assert set(df["ChargeFrequency"].drop_nulls().unique()) <= {"Usage-Based", "One-Time", "Recurring"}
    # Naive timestamps are UTC: the first row's 22:00 stays 22:00 UTC.
    first = df.filter(pl.col("x_SourceRow") == 1).row(0, named=True)
    assert first["ChargePeriodStart"].isoformat() == "2024-09-18T22:00:00+00:00"
    # The extra column Id is kept as x_Id, and no non-x_ extra column exists.
    assert "x_Id" in df.columns
    assert "Id" not in df.columns
    assert first["x_Id"] == "11472"
    # Account ids made of digits stay text, leading characters and all.
    assert first["BillingAccountId"] == "1234567890123"


def test_tags_json_becomes_a_map(loaded: tuple[Warehouse, pl.DataFrame], sample: Path) -> None:
    _, df = loaded
    with sample.open(newline="", encoding="utf-8") as fh:
        raw = {i: r["Tags"] for i, r in enumerate(csv.DictReader(fh), start=1)}
    tagged = df.filter(pl.col("Tags").is_not_null())
    assert tagged.height == sum(1 for v in raw.values() if v not in ("", "NULL"))
    for rec in tagged.head(50).iter_rows(named=True):
        expected = {k: str(v) for k, v in json.loads(raw[rec["x_SourceRow"]]).items() if v is not None}
        assert rec["Tags"] == expected


def test_output_passes_the_validator_but_for_the_sample_own_gaps(
    loaded: tuple[Warehouse, pl.DataFrame],
) -> None:
    _, df = loaded
    found = {(v.column, v.rule) for v in validate(df.drop("source", "billing_period"))}
    # The sample's Oracle rows leave ContractedCost empty; that is the file's own gap and
    # the validator must say so, and nothing else.
    assert found == {("ContractedCost", "not_null")}


def test_cli_prints_reconciled_totals(tmp_path: Path, sample: Path) -> None:
    home = tmp_path / "wh"
    proc = subprocess.run(
        [sys.executable, "-m", "finops.cli", "collect", "focus", "--path", str(sample),
         "--home", str(home), "--format", "json"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    printed = {(r["period"], r["currency"]): r for r in json.loads(proc.stdout)}
    for key, (billed, effective, rows) in file_sums(sample).items():
        assert printed[key]["source_billed_cost"] == str(billed.quantize(CENT))
        assert printed[key]["billed_cost"] == str(billed.quantize(CENT))
        assert printed[key]["effective_cost"] == str(effective.quantize(CENT))
        assert printed[key]["rows"] == rows
        assert printed[key]["reconciled"] is True
