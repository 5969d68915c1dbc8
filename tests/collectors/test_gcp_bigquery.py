"""The BigQuery path, against a loopback stand-in for the BigQuery REST API: incremental
reads by export time with an overlap, whole restated months replaced, never doubled."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import google.cloud.bigquery  # noqa: F401  a dev dependency: missing, the test must fail, not skip
import polars as pl

from collectors.gcp import collect_gcp_files, collect_gcp_table
from finops.state import open_state
from finops.validate import validate
from finops.warehouse import Warehouse
from tests.collectors.test_gcp_files import FILES, FIXTURES, expected_sums, rows_of, stored_sums
from tests.core.cli import finops, tree_snapshot
from tests.fixtures.gcp.fake_google import (
    INT,
    B,
    FakeGoogle,
    N,
    S,
    T,
    _f,
    _rec,
    load_rows,
    parse_time,
    serve,
)

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


# ---- Google's FOCUS view ------------------------------------------------------------------
# The FOCUS BigQuery view Google publishes over the detailed export (template of 2024-03-19):
# its columns, types and nesting, and, below, its SELECT transcribed row by row, quirks kept
# (lowercase "usage"/"standard"/"correction", ServiceCategory from the pricing export's
# product_taxonomy, an array; Tags from labels, system labels, project labels and tags).
FOCUS_VIEW = "billing-proj.billing_ds.gcp_billing_focus_v1"
FOCUS_VIEW_SCHEMA: list[dict[str, Any]] = [
    _f("AvailabilityZone", S), _f("BilledCost", N), _f("BillingAccountId", S),
    _f("BillingCurrency", S), _f("BillingPeriodStart", T), _f("BillingPeriodEnd", T),
    _f("ChargeCategory", S), _f("ChargeClass", S), _f("ChargeDescription", S),
    _f("ChargePeriodStart", T), _f("ChargePeriodEnd", T), _f("CommitmentDiscountCategory", S),
    _f("CommitmentDiscountId", S), _f("CommitmentDiscountName", S), _f("ConsumedQuantity", N),
    _f("ConsumedUnit", S), _f("ContractedCost", N), _f("ContractedUnitPrice", N),
    _f("EffectiveCost", N), _f("ListCost", N), _f("ListUnitPrice", N), _f("PricingCategory", S),
    _f("PricingQuantity", N), _f("PricingUnit", S), _f("ProviderName", S), _f("PublisherName", S),
    _f("RegionId", S), _f("RegionName", S), _f("ResourceId", S), _f("ResourceName", S),
    _f("ResourceType", S), _f("ServiceCategory", S, "REPEATED"), _f("ServiceName", S),
    _f("SkuId", S), _f("SkuPriceId", S), _f("SubAccountId", S),
    _rec("Tags", _f("key", S), _f("value", S), _f("x_type", S), _f("x_inherited", B),
         _f("x_namespace", S), repeated=True),
    _rec("x_Credits", _f("Name", S), _f("Amount", N), _f("FullName", S), _f("Id", S), _f("Type", S),
         repeated=True),
    _f("x_CostType", S), _f("x_CurrencyConversionRate", N), _f("x_ExportTime", T),
    _f("x_Location", S),
    _rec("x_Project", _f("id", S), _f("number", S), _f("name", S), _f("ancestry_numbers", S),
         _rec("ancestors", _f("resource_name", S), _f("display_name", S), repeated=True)),
    _f("x_ServiceId", S),
]
LA = ZoneInfo("America/Los_Angeles")
REGION_NAMES = {"us-central1": "Iowa", "us-east1": "South Carolina", "europe-west1": "Belgium"}
CUD_TYPES = ("COMMITTED_USAGE_DISCOUNT", "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE")
RESOURCE_TYPE = re.compile(
    r"(//)|(googleapis.com/)|(projects/[^/]+/)|(project_commitments/[^/]+/)|(locations/[^/]+/)"
    r"|(regions/[^/]+/)|(zones/[^/]+/)|(global/)|(/[^/]+)")
# What the view's LEFT JOIN to the pricing export finds for a SKU (product_taxonomy).
TAXONOMY = {"Compute Engine": ["GCP", "Compute", "GCE", "VMs On Demand", "Cores: Per Core"]}


def _num(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _tag_entries(r: dict[str, Any]) -> list[dict[str, Any]]:
    def kv(items: list[dict[str, Any]] | None, kind: str, inherited: bool) -> list[dict[str, Any]]:
        return [{"key": e["key"], "value": e["value"], "x_type": kind, "x_inherited": inherited,
                 "x_namespace": "n/a"} for e in items or []]

    return [*kv(r.get("labels"), "label", False), *kv(r.get("system_labels"), "system_label", False),
            *kv((r.get("project") or {}).get("labels"), "project_label", True),
            *[{"key": t["key"], "value": t["value"], "x_type": "tag", "x_inherited": t.get("inherited"),
               "x_namespace": t.get("namespace")} for t in r.get("tags") or []]]


def google_focus_view(r: dict[str, Any]) -> dict[str, Any]:
    """One detailed-export row as Google's FOCUS view returns it."""
    credits = r.get("credits") or []
    cost_type = r.get("cost_type")
    regular = cost_type == "regular"
    billed = Decimal(str(r["cost"])) + sum((Decimal(str(c["amount"])) for c in credits), Decimal(0))
    month = r["invoice"]["month"]
    first = date(int(month[:4]), int(month[4:]), 1)
    following = (first + timedelta(days=32)).replace(day=1)
    cud = next((c for c in credits if c.get("type") in CUD_TYPES), None)
    sku, loc, res = r.get("sku") or {}, r.get("location") or {}, r.get("resource") or {}
    price, usage, project = r.get("price") or {}, r.get("usage") or {}, r.get("project") or {}
    adjustment = r.get("adjustment_info") or {}
    global_name = res.get("global_name")
    resource_type = None
    if global_name:
        stripped = RESOURCE_TYPE.sub("", global_name)
        resource_type = stripped if global_name.startswith(stripped) else None
    tier = price.get("tier_start_amount")
    return {
        "AvailabilityZone": loc.get("zone"),
        "BilledCost": billed,
        "BillingAccountId": r["billing_account_id"],
        "BillingCurrency": r["currency"],
        "BillingPeriodStart": datetime.combine(first, datetime.min.time(), LA),
        # The view's end is the last day of the month (FOCUS says: the next month's start).
        "BillingPeriodEnd": datetime.combine(following - timedelta(days=1), datetime.min.time(), LA),
        "ChargeCategory": {"regular": "usage", "tax": "tax", "rounding_error": "adjustment",
                           "adjustment": "adjustment"}.get((cost_type or "").lower(), "error"),
        "ChargeClass": "correction" if any(adjustment.get(k) for k in (
            "id", "description", "type", "mode")) else None,
        "ChargeDescription": sku.get("description"),
        "ChargePeriodStart": parse_time(r["usage_start_time"]),
        "ChargePeriodEnd": parse_time(r["usage_end_time"]),
        "CommitmentDiscountCategory": {CUD_TYPES[1]: "Spend", CUD_TYPES[0]: "Usage"}.get(
            (cud or {}).get("type")),
        "CommitmentDiscountId": (r.get("subscription") or {}).get("instance_id"),
        "CommitmentDiscountName": (cud or {}).get("full_name"),
        "ConsumedQuantity": _num(usage.get("amount")) if regular else None,
        "ConsumedUnit": usage.get("unit") if regular else None,
        "ContractedCost": Decimal(str(r["cost"])),
        "ContractedUnitPrice": _num(price.get("effective_price")),
        "EffectiveCost": billed,
        "ListCost": _num(r.get("cost_at_list")),
        "ListUnitPrice": _num(price.get("list_price")) if regular else None,
        "PricingCategory": ("committed" if (sku.get("description") or "").lower().startswith(
            "commitment") or cud else "standard") if regular else None,
        "PricingQuantity": _num(price.get("pricing_unit_quantity")) if regular else None,
        "PricingUnit": price.get("unit") if regular else None,
        "ProviderName": "Google Cloud",
        "PublisherName": "Google Cloud" if r.get("transaction_type") == "GOOGLE" else r.get(
            "seller_name"),
        "RegionId": loc.get("region"),
        "RegionName": REGION_NAMES.get(loc.get("region") or ""),
        "ResourceId": global_name,
        "ResourceName": res.get("name"),
        "ResourceType": resource_type,
        "ServiceCategory": TAXONOMY.get(r["service"]["description"], []),
        "ServiceName": r["service"]["description"],
        "SkuId": sku.get("id") if regular else None,
        "SkuPriceId": (f"Billing Account ID:{r['billing_account_id']}, SKU ID: {sku.get('id')}, "
                       f"Price Tier Start Amount: {tier}") if regular and tier is not None else None,
        "SubAccountId": r["billing_account_id"],
        "Tags": _tag_entries(r),
        "x_Credits": [{"Name": c.get("name"), "Amount": Decimal(str(c["amount"])),
                       "FullName": c.get("full_name"), "Id": c.get("id"), "Type": c.get("type")}
                      for c in credits],
        "x_CostType": cost_type,
        "x_CurrencyConversionRate": _num(r.get("currency_conversion_rate")),
        "x_ExportTime": parse_time(r["export_time"]),
        "x_Location": loc.get("location"),
        "x_Project": {k: project.get(k) for k in ("id", "number", "name", "ancestry_numbers",
                                                  "ancestors")} if project else None,
        "x_ServiceId": r["service"]["id"],
    }


