"""Older FOCUS versions upgrade to 1.2; Parquet input; the validator's findings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import polars as pl

from collectors.focus import collect_focus
from finops.focus import COLUMN_NAMES, MONEY, SCHEMA
from finops.ingest import ensure_focus_columns
from finops.state import open_state
from finops.validate import validate
from finops.warehouse import Warehouse
from tests.core.focus_files import HEADER_10, row, write_csv


def test_preview_column_names_are_upgraded(tmp_path: Path) -> None:
    renames = {"EffectiveCost": "AmortizedCost", "ProviderName": "Provider",
               "PublisherName": "Publisher", "InvoiceIssuerName": "InvoiceIssuer"}
    header = [renames.get(h, h) for h in HEADER_10]
    rows = [{renames.get(k, k): v for k, v in row(cost="3.00", effective="2.50").items()}]
    path = write_csv(tmp_path / "old.csv", rows, header)
    wh = Warehouse(tmp_path / "wh")
    result = collect_focus(wh, open_state(wh.home), path, source="old", max_rejected_share=0)
    assert any("AmortizedCost→EffectiveCost" in n for n in result.notes)
    df = wh.scan("billing").collect()
    assert df["EffectiveCost"].to_list() == [Decimal("2.5")]
    assert df["ProviderName"].to_list() == ["AWS"]
    for name in COLUMN_NAMES:  # 1.1 and 1.2 columns exist, null where the source had none
        assert name in df.columns
    assert df["InvoiceId"].to_list() == [None]


def test_parquet_input_with_typed_columns(tmp_path: Path) -> None:
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    frame = pl.DataFrame({
        "BilledCost": [1.5, 2.25], "EffectiveCost": [1.5, 2.0],
        "BillingAccountId": ["0012", "0012"], "BillingCurrency": ["USD", "USD"],
        "BillingPeriodStart": [start, start],
        "BillingPeriodEnd": [dt.datetime(2026, 4, 1, tzinfo=dt.UTC)] * 2,
        "ChargePeriodStart": [start, start + dt.timedelta(days=1)],
        "ChargePeriodEnd": [start + dt.timedelta(days=1), start + dt.timedelta(days=2)],
        "ChargeCategory": ["Usage", "usage"], "ProviderName": ["GCP", "GCP"],
        "ServiceName": ["BigQuery", "BigQuery"],
        "Tags": pl.Series([{"tenant": "acme"}, None], dtype=pl.Map(pl.String, pl.String)),
    })
    path = tmp_path / "export.parquet"
    frame.write_parquet(path)
    wh = Warehouse(tmp_path / "wh")
    collect_focus(wh, open_state(wh.home), path, source="p", max_rejected_share=0)
    df = wh.scan("billing").sort("x_SourceRow").collect()
    assert df["BilledCost"].sum() == Decimal("3.75")
    assert df["ChargeCategory"].to_list() == ["Usage", "Usage"]
    assert df["Tags"].to_list() == [{"tenant": "acme"}, None]
    assert df["BillingAccountId"].to_list() == ["0012", "0012"]


def test_validator_reports_column_rule_and_rows() -> None:
    good = pl.DataFrame([{
        "BilledCost": Decimal("1"), "EffectiveCost": Decimal("1"), "ListCost": Decimal("1"),
        "ContractedCost": Decimal("1"), "BillingAccountId": "1", "BillingCurrency": "USD",
        "BillingPeriodStart": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "BillingPeriodEnd": dt.datetime(2026, 2, 1, tzinfo=dt.UTC),
        "ChargePeriodStart": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "ChargePeriodEnd": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        "ChargeCategory": "Usage", "InvoiceIssuerName": "X", "ProviderName": "X",
        "PublisherName": "X", "ServiceCategory": "Compute", "ServiceName": "VM",
    }] * 3)
    typed = ensure_focus_columns(
        good.lazy().with_columns(pl.col(c).cast(SCHEMA[c]) for c in good.columns)
    ).collect()
    assert validate(typed) == []
    bad = typed.with_columns(
        pl.Series("ServiceCategory", ["Compute", "Computers", None]),
        pl.Series("ChargeClass", [None, "Correction", "Fix"]),
        pl.Series("BilledCost", [Decimal("1"), None, None], dtype=MONEY),
    ).with_columns(pl.lit(1).alias("Id"))
    found = {(v.column, v.rule): v.rows for v in validate(bad)}
    assert found == {
        ("ServiceCategory", "not_null"): 1,
        ("ServiceCategory", "allowed_values"): 1,
        ("ChargeClass", "allowed_values"): 1,
        ("ChargeClass", "correction_only"): 1,
        ("BilledCost", "not_null"): 2,
        ("Id", "custom_prefix"): -1,
    }
    rule_ids = {v.rule_id for v in validate(bad)}
    assert "FOCUS-1.2/ServiceCategory/allowed_values" in rule_ids
    missing = {(v.column, v.rule) for v in validate(typed.drop("Tags").with_columns(
        pl.col("BilledCost").cast(pl.Float64)))}
    assert ("Tags", "present") in missing and ("BilledCost", "type") in missing
