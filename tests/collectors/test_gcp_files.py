"""The GCP billing export from files: mapping, credits, CUDs, reconciliation, bad input."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from collectors.gcp import collect_gcp_files
from finops.focus import MONEY, TAGS
from finops.state import open_state
from finops.validate import validate
from finops.warehouse import Warehouse
from tests.core.cli import finops, tree_snapshot

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gcp"
FILES = [FIXTURES / "export-2024-04.jsonl", FIXTURES / "export-2024-05.jsonl"]
CENT = Decimal("0.01")


def rows_of(*paths: Path) -> list[dict[str, Any]]:
    out = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append(json.loads(line, parse_float=Decimal))
    return out


def expected_sums(rows: list[dict[str, Any]]) -> dict[tuple[str, str], Decimal]:
    """The invoice total per month and currency, by plain decimal: cost + Σ credits."""
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        month = r["invoice"]["month"]
        key = (f"{month[:4]}-{month[4:]}", r["currency"])
        sums[key] += Decimal(r["cost"]) + sum((Decimal(c["amount"]) for c in r.get("credits") or []),
                                              Decimal(0))
    return dict(sums)


def stored_sums(df: pl.DataFrame, column: str = "BilledCost") -> dict[tuple[str, str], Decimal]:
    return {
        (r["billing_period"], r["BillingCurrency"]): r[column]
        for r in df.group_by("billing_period", "BillingCurrency").agg(pl.col(column).sum())
        .iter_rows(named=True)
    }


def load(tmp_path: Path, path: Path, source: str = "gcp") -> tuple[Warehouse, pl.DataFrame]:
    wh = Warehouse(tmp_path / "wh")
    state = open_state(wh.home)
    result = collect_gcp_files(wh, state, path, source=source, max_rejected_share=0.0)
    state.close()
    assert result.rows_rejected == 0, result.reject_summary
    assert all(r.reconciled for r in result.reconciliation)
    return wh, wh.scan("billing").collect()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    _, df = load(tmp_path_factory.mktemp("gcp"), FIXTURES)
    return df


def by_sku(df: pl.DataFrame, sku: str) -> list[dict[str, Any]]:
    return df.filter(pl.col("ChargeDescription") == sku).sort("x_SourceFile", "x_SourceRow").to_dicts()


def test_totals_reconcile_to_the_cent_and_every_digit(loaded: pl.DataFrame) -> None:
    expected = expected_sums(rows_of(*FILES))
    assert set(expected) == {("2024-04", "USD"), ("2024-05", "USD"), ("2024-05", "EUR")}
    billed = stored_sums(loaded)
    effective = stored_sums(loaded, "EffectiveCost")
    assert set(billed) == set(expected)
    for key, total in expected.items():
        assert billed[key].quantize(CENT) == total.quantize(CENT), key
        assert billed[key] == total, key  # not just to the cent: exactly
        # Amortising commitment fees moves cost between rows, never in or out.
        assert effective[key] == total, key
    assert loaded.height == len(rows_of(*FILES))


def test_credits_are_netted_and_kept(loaded: pl.DataFrame) -> None:
    storage = by_sku(loaded, "Standard Storage US Multi-region")[0]
    assert storage["x_Cost"] == Decimal("4.321")
    assert storage["x_CreditsAmount"] == Decimal("-1.321")
    assert storage["BilledCost"] == Decimal("3.000")
    assert storage["ChargeCategory"] == "Usage"
    credits = json.loads(storage["x_Credits"])
    assert [c["type"] for c in credits] == ["PROMOTION", "FREE_TIER"]
    assert set(loaded["ChargeCategory"].unique()) == {"Usage", "Purchase", "Tax", "Adjustment"}


def test_committed_use_discount_fee_amortised_over_covered_usage(loaded: pl.DataFrame) -> None:
    covered = by_sku(loaded, "N1 Predefined Instance Core running in Americas")
    covered = [r for r in covered if r["CommitmentDiscountStatus"] == "Used"]
    fees = by_sku(loaded, "Commitment v1: Cpu in Americas for 1 Year")
    assert [r["BilledCost"] for r in covered] == [Decimal(0), Decimal(2)]
    assert [r["BilledCost"] for r in fees] == [Decimal(15), Decimal(3)]
    fee = Decimal(18)
    # The fee spreads in proportion to the CUD credit: 20 and 8 of 28.
    shares = [r["EffectiveCost"] - r["BilledCost"] for r in covered]
    assert abs(shares[0] - fee * 20 / 28) < Decimal("1e-9")
    assert abs(shares[1] - fee * 8 / 28) < Decimal("1e-9")
    assert sum(r["EffectiveCost"] for r in fees) + sum(shares) == fee
    assert sum(r["EffectiveCost"] for r in fees) == fee - sum(shares)
    for r in fees:
        assert (r["ChargeCategory"], r["ChargeFrequency"]) == ("Purchase", "Recurring")
        assert r["CommitmentDiscountCategory"] == "Usage"
        assert r["CommitmentDiscountId"].endswith("/commitments/88")
        assert r["PricingCategory"] == "Committed"
    for r in covered:
        assert r["CommitmentDiscountCategory"] == "Usage"
        assert r["CommitmentDiscountId"] == "CommittedUsageDiscount:88"
        assert r["CommitmentDiscountName"] == "Committed use discount: CPU in us-central1"
        assert r["PricingCategory"] == "Committed"
        assert r["x_CommitmentAmortisedCost"] == r["EffectiveCost"] - r["BilledCost"]
    # Spend-based: the Cloud SQL fee (1.00) moves onto the covered usage.
    sql = by_sku(loaded, "Cloud SQL for PostgreSQL: Zonal - vCPU in Americas")[0]
    sql_fee = by_sku(loaded, "Commitment - dollar based v1: Cloud SQL database us-central1 for 1 year")[0]
    assert sql["CommitmentDiscountCategory"] == "Spend"
    assert sql["BilledCost"] == Decimal("3.75")
    assert sql["EffectiveCost"] == Decimal("4.75")
    assert (sql_fee["BilledCost"], sql_fee["EffectiveCost"]) == (Decimal(1), Decimal(0))
    assert sql_fee["CommitmentDiscountId"] == "sub-sql-1"


def test_tax_adjustment_rounding_and_marketplace(loaded: pl.DataFrame) -> None:
    tax = by_sku(loaded, "Tax")
    assert {(r["ChargeCategory"], r["ChargeFrequency"]) for r in tax} == {("Tax", "One-Time")}
    assert all(r["ConsumedQuantity"] is None and r["PricingCategory"] is None for r in tax)
    adj = loaded.filter(pl.col("x_CostType") == "adjustment").to_dicts()[0]
    assert (adj["ChargeCategory"], adj["ChargeClass"]) == ("Adjustment", "Correction")
    assert adj["BilledCost"] == Decimal("-1.75")
    assert adj["x_AdjustmentType"] == "USAGE_CORRECTION"
    rnd = loaded.filter(pl.col("x_CostType") == "rounding_error").to_dicts()[0]
    assert (rnd["ChargeCategory"], rnd["ChargeClass"]) == ("Adjustment", None)
    seats = by_sku(loaded, "Acme Analytics seats")[0]
    assert seats["PublisherName"] == "Acme Inc"
    assert seats["ProviderName"] == seats["InvoiceIssuerName"] == "Google Cloud"
    assert by_sku(loaded, "Spot Preemptible N1 Predefined Instance Core running in Americas")[0][
        "PricingCategory"] == "Dynamic"


def test_tags_labels_first_then_tags_then_inherited_project_labels(loaded: pl.DataFrame) -> None:
    assert loaded.schema["Tags"] == TAGS
    first = loaded.filter((pl.col("x_SourceFile") == "export-2024-04.jsonl")
                          & (pl.col("x_SourceRow") == 1)).to_dicts()[0]
    # labels app; tag env=production beats the project's env=prod; project team inherited.
    assert first["Tags"] == {"app": "web", "env": "production", "team": "shop"}
    assert first["x_ProjectLabels"] == {"team": "shop", "env": "prod"}
    assert first["x_SystemLabels"]["compute.googleapis.com/machine_spec"] == "n1-standard-4"
    bq = by_sku(loaded, "Analysis")[0]
    assert bq["Tags"] == {"team": "analytics", "tenant": "acme", "cost-center": "cc-42"}
    tax = by_sku(loaded, "Tax")[0]
    assert tax["Tags"] is None


def test_columns_and_periods(loaded: pl.DataFrame) -> None:
    first = loaded.filter((pl.col("x_SourceFile") == "export-2024-04.jsonl")
                          & (pl.col("x_SourceRow") == 1)).to_dicts()[0]
    # April's invoice runs from midnight in Los Angeles (PDT, UTC-7).
    assert first["BillingPeriodStart"] == datetime(2024, 4, 1, 7, tzinfo=UTC)
    assert first["BillingPeriodEnd"] == datetime(2024, 5, 1, 7, tzinfo=UTC)
    assert first["ChargePeriodStart"] == datetime(2024, 4, 1, tzinfo=UTC)
    assert first["ChargePeriodEnd"] == datetime(2024, 4, 1, 1, tzinfo=UTC)
    assert first["BillingAccountId"] == "01A2B3-C4D5E6-F7A8B9"
    assert (first["SubAccountId"], first["SubAccountName"]) == ("shop-prod", "Shop Prod")
    assert (first["ServiceName"], first["ServiceCategory"]) == ("Compute Engine", "Compute")
    assert (first["RegionId"], first["RegionName"], first["AvailabilityZone"]) == (
        "us-central1", "Iowa", "us-central1-a")
    assert first["ResourceId"].startswith("//compute.googleapis.com/")
    assert (first["ResourceName"], first["ResourceType"]) == ("web-1", "compute.googleapis.com/instances")
    assert (first["ConsumedQuantity"], first["ConsumedUnit"]) == (14400.0, "seconds")
    assert (first["PricingQuantity"], first["PricingUnit"]) == (4.0, "hour")
    assert first["ListCost"] == Decimal("0.151733")
    assert first["x_ListCostSource"] == "export"
    assert first["ListUnitPrice"] == Decimal("0.0379332")
    assert first["ContractedUnitPrice"] == Decimal("0.031611")
    assert first["ContractedCost"] == Decimal("0.126444")
    assert first["SkuId"] == "2E27-4F75-95CD"
    assert first["x_ExportTime"] == datetime(2024, 4, 2, 6, 10, 11, 123456, tzinfo=UTC)
    # The late row: exported in May with the May file, but on April's invoice.
    late = loaded.filter((pl.col("x_SourceFile") == "export-2024-05.jsonl")
                         & (pl.col("x_SourceRow") == 1)).to_dicts()[0]
    assert (late["billing_period"], late["x_InvoiceMonth"]) == ("2024-04", "202404")
    # End-of-April usage billed on May's invoice belongs to May's period.
    may = loaded.filter((pl.col("x_SourceFile") == "export-2024-05.jsonl")
                        & (pl.col("x_SourceRow") == 2)).to_dicts()[0]
    assert may["billing_period"] == "2024-05"
    assert may["ChargePeriodStart"] == datetime(2024, 4, 30, 23, tzinfo=UTC)
    storage = by_sku(loaded, "Standard Storage US Multi-region")[0]
    assert (storage["ServiceCategory"], storage["RegionId"], storage["x_Location"]) == (
        "Storage", None, "global")


def test_output_passes_the_focus_validator(loaded: pl.DataFrame) -> None:
    assert loaded.schema["BilledCost"] == MONEY
    found = [(v.column, v.rule, v.rows) for v in validate(loaded.drop("source", "billing_period"))]
    assert found == []


# ---- the same data as CSV and Parquet --------------------------------------------------
def flatten(row: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            for sub, v in value.items():
                if isinstance(v, list):
                    out[f"{key}.{sub}"] = json.dumps(v, default=str)
                elif v is not None:
                    out[f"{key}.{sub}"] = str(v)
        elif isinstance(value, list):
            out[key] = json.dumps(value, default=str)
        elif value is not None:
            out[key] = str(value)
    return out


def write_csv(path: Path, rows: list[dict[str, Any]], underscores: bool = False) -> Path:
    flat = [flatten(r) for r in rows]
    header = sorted({k for r in flat for k in r} | {"credits"})
    if underscores:
        flat = [{k.replace(".", "_"): v for k, v in r.items()} for r in flat]
        header = [h.replace(".", "_") for h in header]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(flat)
    return path


def to_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    def native(value: Any) -> Any:
        if isinstance(value, Decimal):
            return float(value)
        if isinstance(value, dict):
            return {k: native(v) for k, v in value.items()}
        if isinstance(value, list):
            return [native(v) for v in value]
        if isinstance(value, str) and value.endswith(" UTC"):
            return datetime.fromisoformat(value.replace(" UTC", "+00:00"))
        return value

    # Nested columns as BigQuery writes them: structs, lists of structs, UTC timestamps.
    pl.DataFrame([native(r) for r in rows], infer_schema_length=None).write_parquet(path)
    assert pq.read_schema(path).field("credits").type.value_type.num_fields == 5
    return path


def comparable(df: pl.DataFrame) -> pl.DataFrame:
    return df.drop("x_SourceFile").sort("x_InvoiceMonth", "ChargePeriodStart", "ChargeDescription",
                                        "BilledCost")


def credit_values(text: str | None) -> list[dict[str, Any]] | None:
    if text is None:
        return None
    return [{**c, "amount": Decimal(c["amount"])} for c in json.loads(text)]


def test_csv_and_parquet_give_the_same_rows(tmp_path: Path, loaded: pl.DataFrame) -> None:
    rows = rows_of(*FILES)
    csv_dir, pq_dir, us_dir = tmp_path / "csv", tmp_path / "pq", tmp_path / "us"
    for d in (csv_dir, pq_dir, us_dir):
        d.mkdir()
    write_csv(csv_dir / "export.csv", rows)
    write_csv(us_dir / "export.csv", rows, underscores=True)
    to_parquet(pq_dir / "export.parquet", rows)
    reference = comparable(loaded.drop("x_SourceRow"))
    for folder in (csv_dir, pq_dir, us_dir):
        _, df = load(tmp_path / folder.name, folder)
        got = comparable(df.drop("x_SourceRow"))
        assert got.columns == reference.columns
        for name in reference.columns:
            if name == "x_Credits":  # the export's own text: "-20" and "-20.0" are one amount
                assert [credit_values(v) for v in got[name]] == [
                    credit_values(v) for v in reference[name]], folder.name
                continue
            assert got[name].to_list() == reference[name].to_list(), (folder.name, name)


def test_mapping_in_row_ranges_gives_the_same_rows(
    tmp_path: Path, loaded: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mapping pass reads each input in row ranges (bounded memory); ranges of a few
    rows, cutting between a commitment fee and the usage it covers, change nothing."""
    from collectors import gcp

    monkeypatch.setattr(gcp, "MAP_CHUNK_ROWS", 3)
    monkeypatch.setattr(gcp, "SCRATCH_ROW_GROUP", 2)
    _, df = load(tmp_path, FIXTURES)
    key = ["x_SourceFile", "x_SourceRow"]
    assert df.sort(key).to_dicts() == loaded.sort(key).to_dicts()


