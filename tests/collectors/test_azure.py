"""Azure Cost Management exports (EA and MCA, actual and amortized) to FOCUS 1.2.

The real EA samples are reconciled to their own sums, computed here with csv and decimal
only; the MCA files and the refund, unused-reservation and tag cases are written below by
hand, as Cost Management writes them (camelCase MCA headers, tags without braces).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from collectors.azure import View, collect_azure
from finops.errors import BadInputError
from finops.ingest import IngestResult
from finops.state import open_state
from finops.validate import validate
from finops.warehouse import Warehouse
from tests.core.cli import finops, tree_snapshot

CENT = Decimal("0.01")
EA_SAMPLES = ("EA_ActualCost_Small.csv", "EA_AmortizedCost_Small.csv",
              "sample-anonymous-ea-export-dataset.csv")
COMMITMENT = {"Reservation", "SavingsPlan"}


# ---- the files' own sums, by csv and decimal only ------------------------------------------

def records(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        yield from csv.DictReader(fh)


def field(rec: dict[str, str], *names: str) -> str:
    lower = {k.lower(): v for k, v in rec.items()}
    return next((lower[n.lower()] for n in names if lower.get(n.lower())), "")


def period(text: str) -> str:
    for fmt in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return dt.datetime.strptime(text, fmt).strftime("%Y-%m")
        except ValueError:
            continue
    raise AssertionError(text)


@dataclass
class Sums:
    total: Decimal = Decimal(0)
    commitment_usage: Decimal = Decimal(0)
    commitment_purchases: Decimal = Decimal(0)
    rows: int = 0


def file_sums(path: Path) -> dict[tuple[str, str], Sums]:
    """Per billing period and currency: the cost column's total, and the two parts
    Microsoft's rules take out (commitment usage from billed, commitment purchases and
    refunds from effective)."""
    sums: dict[tuple[str, str], Sums] = defaultdict(Sums)
    for rec in records(path):
        key = (period(field(rec, "BillingPeriodStartDate")),
               field(rec, "BillingCurrency", "BillingCurrencyCode"))
        cost = Decimal(field(rec, "CostInBillingCurrency", "Cost"))
        charge, model = field(rec, "ChargeType"), field(rec, "PricingModel")
        acc = sums[key]
        acc.total += cost
        acc.rows += 1
        if charge.startswith("Unused") or (charge == "Usage" and model in COMMITMENT):
            acc.commitment_usage += cost
        if charge in ("Purchase", "Refund") and model in COMMITMENT:
            acc.commitment_purchases += cost
    return dict(sums)


# ---- collecting ------------------------------------------------------------------------------

def collect(path: Path, home: Path, *, source: str | None = None,
            view: View | None = None) -> IngestResult:
    state = open_state(home)
    try:
        return collect_azure(Warehouse(home), state, path, source=source, view=view,
                             max_rejected_share=0.0)
    finally:
        state.close()


def stored(home: Path, source: str = "azure") -> pl.DataFrame:
    return Warehouse(home).scan("billing", where={"source": source}).collect()


def totals(df: pl.DataFrame) -> dict[tuple[str, str], tuple[Decimal, Decimal, int]]:
    out = df.group_by("billing_period", "BillingCurrency").agg(
        pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum(), pl.len())
    return {(p, c): (b, e, n) for p, c, b, e, n in out.iter_rows()}


@pytest.fixture
def ea(samples: Path) -> Path:
    return samples / "azure-ea"


@pytest.mark.parametrize("name", EA_SAMPLES)
def test_ea_samples_reconcile_to_the_cent(tmp_path: Path, ea: Path, name: str) -> None:
    home = tmp_path / "wh"
    result = collect(ea / name, home)
    assert result.rows_rejected == 0
    assert all(r.reconciled for r in result.reconciliation)
    df = stored(home)
    got = totals(df)
    expected = file_sums(ea / name)
    assert set(got) == set(expected)
    for key, sums in expected.items():
        billed, effective, rows = got[key]
        assert rows == sums.rows
        assert billed.quantize(CENT) == (sums.total - sums.commitment_usage).quantize(CENT), key
        assert effective.quantize(CENT) == (sums.total - sums.commitment_purchases).quantize(CENT)
        # The reconciliation printed for the run says the same, from the file's own column.
        recon = next(r for r in result.reconciliation if (r.period, r.currency) == key)
        assert recon.source_billed.quantize(CENT) == billed.quantize(CENT)
        assert recon.source_effective is not None
        assert recon.source_effective.quantize(CENT) == effective.quantize(CENT)
        if "Actual" in name:  # an actual export is the invoice: every row is billed
            assert sums.commitment_usage == 0
            assert billed.quantize(CENT) == sums.total.quantize(CENT)
        if "Amortized" in name:  # an amortized export is the effective cost, whole
            assert sums.commitment_purchases == 0
            assert effective.quantize(CENT) == sums.total.quantize(CENT)
    assert validate(df.drop("source", "billing_period")) == []
    assert set(df["x_BillingAccountAgreement"]) == {"EA"}
    assert set(df["BillingAccountType"]) == {"Billing Account"}
    assert df["BillingAccountId"].unique().to_list() == [field(next(records(ea / name)), "BillingAccountId")]


def test_reservation_purchase_in_the_actual_view(tmp_path: Path, ea: Path) -> None:
    collect(ea / "EA_ActualCost_Small.csv", tmp_path / "wh")
    df = stored(tmp_path / "wh")
    purchase = df.filter(pl.col("x_ChargeType") == "Purchase").row(0, named=True)
    assert purchase["ChargeCategory"] == "Purchase"
    assert purchase["ChargeClass"] is None
    assert purchase["BilledCost"] == Decimal("3.25") > 0
    assert purchase["EffectiveCost"] == 0  # amortised into the usage it covers
    assert purchase["ChargeFrequency"] == "Recurring"
    # FOCUS 1.2: buying a commitment is Standard; Committed is usage it covers.
    assert purchase["PricingCategory"] == "Standard"
    assert (purchase["CommitmentDiscountType"], purchase["CommitmentDiscountCategory"]) == (
        "Reservation", "Usage")
    assert purchase["CommitmentDiscountId"].startswith("/providers/Microsoft.Capacity/reservationOrders/")
    assert purchase["CommitmentDiscountStatus"] is None
    assert (purchase["ServiceName"], purchase["ServiceCategory"]) == (
        "Azure Reservations", "Management and Governance")
    assert (purchase["ContractedCost"], purchase["ListCost"]) == (Decimal("3.25"), Decimal("3.25"))
    # Everything else in an actual export is billed as it is.
    rest = df.filter(pl.col("x_ChargeType") != "Purchase")
    assert (rest["BilledCost"] == rest["EffectiveCost"]).all()


def test_amortized_commitment_usage(tmp_path: Path, ea: Path) -> None:
    path = ea / "EA_AmortizedCost_Small.csv"
    collect(path, tmp_path / "wh")
    df = stored(tmp_path / "wh")
    source = dict(enumerate(records(path), start=1))
    committed = df.filter(pl.col("x_PricingModel").is_in(["Reservation", "SavingsPlan"]))
    assert committed.height == 2
    for row in committed.iter_rows(named=True):
        rec = source[row["x_SourceRow"]]
        assert row["PricingCategory"] == "Committed"
        assert row["EffectiveCost"] == Decimal(rec["Cost"])
        assert row["BilledCost"] == 0  # billed with the purchase, in the actual view
        assert row["CommitmentDiscountStatus"] == "Used"
        assert row["CommitmentDiscountId"] == rec["benefitId"]
        assert row["CommitmentDiscountName"] == rec["benefitName"]
        assert row["ConsumedQuantity"] == float(rec["Quantity"])
        reservation = rec["PricingModel"] == "Reservation"
        assert (row["CommitmentDiscountType"], row["CommitmentDiscountCategory"]) == (
            ("Reservation", "Usage") if reservation else ("Savings Plan", "Spend"))
        # Contracted cost is the negotiated on-demand price × quantity (what was saved on).
        assert row["ContractedCost"] == (Decimal(rec["UnitPrice"]) * Decimal(rec["Quantity"])).quantize(
            Decimal("1e-12"))
    on_demand = df.filter(pl.col("x_PricingModel") == "OnDemand")
    assert set(on_demand["PricingCategory"]) == {"Standard"}
    assert (on_demand["BilledCost"] == on_demand["EffectiveCost"]).all()
    assert on_demand["CommitmentDiscountId"].null_count() == on_demand.height
    # Tags without braces, and AdditionalInfo kept.
    vm = committed.filter(pl.col("x_PricingModel") == "Reservation").row(0, named=True)
    assert vm["Tags"]["aks-managed-poolName"] == "agentpool"
    assert vm["Tags"]["aks-managed-createOperationID"] == ""
    assert json.loads(vm["x_AdditionalInfo"])["RINormalizationRatio"] == 2.0
    assert (vm["ServiceName"], vm["ServiceCategory"], vm["ResourceType"]) == (
        "Virtual Machine Scale Sets", "Compute", "microsoft.compute/virtualmachinescalesets")
    assert (vm["RegionId"], vm["RegionName"]) == ("eastus", "East US")


def test_units_dates_and_names_of_an_actual_row(tmp_path: Path, ea: Path) -> None:
    collect(ea / "EA_ActualCost_Small.csv", tmp_path / "wh")
    row = stored(tmp_path / "wh").filter(pl.col("x_SourceRow") == 2).row(0, named=True)
    # 0.0004 of "10K" at 0.1 per 10K: 4 operations, 0.00004.
    assert (row["PricingQuantity"], row["PricingUnit"], row["x_PricingBlockSize"]) == (
        0.0004, "10000 Units", 10000.0)
    assert (row["ConsumedQuantity"], row["ConsumedUnit"]) == (pytest.approx(4.0), "Units")
    assert row["ContractedUnitPrice"] * Decimal("0.0004") == row["ContractedCost"] == row["BilledCost"]
    assert row["ChargePeriodStart"] == dt.datetime(2023, 9, 4, tzinfo=dt.UTC)
    assert row["ChargePeriodEnd"] == dt.datetime(2023, 9, 5, tzinfo=dt.UTC)
    assert row["BillingPeriodStart"] == dt.datetime(2023, 9, 1, tzinfo=dt.UTC)
    assert row["BillingPeriodEnd"] == dt.datetime(2023, 10, 1, tzinfo=dt.UTC)  # exclusive
    assert row["ResourceName"] == "dbstoragewp6hglwvvrad2"
    assert row["SubAccountId"] == "ed570627-0265-4620-bb42-bae06bcfa914"
    assert (row["SubAccountName"], row["SubAccountType"]) == ("Trey Research IT", "Subscription")
    assert (row["RegionId"], row["RegionName"]) == ("eastus2", "East US 2")
    assert row["Tags"] == {"CostCenter": "1234", "env": "prod", "org": "trey",
                           "application": "databricks", "databricks-environment": "true"}
    assert (row["ProviderName"], row["InvoiceIssuerName"], row["PublisherName"]) == (
        "Microsoft", "Microsoft", "Microsoft")


def test_spot_is_dynamic(tmp_path: Path, ea: Path) -> None:
    collect(ea / "sample-anonymous-ea-export-dataset.csv", tmp_path / "wh")
    df = stored(tmp_path / "wh")
    by_model = dict(df.group_by("x_PricingModel").agg(pl.col("PricingCategory").unique()).iter_rows())
    assert by_model == {"Spot": ["Dynamic"], "OnDemand": ["Standard"]}
    assert set(df["BillingCurrency"]) == {"CAD"}  # from BillingCurrencyCode
    # '9/1/2023', without leading zeros
    assert set(df["BillingPeriodStart"]) == {dt.datetime(2023, 9, 1, tzinfo=dt.UTC)}


# ---- MCA, both views, refunds, unused reservations: written by hand ------------------------

MCA_HEADER = [
    "invoiceId", "billingAccountId", "billingAccountName", "billingProfileId", "billingProfileName",
    "invoiceSectionName", "billingPeriodStartDate", "billingPeriodEndDate", "date", "consumedService",
    "meterName", "meterCategory", "ProductId", "ProductName", "SubscriptionId", "subscriptionName",
    "publisherName", "resourceGroupName", "ResourceId", "resourceLocation", "effectivePrice", "quantity",
    "unitOfMeasure", "chargeType", "billingCurrency", "pricingCurrency", "costInBillingCurrency",
    "paygCostInBillingCurrency", "exchangeRatePricingToBilling", "additionalInfo", "tags", "PayGPrice",
    "frequency", "reservationId", "reservationName", "pricingModel", "unitPrice", "benefitId",
    "benefitName",
]
PROFILE = "AB12-CD34-EF5-GH6"
RI = "/providers/Microsoft.Capacity/reservationOrders/o1/reservations/r1"
VM = "/subscriptions/s-1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


def mca_row(charge: str, cost: str, **kw: str) -> dict[str, str]:
    base = {
        "invoiceId": "G000111", "billingAccountId": "1234abcd-0000:5678_2019-05-31",
        "billingAccountName": "Contoso", "billingProfileId": PROFILE, "billingProfileName": "Contoso EU",
        "invoiceSectionName": "Data", "billingPeriodStartDate": "2024-03-01",
        "billingPeriodEndDate": "2024-03-31", "date": "2024-03-05", "consumedService": "Microsoft.Compute",
        "meterName": "D2 v3", "meterCategory": "Virtual Machines", "ProductId": "DZH318Z0BQ4L",
        "ProductName": "Virtual Machines Dv3 Series", "SubscriptionId": "s-1", "subscriptionName": "prod",
        "publisherName": "Microsoft", "resourceGroupName": "rg", "ResourceId": VM,
        "resourceLocation": "westeurope", "quantity": "10", "unitOfMeasure": "1 Hour",
        "chargeType": charge, "billingCurrency": "EUR", "pricingCurrency": "USD",
        "costInBillingCurrency": cost, "exchangeRatePricingToBilling": "0.9",
        "frequency": "UsageBased", "pricingModel": "OnDemand", "unitPrice": "1.0", "PayGPrice": "1.2",
        "effectivePrice": "1.0", "tags": '"team": "data","env": "prod"',
    }
    return {**base, **kw}


COMMITTED = {"pricingModel": "Reservation", "benefitId": RI, "benefitName": "ri-1", "reservationId": "r1",
             "reservationName": "ri-1", "quantity": "24", "tags": '{"team":"ml"}'}
BOUGHT = {**COMMITTED, "ResourceId": RI, "consumedService": "Microsoft.Capacity", "meterName": "",
          "meterCategory": "", "quantity": "1", "unitOfMeasure": "1 Hour", "tags": "", "PayGPrice": "0"}
NO_METER = {"consumedService": "", "meterName": "", "meterCategory": "", "ResourceId": "", "quantity": "",
            "unitOfMeasure": "", "unitPrice": "", "PayGPrice": "", "effectivePrice": "",
            "pricingModel": "", "frequency": "OneTime", "tags": "", "ProductName": ""}
ACTUAL = [
    mca_row("Usage", "9.00"),
    mca_row("Usage", "0", **COMMITTED, effectivePrice="0"),
    mca_row("Purchase", "100.00", **{**BOUGHT, "frequency": "Recurring", "unitPrice": "111.111111111"}),
    mca_row("Refund", "-20.00", **{**BOUGHT, "frequency": "OneTime", "quantity": "-1",
                                   "unitPrice": "22.2222222222"}),
    mca_row("Tax", "5.00", **NO_METER),
    mca_row("RoundingAdjustment", "0.01", **NO_METER),
]
AMORTIZED = [
    mca_row("Usage", "9.00"),
    mca_row("Usage", "60.00", **COMMITTED, effectivePrice="2.7777777778"),
    mca_row("UnusedReservation", "20.00", **{**BOUGHT, "quantity": "8", "effectivePrice": "2.7777777778"}),
    mca_row("Tax", "5.00", **NO_METER),
    mca_row("RoundingAdjustment", "0.01", **NO_METER),
]


def write(path: Path, rows: list[dict[str, str]], header: list[str] = MCA_HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def by_charge(df: pl.DataFrame) -> dict[str, dict[str, object]]:
    return {f"{r['x_ChargeType']}/{r['x_PricingModel']}": r for r in df.iter_rows(named=True)}


def test_mca_both_views_combined_as_microsoft_does(tmp_path: Path) -> None:
    # Neutral names: each file's view is told by its rows.
    export = tmp_path / "march"
    write(export / "a.csv", ACTUAL)
    write(export / "b.csv", AMORTIZED)
    home = tmp_path / "wh"
    result = collect(export, home)
    assert result.rows_out == 5 + 2  # every amortized row + the actual purchase and refund
    [recon] = result.reconciliation
    assert recon.reconciled
    # BilledCost adds up to the actual file (the invoice), EffectiveCost to the amortized one.
    assert recon.source_billed == sum(Decimal(r["costInBillingCurrency"]) for r in ACTUAL)
    assert recon.source_effective == sum(Decimal(r["costInBillingCurrency"]) for r in AMORTIZED)
    assert (recon.stored_billed, recon.stored_effective) == (Decimal("94.01"), Decimal("94.01"))
    assert any("combined with the amortized view" in n for n in result.notes)

    df = stored(home)
    assert validate(df.drop("source", "billing_period")) == []
    rows = by_charge(df)
    refund = rows["Refund/Reservation"]
    assert (refund["ChargeCategory"], refund["ChargeClass"]) == ("Purchase", "Correction")
    assert (refund["BilledCost"], refund["EffectiveCost"]) == (Decimal("-20"), 0)
    purchase = rows["Purchase/Reservation"]
    assert (purchase["BilledCost"], purchase["EffectiveCost"], purchase["x_SourceView"]) == (
        Decimal(100), 0, "actual")
    unused = rows["UnusedReservation/Reservation"]
    assert (unused["ChargeCategory"], unused["CommitmentDiscountStatus"], unused["PricingCategory"]) == (
        "Usage", "Unused", "Committed")
    assert (unused["BilledCost"], unused["EffectiveCost"]) == (0, Decimal(20))
    assert unused["ConsumedQuantity"] is None and unused["PricingQuantity"] == 8
    assert unused["ResourceName"] == "r1"
    used = rows["Usage/Reservation"]
    assert (used["BilledCost"], used["EffectiveCost"], used["CommitmentDiscountStatus"],
            used["x_SourceView"]) == (0, Decimal(60), "Used", "amortized")
    assert rows["RoundingAdjustment/None"]["ChargeCategory"] == "Adjustment"
    tax = rows["Tax/None"]
    assert (tax["ChargeCategory"], tax["PricingCategory"], tax["PricingQuantity"]) == ("Tax", None, None)
    # MCA: the billing account is the billing profile; prices converted to the billing currency.
    on_demand = rows["Usage/OnDemand"]
    assert (on_demand["BillingAccountId"], on_demand["BillingAccountName"],
            on_demand["BillingAccountType"], on_demand["x_BillingAccountAgreement"]) == (
        PROFILE, "Contoso EU", "Billing Profile", "MCA")
    assert on_demand["x_BillingAccountId"] == "1234abcd-0000:5678_2019-05-31"
    assert (on_demand["ContractedUnitPrice"], on_demand["ContractedCost"]) == (Decimal("0.9"), Decimal(9))
    assert on_demand["ListCost"] == Decimal("10.8")  # 1.2 USD × 10 × 0.9
    assert (on_demand["InvoiceId"], on_demand["SkuId"], on_demand["PricingCurrency"]) == (
        "G000111", "DZH318Z0BQ4L", "USD")
    assert (on_demand["RegionId"], on_demand["RegionName"]) == ("westeurope", "West Europe")
    assert on_demand["x_ResourceGroup"] == "rg"  # MCA resourceGroupName, EA ResourceGroup
    assert on_demand["Tags"] == {"team": "data", "env": "prod"}  # no braces in the file
    assert used["Tags"] == {"team": "ml"}  # braces in the file


def test_one_view_alone(tmp_path: Path) -> None:
    actual = write(tmp_path / "actual-only.csv", ACTUAL)
    result = collect(actual, tmp_path / "wh", source="actual")
    [recon] = result.reconciliation
    # The invoice, whole, billed; prepaid purchase and refund not effective (FOCUS), and
    # the usage they cover costs 0 in this view: the note says to collect both views.
    assert (recon.stored_billed, recon.stored_effective) == (Decimal("94.01"), Decimal("14.01"))
    assert recon.source_billed == recon.stored_billed and recon.reconciled
    assert any("actual view alone" in n for n in result.notes)
    refund = by_charge(stored(tmp_path / "wh", "actual"))["Refund/Reservation"]
    assert (refund["ChargeCategory"], refund["ChargeClass"]) == ("Purchase", "Correction")

    amortized = write(tmp_path / "amortized-only.csv", AMORTIZED)
    result = collect(amortized, tmp_path / "wh", source="amortized")
    [recon] = result.reconciliation
    assert (recon.stored_billed, recon.stored_effective) == (Decimal("14.01"), Decimal("94.01"))
    assert recon.reconciled and any("amortized view alone" in n for n in result.notes)


def test_view_that_cannot_be_told_is_refused_when_it_matters(tmp_path: Path) -> None:
    export = tmp_path / "exp"
    write(export / "a.csv", ACTUAL)
    write(export / "b.csv", AMORTIZED)
    write(export / "c.csv", [mca_row("Usage", "1.00")])  # no commitment rows, no hint in its name
    with pytest.raises(BadInputError, match=r"c\.csv: cannot tell whether"):
        collect(export, tmp_path / "wh")
    (export / "c.csv").rename(export / "c-amortized.csv")  # its name tells
    [recon] = collect(export, tmp_path / "wh").reconciliation
    assert recon.stored_effective == Decimal("95.01")
    # c's charge is in no actual file: the two views disagree, and the check says by how much.
    assert (recon.reconciled, recon.difference) == (False, Decimal("-1"))


def test_view_override_and_unknown_columns_and_charge_types(tmp_path: Path) -> None:
    rows = [{**mca_row("Usage", "2.50"), "MyCustomColumn": "x"}, mca_row("Fee", "1.00", **NO_METER),
            mca_row("Usage", "0.50", tags='"team": "data", "broken')]
    path = write(tmp_path / "odd.csv", rows, [*MCA_HEADER, "MyCustomColumn"])
    result = collect(path, tmp_path / "wh", view="amortized")
    df = stored(tmp_path / "wh")
    assert set(df["x_SourceView"]) == {"amortized"}
    assert "x_MyCustomColumn" in df.columns and "MyCustomColumn" not in df.columns
    notes = "\n".join(result.notes)
    assert "told by --view" in notes
    assert "MyCustomColumn → x_MyCustomColumn" in notes
    assert "ChargeType value(s) Fee mapped to ChargeCategory Adjustment" in notes
    assert df.filter(pl.col("x_ChargeType") == "Fee")["ChargeCategory"].to_list() == ["Adjustment"]
    # Tags that are not a JSON object are not lost: kept as they were, beside a null map.
    broken = df.filter(pl.col("x_SourceRow") == 3).row(0, named=True)
    assert (broken["Tags"], broken["x_TagsUnparsed"]) == (None, '"team": "data", "broken')
    assert df.filter(pl.col("x_SourceRow") == 1)["x_TagsUnparsed"].to_list() == [None]


# ---- files: gzip, Parquet, re-collecting, bad input, the CLI --------------------------------

def test_gzip_and_parquet_give_the_same_rows(tmp_path: Path, ea: Path) -> None:
    csv_path = ea / "EA_AmortizedCost_Small.csv"
    gz = tmp_path / "gz" / "EA_AmortizedCost_Small.csv.gz"
    gz.parent.mkdir()
    gz.write_bytes(gzip.compress(csv_path.read_bytes()))
    parquet = tmp_path / "pq" / "EA_AmortizedCost_Small.parquet"
    parquet.parent.mkdir()
    pl.read_csv(csv_path, infer_schema=False).write_parquet(parquet)
    home = tmp_path / "wh"
    for source, path in (("csv", csv_path), ("gz", gz), ("pq", parquet)):
        result = collect(path, home, source=source)
        assert all(r.reconciled for r in result.reconciliation)
    keep = ["x_SourceRow", "BilledCost", "EffectiveCost", "ChargeCategory", "PricingCategory", "Tags",
            "ChargePeriodStart", "ServiceName", "RegionId", "ResourceName", "ListCost"]
    frames = {s: stored(home, s).select(keep).sort("x_SourceRow") for s in ("csv", "gz", "pq")}
    assert frames["gz"].equals(frames["csv"])
    assert frames["pq"].equals(frames["csv"])
    assert totals(stored(home, "gz")) == totals(stored(home, "csv"))


def test_recollecting_replaces_the_period(tmp_path: Path, ea: Path) -> None:
    home = tmp_path / "wh"
    path = ea / "EA_ActualCost_Small.csv"
    collect(path, home)
    first = totals(stored(home))
    collect(path, home)
    assert totals(stored(home)) == first
    assert stored(home).height == sum(1 for _ in records(path))


def test_missing_columns_exit_2_with_names(tmp_path: Path, ea: Path) -> None:
    home = tmp_path / "wh"
    finops("collect", "azure", "--path", ea / "EA_ActualCost_Small.csv", "--home", home, check=True)
    rows = list(records(ea / "EA_ActualCost_Small.csv"))
    header = [h for h in rows[0] if h not in ("Cost", "ChargeType", "BillingPeriodEndDate")]
    bad = write(tmp_path / "drift.csv", [{**r, "ChargeTyp": r["ChargeType"]} for r in rows],
                [*header, "ChargeTyp"])
    before = tree_snapshot(home)
    proc = finops("collect", "azure", "--path", bad, "--home", home)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "Traceback" not in out
    for needle in ("drift.csv", "missing required column(s)", "BillingPeriodEndDate",
                   "ChargeType (did you mean ChargeTyp?)", "CostInBillingCurrency or Cost or PreTaxCost"):
        assert needle in out, out
    assert tree_snapshot(home) == before


def test_cli_prints_the_reconciliation(tmp_path: Path, ea: Path) -> None:
    path = ea / "EA_AmortizedCost_Small.csv"
    proc = finops("collect", "azure", "--path", path, "--home", tmp_path / "wh", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert "amortized view" in proc.stderr
    [printed] = json.loads(proc.stdout)
    [(key, sums)] = file_sums(path).items()
    assert (printed["period"], printed["currency"]) == key
    assert printed["rows"] == sums.rows
    assert printed["source_effective_cost"] == printed["effective_cost"] == str(sums.total.quantize(CENT))
    billed = str((sums.total - sums.commitment_usage).quantize(CENT))
    assert printed["source_billed_cost"] == printed["billed_cost"] == billed
    assert printed["reconciled"] is True