class FakeFocusGoogle(FakeGoogle):
    """The fake, also answering the two queries the collector sends to a FOCUS view."""

    def table_resource(self, ref: str) -> dict[str, Any] | None:
        out = super().table_resource(ref)
        if out is not None and ref == FOCUS_VIEW:
            out["type"] = "VIEW"
        return out

    def run_query(self, body: dict[str, Any]) -> dict[str, Any]:
        query = body["configuration"]["query"]
        sql: str = query["query"]
        if sql.split("`")[1] != FOCUS_VIEW:
            return super().run_query(body)
        params = {p["name"]: p["parameterValue"].get("value")
                  for p in query.get("queryParameters", [])}
        with self.lock:
            self.queries.append({"sql": sql, "params": params})
        rows = self.tables[FOCUS_VIEW]["rows"]
        if "GROUP BY month" in sql:
            assert "FORMAT_TIMESTAMP('%Y%m', BillingPeriodStart, 'America/Los_Angeles')" in sql
            assert "MAX(x_ExportTime)" in sql
            since = parse_time(params["since"]) if "since" in params else None
            groups: dict[str, list[Any]] = {}
            for r in rows:
                if since is not None and r["x_ExportTime"] < since:
                    continue
                g = groups.setdefault(r["BillingPeriodStart"].astimezone(LA).strftime("%Y%m"),
                                      [0, r["x_ExportTime"]])
                g[0] += 1
                g[1] = max(g[1], r["x_ExportTime"])
            schema = [_f("month", S), _f("row_count", INT), _f("max_export_time", T)]
            return {"schema": schema, "rows": [
                {"month": m, "row_count": n, "max_export_time": t} for m, (n, t) in sorted(groups.items())]}
        assert sql.startswith("SELECT *")
        lo, hi = parse_time(params["period_lo"]), parse_time(params["period_hi"])
        return {"schema": FOCUS_VIEW_SCHEMA,
                "rows": [r for r in rows if lo <= r["BillingPeriodStart"] < hi]}