def test_mapping_and_amortising_stream(tmp_path: Path) -> None:
    """No whole-column step in the plans over the rows (a batch function not declared
    elementwise, ``replace_strict``): Polars' streaming engine would buffer every row in
    front of it, gigabytes at millions of rows."""
    from collectors import gcp_mapping as gm

    def whole_column_steps(lf: pl.LazyFrame) -> int:
        dot = lf.show_graph(engine="streaming", plan_stage="physical", raw_output=True)
        assert isinstance(dot, str)
        return dot.count("columnar-function")

    csv_source, _ = gm.scan_source(write_csv(tmp_path / "export.csv", rows_of(*FILES)))
    canonical = tmp_path / "canonical.parquet"
    gm.write_canonical(FILES[0], canonical, tmp_path)
    mapped = gm.focus_frame(pl.scan_parquet(canonical), label="export")
    unamortised = tmp_path / "unamortised.parquet"
    mapped.sink_parquet(unamortised)
    pools = gm.pool_frame([pl.scan_parquet(unamortised).with_columns(pl.lit(0, pl.Int64).alias("_file"))])
    amortised = gm.amortise(pl.scan_parquet(unamortised), pools, 0)
    assert [whole_column_steps(lf) for lf in (csv_source, mapped, amortised)] == [0, 0, 0]


