"""AWS CUR, CUR 2.0 and FOCUS exports, from disk and from a real S3 API (moto server)."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import boto3
import polars as pl
import pytest

from finops.state import open_state
from finops.validate import validate
from finops.warehouse import Warehouse
from tests.collectors.aws_cur import EXPECTED, RESTATED_2026_01, RI, SP, cur2_frame, write_cur2
from tests.core.cli import finops

CENT = Decimal("0.01")


def totals(home: Path, source: str = "aws") -> dict[str, tuple[Decimal, Decimal]]:
    df = (
        Warehouse(home).scan("billing", where={"source": source})
        .group_by("billing_period")
        .agg(pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum())
        .collect()
    )
    return {p: (b, e) for p, b, e in df.iter_rows()}


def by_type(home: Path) -> dict[str, dict[str, object]]:
    df = Warehouse(home).scan("billing").filter(pl.col("billing_period") == "2026-01").collect()
    return {r["x_line_item_line_item_type"] + (r["ResourceId"] or ""): r
            for r in df.iter_rows(named=True)}


def test_cur2_parquet_mapping_by_line_item_type(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    write_cur2(tmp_path / "exp" / "a.parquet", "2026-01")
    write_cur2(tmp_path / "exp" / "b.parquet", "2026-02")
    finops("collect", "aws", "--path", tmp_path / "exp", "--home", home, check=True)
    assert totals(home) == EXPECTED
    rows = by_type(home)
    covered = rows["SavingsPlanCoveredUsagei-bbb"]
    assert (covered["ChargeCategory"], covered["PricingCategory"]) == ("Usage", "Committed")
    assert covered["EffectiveCost"] == Decimal("5")
    assert covered["CommitmentDiscountId"] == SP
    assert (covered["CommitmentDiscountType"], covered["CommitmentDiscountCategory"],
            covered["CommitmentDiscountStatus"]) == ("Savings Plan", "Spend", "Used")
    assert rows["SavingsPlanNegationi-bbb"]["EffectiveCost"] == 0
    fee = rows["SavingsPlanRecurringFee"]
    assert (fee["ChargeCategory"], fee["ChargeFrequency"], fee["CommitmentDiscountStatus"]) == (
        "Purchase", "Recurring", "Unused")
    assert fee["EffectiveCost"] == Decimal("1")
    ri_usage = rows["DiscountedUsagei-ccc"]
    assert (ri_usage["BilledCost"], ri_usage["EffectiveCost"]) == (0, Decimal("3"))
    assert (ri_usage["CommitmentDiscountType"], ri_usage["CommitmentDiscountCategory"],
            ri_usage["CommitmentDiscountId"]) == ("Reserved Instance", "Usage", RI)
    assert rows["RIFee"]["EffectiveCost"] == Decimal("0.5")
    upfront = rows["Fee"]
    assert (upfront["ChargeCategory"], upfront["ChargeFrequency"], upfront["BilledCost"],
            upfront["EffectiveCost"]) == ("Purchase", "One-Time", Decimal(100), 0)
    assert rows["Tax"]["ChargeCategory"] == "Tax"
    assert (rows["Credit"]["ChargeCategory"], rows["Credit"]["ChargeClass"]) == ("Credit", None)
    assert (rows["Refund"]["ChargeCategory"], rows["Refund"]["ChargeClass"]) == ("Credit", "Correction")
    assert rows["EdpDiscount"]["ChargeCategory"] == "Credit"
    assert rows["Usagei-spot"]["PricingCategory"] == "Dynamic"
    usage = rows["Usagei-aaa"]
    assert usage["Tags"] == {"user_tenant": "acme", "user_team": "data"}
    assert usage["SubAccountId"] == "000222222222"
    assert usage["ServiceCategory"] == "Compute"
    assert usage["x_product"] == {"servicecode": "AmazonEC2"}
    df = Warehouse(home).scan("billing").collect().drop("source", "billing_period")
    assert validate(df) == []


def test_legacy_csv_gz_with_net_cost_and_tag_columns(tmp_path: Path) -> None:
    header = ["identity/LineItemId", "bill/PayerAccountId", "bill/BillingPeriodStartDate",
              "bill/BillingPeriodEndDate", "lineItem/UsageAccountId", "lineItem/LineItemType",
              "lineItem/UsageStartDate", "lineItem/UsageEndDate", "lineItem/ProductCode",
              "lineItem/CurrencyCode", "lineItem/UnblendedCost", "lineItem/NetUnblendedCost",
              "resourceTags/user:team", "resourceTags/user:tenant", "lineItem/ResourceId"]
    recs = [
        ["1", "111", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", "0042", "Usage",
         "2026-03-02T00:00:00Z", "2026-03-02T01:00:00Z", "AmazonS3", "USD", "5.00", "4.50",
         "data", "acme", "bucket-a"],
        ["2", "111", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z", "0042", "Usage",
         "2026-03-02T00:00:00Z", "2026-03-02T01:00:00Z", "AmazonS3", "USD", "1.00", "0.90",
         "", "", "bucket-b"],
    ]
    path = tmp_path / "legacy" / "report-00001.csv.gz"
    path.parent.mkdir()
    with gzip.open(path, "wt", newline="") as fh:
        csv.writer(fh).writerows([header, *recs])
    home = tmp_path / "wh"
    proc = finops("collect", "aws", "--path", path, "--home", home, "--format", "json", check=True)
    assert json.loads(proc.stdout)[0]["source_billed_cost"] == "5.40"  # net unblended
    df = Warehouse(home).scan("billing").sort("x_SourceRow").collect()
    assert df["BilledCost"].to_list() == [Decimal("4.5"), Decimal("0.9")]
    assert df["Tags"].to_list() == [{"user:team": "data", "user:tenant": "acme"}, {}]
    assert df["SubAccountId"].to_list() == ["0042", "0042"]


def test_real_legacy_sample_reconciles(tmp_path: Path, samples: Path) -> None:
    sample = samples / "aws-cur-legacy" / "sample-anonymous-aws-export-dataset.csv"
    expected: dict[str, Decimal] = defaultdict(Decimal)
    kinds: dict[str, int] = defaultdict(int)
    with sample.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            expected[rec["bill/BillingPeriodStartDate"][:7]] += Decimal(rec["lineItem/UnblendedCost"])
            kinds[rec["lineItem/LineItemType"]] += 1
    home = tmp_path / "wh"
    finops("collect", "aws", "--path", sample, "--home", home, check=True)
    got = totals(home)
    assert {p: b for p, (b, _) in got.items()} == dict(expected)
    df = Warehouse(home).scan("billing").collect()
    assert df.filter(pl.col("ChargeCategory") == "Tax").height == kinds["Tax"]
    assert df.filter(pl.col("ChargeCategory") == "Usage").height == kinds["Usage"]
    assert validate(df.drop("source", "billing_period")) == []


def test_aws_focus_export_is_recognised(tmp_path: Path) -> None:
    focus = pl.DataFrame({
        "BilledCost": ["3.00"], "EffectiveCost": ["2.00"], "BillingAccountId": ["111"],
        "BillingCurrency": ["USD"], "BillingPeriodStart": ["2026-04-01T00:00:00Z"],
        "BillingPeriodEnd": ["2026-05-01T00:00:00Z"], "ChargeCategory": ["Usage"],
        "ChargePeriodStart": ["2026-04-02T00:00:00Z"], "ChargePeriodEnd": ["2026-04-03T00:00:00Z"],
        "ProviderName": ["AWS"], "ServiceName": ["Amazon EC2"], "x_Operation": ["RunInstances"],
    })
    focus.write_csv(tmp_path / "focus.csv")
    home = tmp_path / "wh"
    proc = finops("collect", "aws", "--path", tmp_path / "focus.csv", "--home", home, check=True)
    assert "read as AWS FOCUS export" in proc.stderr
    df = Warehouse(home).scan("billing").collect()
    assert df["x_Operation"].to_list() == ["RunInstances"]
    assert df["EffectiveCost"].to_list() == [Decimal(2)]


def test_missing_cur_columns_exit_2(tmp_path: Path) -> None:
    cur2_frame("2026-01").drop("line_item_currency_code", "bill_payer_account_id").write_parquet(
        tmp_path / "bad.parquet")
    proc = finops("collect", "aws", "--path", tmp_path / "bad.parquet", "--home", tmp_path / "wh")
    assert proc.returncode == 2
    assert "line_item_currency_code" in proc.stderr and "bill_payer_account_id" in proc.stderr
    assert "bad.parquet" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "wh" / "billing").exists()


# ---- S3 ----------------------------------------------------------------------------------

def _put_parquet(s3: object, bucket: str, key: str, df: pl.DataFrame) -> None:
    buf = io.BytesIO()
    df.write_parquet(buf)
    s3.put_object(Bucket=bucket, Key=key, Body=buf.getvalue())  # type: ignore[attr-defined]


def _deliver_cur2(s3: object, bucket: str, period: str, execution: str, *, restated: bool = False) -> None:
    data_key = f"cur/exp/data/BILLING_PERIOD={period}/exp-{execution}-00001.snappy.parquet"
    _put_parquet(s3, bucket, data_key, cur2_frame(period, restated=restated))
    year, month = (int(p) for p in period.split("-"))
    manifest = {
        "executionId": execution, "exportName": "exp",
        "billingPeriod": {"start": f"{year:04d}-{month:02d}-01T00:00:00.000Z"},
        "dataFiles": [f"s3://{bucket}/{data_key}"],
    }
    s3.put_object(  # type: ignore[attr-defined]
        Bucket=bucket, Key=f"cur/exp/metadata/BILLING_PERIOD={period}/exp-Manifest.json",
        Body=json.dumps(manifest).encode())


@pytest.mark.usefixtures("moto_endpoint")
def test_s3_cur2_incremental_and_restatement(tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="billing")
    _deliver_cur2(s3, "billing", "2026-01", "e1")
    _deliver_cur2(s3, "billing", "2026-02", "e2")
    home = tmp_path / "wh"
    finops("collect", "aws", "--bucket", "billing", "--prefix", "cur/exp", "--home", home, check=True)
    assert totals(home) == EXPECTED

    again = finops("collect", "aws", "--bucket", "billing", "--prefix", "cur/exp", "--home", home,
                   check=True)
    assert "unchanged" in again.stderr and "nothing to do" in again.stderr
    assert totals(home) == EXPECTED
    runs = open_state(home).runs(stage="collect")
    assert len(runs) == 1  # the second call loaded nothing

    _deliver_cur2(s3, "billing", "2026-01", "e3", restated=True)
    proc = finops("collect", "aws", "--bucket", "billing", "--prefix", "cur/exp", "--home", home,
                  "--format", "json", check=True)
    printed = json.loads(proc.stdout)
    assert [r["period"] for r in printed] == ["2026-01"]  # only the restated period
    assert "2026-02: unchanged" in proc.stderr
    # Restated, not added: 2026-01 is the new bill alone, 2026-02 untouched.
    assert totals(home) == {"2026-01": RESTATED_2026_01, "2026-02": EXPECTED["2026-02"]}


@pytest.mark.usefixtures("moto_endpoint")
def test_s3_legacy_manifest_picks_current_assembly(tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="legacy")
    base = "reports/rep/20260101-20260201"
    for assembly, restated in (("asm-old", False), ("asm-new", True)):
        frame = cur2_frame("2026-01", restated=restated)
        csv_text = frame.drop("resource_tags", "product").with_columns(
            pl.col(pl.Datetime("us", "UTC")).dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv()
        key = f"{base}/{assembly}/rep-00001.csv.gz"
        s3.put_object(Bucket="legacy", Key=key, Body=gzip.compress(csv_text.encode()))
        manifest = {"assemblyId": assembly, "reportName": "rep", "reportKeys": [key],
                    "billingPeriod": {"start": "20260101T000000.000Z", "end": "20260201T000000.000Z"}}
        s3.put_object(Bucket="legacy", Key=f"{base}/{assembly}/rep-Manifest.json",
                      Body=json.dumps(manifest).encode())
        s3.put_object(Bucket="legacy", Key=f"{base}/rep-Manifest.json", Body=json.dumps(manifest).encode())
    home = tmp_path / "wh"
    finops("collect", "aws", "--bucket", "legacy", "--prefix", "reports/rep", "--home", home, check=True)
    assert totals(home) == {"2026-01": RESTATED_2026_01}


@pytest.mark.usefixtures("moto_endpoint")
def test_s3_role_assumption_and_bad_prefix(tmp_path: Path) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="bucket-two")
    _deliver_cur2(s3, "bucket-two", "2026-02", "x1")
    home = tmp_path / "wh"
    finops("collect", "aws", "--bucket", "bucket-two", "--prefix", "cur/exp", "--home", home,
           "--role-arn", "arn:aws:iam::111111111111:role/finops-read", check=True)
    assert totals(home) == {"2026-02": EXPECTED["2026-02"]}
    empty = finops("collect", "aws", "--bucket", "bucket-two", "--prefix", "nothing/here", "--home", home)
    assert empty.returncode == 2 and "no CUR manifest" in empty.stderr
    assert "Traceback" not in empty.stderr


def test_timestamps_in_cur2_are_utc(tmp_path: Path) -> None:
    write_cur2(tmp_path / "a.parquet", "2026-02")
    home = tmp_path / "wh"
    finops("collect", "aws", "--path", tmp_path / "a.parquet", "--home", home, check=True)
    df = Warehouse(home).scan("billing").collect()
    assert df["ChargePeriodStart"].min() == dt.datetime(2026, 2, 3, tzinfo=dt.UTC)
    assert df["BillingPeriodEnd"].max() == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