def test_google_focus_view_loads_with_the_focus_mapping(tmp_path: Path) -> None:
    export_rows = load_rows(*FILES)
    rows = [google_focus_view(r) for r in export_rows]
    wh = Warehouse(tmp_path / "wh")
    state = open_state(wh.home)
    with serve(FakeFocusGoogle()) as (google, endpoint):
        google.add_table(FOCUS_VIEW, rows, schema=FOCUS_VIEW_SCHEMA, partitioned=False)
        run = collect_gcp_table(wh, state, FOCUS_VIEW, source="focus", max_rejected_share=0.0,
                                endpoint=endpoint)
    assert run.result is not None
    assert run.months == ["202404", "202405"]
    assert run.result.rows_rejected == 0, run.result.reject_summary
    assert all(r.reconciled for r in run.result.reconciliation)
    assert run.cursor == "2024-06-02T09:00:00+00:00"
    discovery, *months = google.queries
    assert "WHERE" not in discovery["sql"]
    assert [parse_time(q["params"]["period_lo"]) for q in months] == [
        datetime(2024, 3, 31, 9, tzinfo=UTC), datetime(2024, 4, 30, 9, tzinfo=UTC)]
    stored = wh.scan("billing", where={"source": "focus"}).collect()
    assert stored.height == len(rows)

    # To the cent, and exactly, against the served values; the invoice totals of the export.
    served: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for r in rows:
        served[(r["BillingPeriodStart"].astimezone(LA).strftime("%Y-%m"), r["BillingCurrency"])] += (
            r["BilledCost"])
    assert set(served) == {("2024-04", "USD"), ("2024-05", "USD"), ("2024-05", "EUR")}
    for column in ("BilledCost", "EffectiveCost"):
        got = stored_sums(stored, column)
        assert got == served, column
        assert {k: v.quantize(CENT) for k, v in got.items()} == {
            k: v.quantize(CENT) for k, v in expected_sums(rows_of(*FILES)).items()}
    recon = {(r.period, r.currency): r for r in run.result.reconciliation}
    for key, total in served.items():
        assert recon[key].source_billed == total and recon[key].stored_billed == total

    # Google's spellings made FOCUS's; what FOCUS has no place for kept as x_ columns.
    assert set(stored["ChargeCategory"]) == {"Usage", "Tax", "Adjustment"}
    assert set(stored["PricingCategory"].drop_nulls()) == {"Standard", "Committed"}
    assert stored["ChargeClass"].drop_nulls().to_list() == ["Correction"]
    first = stored.filter(pl.col("ChargePeriodStart") == datetime(2024, 4, 1, tzinfo=UTC),
                          pl.col("x_Credits").str.contains("SustainedUsageDiscount")).to_dicts()[0]
    # The invoice month ends where the next begins (the view says the last day).
    assert (first["BillingPeriodStart"], first["BillingPeriodEnd"]) == (
        datetime(2024, 4, 1, 7, tzinfo=UTC), datetime(2024, 5, 1, 7, tzinfo=UTC))
    assert first["x_ExportTime"] == datetime(2024, 4, 2, 6, 10, 11, 123456, tzinfo=UTC)
    assert first["x_CurrencyConversionRate"] == 1.0
    credits = json.loads(first["x_Credits"])
    assert [(c["Type"], Decimal(c["Amount"])) for c in credits] == [
        ("SUSTAINED_USAGE_DISCOUNT", Decimal("-0.025289"))]
    assert json.loads(first["x_Project"])["ancestors"][1]["display_name"] == "example.com"
    # ServiceCategory: the pricing taxonomy is no FOCUS category; the service's is taken.
    assert (first["ServiceCategory"], json.loads(first["x_ServiceCategory"])[1]) == (
        "Compute", "Compute")
    assert set(stored["InvoiceIssuerName"]) == {"Google Cloud"}
    assert (first["ListCost"], first["x_ListCostSource"]) == (Decimal("0.151733"), "export")
    fee = stored.filter(pl.col("ChargeDescription").str.starts_with("Commitment v1")).to_dicts()[0]
    assert (fee["ListCost"], fee["x_ListCostSource"]) == (fee["ContractedCost"], "cost")

    # Tags: the row's labels, then tags, then the project's labels, as from the export;
    # the project's labels and the system labels also on their own, as from the export.
    assert first["Tags"] == {"app": "web", "env": "production", "team": "shop"}
    assert first["x_ProjectLabels"] == {"team": "shop", "env": "prod"}
    assert first["x_SystemLabels"]["compute.googleapis.com/cores"] == "4"
    files_wh = Warehouse(tmp_path / "files")
    collect_gcp_files(files_wh, open_state(files_wh.home), FIXTURES, source="f", max_rejected_share=0.0)
    key = ["ChargePeriodStart", "ChargeDescription", "BillingCurrency", "BilledCost"]
    from_files = files_wh.scan("billing").collect().sort(key)
    for name in ("Tags", "x_ProjectLabels", "x_SystemLabels", "ServiceCategory", "BillingPeriodEnd"):
        assert stored.sort(key)[name].to_list() == from_files[name].to_list(), name
    # Columns both paths write have one type: one billing dataset holds both sources.
    assert {n: t for n, t in stored.schema.items() if n in from_files.schema} == {
        n: t for n, t in from_files.schema.items() if n in stored.schema}

    found = [(v.column, v.rule, v.rows) for v in validate(stored.drop("source", "billing_period"))]
    assert found == []