def test_gzip_json_and_recollect_replaces(tmp_path: Path) -> None:
    import gzip

    folder = tmp_path / "in"
    folder.mkdir()
    for f in FILES:
        (folder / (f.name + ".gz")).write_bytes(gzip.compress(f.read_bytes()))
    wh, df = load(tmp_path, folder)
    before = stored_sums(df)
    state = open_state(wh.home)
    collect_gcp_files(wh, state, folder, source="gcp", max_rejected_share=0.0)
    state.close()
    again = wh.scan("billing").collect()
    assert again.height == df.height
    assert stored_sums(again) == before


def test_bad_rows_are_set_aside_with_reasons(tmp_path: Path) -> None:
    rows = rows_of(FILES[0])
    bad_cost = {**rows[0], "cost": "abc"}
    bad_month = {**rows[1], "invoice": {"month": "2024-4"}}
    bad_type = {**rows[5], "cost_type": "bonus"}
    lines = [json.dumps(r, default=str) for r in [*rows, bad_cost, bad_month, bad_type]]
    path = tmp_path / "some-bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    wh = Warehouse(tmp_path / "wh")
    state = open_state(wh.home)
    result = collect_gcp_files(wh, state, path, source="g", max_rejected_share=1.0)
    assert result.rows_rejected == 3
    reasons = dict(result.reject_summary)
    assert reasons["BilledCost: cannot read"] == 1
    assert reasons["invoice.month:"] == 1
    assert reasons["cost_type:"] == 1
    rejected = wh.scan("rejected").collect()
    assert sorted(rejected["x_SourceRow"].to_list()) == [len(rows) + 1, len(rows) + 2, len(rows) + 3]
    assert all(r.reconciled for r in result.reconciliation)


def test_missing_required_fields_exit_2_and_change_nothing(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    finops("collect", "gcp", "--path", FILES[0], "--home", home, "--source", "g", check=True)
    before = tree_snapshot(home)
    rows = rows_of(FILES[0])
    drifted = tmp_path / "drift.csv"
    flat = [flatten(r) for r in rows]
    for r in flat:
        r["costs"] = r.pop("cost")
        r.pop("invoice.month")
    header = sorted({k for r in flat for k in r})
    with drifted.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(flat)
    proc = finops("collect", "gcp", "--path", drifted, "--home", home, "--source", "g")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    assert "drift.csv" in out
    assert "cost (did you mean costs?)" in out
    assert "invoice.month" in out
    assert tree_snapshot(home) == before
    jsonl = tmp_path / "nocost.jsonl"
    jsonl.write_text("\n".join(json.dumps({k: v for k, v in r.items() if k != "cost"}, default=str)
                               for r in rows) + "\n", encoding="utf-8")
    proc = finops("collect", "gcp", "--path", jsonl, "--home", home, "--source", "g")
    assert proc.returncode == 2 and "nocost.jsonl" in proc.stderr and "cost" in proc.stderr
    assert tree_snapshot(home) == before
    notjson = tmp_path / "broken.jsonl"
    notjson.write_text('{"billing_account_id": "x"\n', encoding="utf-8")
    proc = finops("collect", "gcp", "--path", notjson, "--home", home)
    assert proc.returncode == 2 and "broken.jsonl: line 1 is not JSON" in proc.stderr
    assert tree_snapshot(home) == before


def test_cli_prints_reconciled_totals(tmp_path: Path) -> None:
    proc = finops("collect", "gcp", "--path", FIXTURES, "--home", tmp_path / "wh", "--format", "json",
                  check=True)
    printed = {(r["period"], r["currency"]): r for r in json.loads(proc.stdout)}
    for key, total in expected_sums(rows_of(*FILES)).items():
        assert printed[key]["source_billed_cost"] == str(total.quantize(CENT))
        assert printed[key]["billed_cost"] == str(total.quantize(CENT))
        assert printed[key]["effective_cost"] == str(total.quantize(CENT))
        assert printed[key]["reconciled"] is True
