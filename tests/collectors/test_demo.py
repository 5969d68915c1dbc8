"""The demo organisation: deterministic, FOCUS-valid, reconciled, and shaped like a real
multi-cloud bill (tenants, teams, untagged share, commitments, credits, anomalies)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from collectors.demo import DEFAULT_END, DemoSummary, generate_demo
from finops.state import State, open_state
from finops.validate import validate
from finops.warehouse import Warehouse, file_sha256

CENT = Decimal("0.01")
TENANT_KEYS = ("tenant", "Tenant", "user:tenant")
TEAM_KEYS = ("team", "Team", "user:team", "owner")
SMALL = 50_000  # about the smallest demo there is: quick, yet every feature is in it


class Demo:
    def __init__(self, home: Path, summary: DemoSummary) -> None:
        self.home = home
        self.summary = summary
        self.wh = Warehouse(home)
        self.billing = self.wh.scan("billing").collect()


def _generate(home: Path, **kw: object) -> Demo:
    state = open_state(home)
    try:
        summary = generate_demo(Warehouse(home), state, **kw)  # type: ignore[arg-type]
    finally:
        state.close()
    return Demo(home, summary)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The default demo, as `make demo` generates it."""
    return _generate(tmp_path_factory.mktemp("demo"))


def _tag(keys: tuple[str, ...]) -> pl.Expr:
    return pl.coalesce([pl.col("Tags").map.get(k) for k in keys])


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("source", "billing_period", "x_SourceRow")


def _input_digests(home: Path) -> dict[str, str]:
    root = home / "_inputs" / "demo"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ---- determinism -------------------------------------------------------------------
def test_same_seed_gives_identical_data_and_another_seed_differs(tmp_path: Path) -> None:
    a = _generate(tmp_path / "a", seed=7, scale=SMALL)
    b = _generate(tmp_path / "b", seed=7, scale=SMALL)
    c = _generate(tmp_path / "c", seed=8, scale=SMALL)

    assert _ordered(a.billing).equals(_ordered(b.billing))
    assert _input_digests(a.home) == _input_digests(b.home)
    assert a.summary.billed_cost == b.summary.billed_cost
    for path, keys in a.wh.partition_files("billing"):
        assert file_sha256(path) == file_sha256(b.wh.partition_dir("billing", keys) / path.name)

    assert not _ordered(a.billing).equals(_ordered(c.billing))
    assert a.summary.effective_cost != c.summary.effective_cost
    differing = {k for k, v in _input_digests(a.home).items()
                 if _input_digests(c.home).get(k) != v}
    assert {"utilization.csv", "snowflake/query_history.csv", "truth.json"} <= differing


# ---- shape of the data -------------------------------------------------------------
def test_covers_seven_months_with_six_full_months_of_daily_rows(demo: Demo) -> None:
    s = demo.summary
    assert s.end == DEFAULT_END
    assert s.periods == ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10",
                         "2026-11"]
    assert demo.billing["billing_period"].unique().sort().to_list() == s.periods
    usage = demo.billing.filter(pl.col("ChargeCategory") == "Usage")
    days = usage["ChargePeriodStart"].dt.date().unique()
    assert days.min() == dt.date(2026, 5, 1)
    assert days.max() == DEFAULT_END
    assert days.len() == (DEFAULT_END - dt.date(2026, 5, 1)).days + 1
    # Daily rows: midnight to midnight UTC, inside their billing period.
    daily = usage.filter(pl.col("ResourceId").is_not_null())
    assert (daily["ChargePeriodEnd"] - daily["ChargePeriodStart"]).unique().to_list() == [
        dt.timedelta(days=1)]
    assert (daily["ChargePeriodStart"].dt.hour() == 0).all()
    assert (daily["ChargePeriodStart"] >= daily["BillingPeriodStart"]).all()
    assert (daily["ChargePeriodEnd"] <= daily["BillingPeriodEnd"]).all()


def test_default_size_and_sources(demo: Demo) -> None:
    rows = demo.summary.rows
    assert set(rows) == {"demo-aws", "demo-gcp", "demo-azure", "demo-snowflake"}
    assert 100_000 <= demo.summary.total_rows <= 400_000
    assert demo.billing.height == demo.summary.total_rows
    counts = dict(demo.billing.group_by("source").len().iter_rows())
    assert counts == rows
    assert set(demo.billing["ProviderName"].unique()) == {"AWS", "Google Cloud", "Microsoft",
                                                          "Snowflake"}
    assert set(demo.summary.billed_cost) == {"USD", "EUR"}


def test_every_row_is_valid_focus(demo: Demo) -> None:
    assert validate(demo.wh.scan("billing")) == []
    assert set(demo.billing["x_SourceFile"].unique()) == {"demo"}
    per_partition = demo.billing.group_by("source", "billing_period").agg(
        pl.col("x_SourceRow").n_unique().alias("distinct"), pl.len().alias("rows"))
    assert (per_partition["distinct"] == per_partition["rows"]).all()


def test_tenants_and_teams_in_tags_with_variant_keys_and_values(demo: Demo) -> None:
    b = demo.billing
    raw_tenants = b.select(_tag(TENANT_KEYS).alias("t")).drop_nulls()["t"]
    tenants = set(raw_tenants.str.strip_chars().str.to_lowercase().unique())
    assert tenants >= {"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne",
                       "wonka"}
    teams = set(b.select(_tag(TEAM_KEYS).alias("t")).drop_nulls()["t"].str.strip_chars()
                .str.to_lowercase().unique())
    assert teams == {"data-platform", "ml", "analytics", "web"}
    keys = set(b.select(pl.col("Tags").map.keys()).explode("Tags").drop_nulls()["Tags"])
    assert set(TENANT_KEYS) <= keys
    assert set(TEAM_KEYS) <= keys
    assert {"env", "cost-center"} <= keys
    # Normalisation has work to do: odd case and stray spaces.
    odd = set(raw_tenants.unique()) - tenants
    assert any(v != v.strip() for v in odd)
    assert any(v.strip() != v.strip().lower() for v in odd)
    # Each tenant belongs to exactly one team.
    pairs = b.select(_tag(TENANT_KEYS).str.strip_chars().str.to_lowercase().alias("tenant"),
                     _tag(TEAM_KEYS).str.strip_chars().str.to_lowercase().alias("team")
                     ).drop_nulls().unique()
    assert pairs.group_by("tenant").agg(pl.col("team").n_unique())["team"].max() == 1


def test_untagged_share_of_effective_cost(demo: Demo) -> None:
    b = demo.billing.with_columns(_tag(TENANT_KEYS).is_null().alias("untagged"))
    total = b["EffectiveCost"].sum()
    untagged = b.filter("untagged")["EffectiveCost"].sum()
    assert Decimal("0.10") <= untagged / total <= Decimal("0.20")
    shared = b.filter("untagged")["ServiceName"].unique().to_list()
    for service in ("AWS Data Transfer", "Amazon Virtual Private Cloud",
                    "Amazon Elastic Kubernetes Service", "Kubernetes Engine",
                    "Azure Kubernetes Service", "Amazon CloudWatch", "Cloud Monitoring",
                    "Azure Monitor", "AWS Support (Business)"):
        assert service in shared
    tagged_shared = b.filter(~pl.col("untagged")
                             & pl.col("ServiceName").is_in(["Amazon Elastic Kubernetes Service",
                                                            "AWS Data Transfer"]))
    assert tagged_shared.height == 0


def test_commitments_credits_refund_and_tax(demo: Demo) -> None:
    b = demo.billing
    assert b["BilledCost"].sum() != b["EffectiveCost"].sum()
    categories = set(b["ChargeCategory"].unique())
    assert {"Usage", "Purchase", "Credit", "Tax"} <= categories

    used = b.filter(pl.col("CommitmentDiscountStatus") == "Used")
    assert used.height > 0
    assert (used["BilledCost"] == 0).all()
    assert (used["EffectiveCost"] > 0).all()
    assert (used["PricingCategory"] == "Committed").all()
    assert set(used["CommitmentDiscountType"].unique()) == {
        "Compute Savings Plan", "Reserved Instance", "Committed Use Discount"}
    unused = b.filter(pl.col("CommitmentDiscountStatus") == "Unused")
    assert unused.height > 0
    assert (unused["EffectiveCost"] > 0).all() and (unused["BilledCost"] == 0).all()

    fees = b.filter((pl.col("ChargeCategory") == "Purchase")
                    & pl.col("CommitmentDiscountId").is_not_null())
    assert (fees["BilledCost"] > 0).all() and (fees["EffectiveCost"] == 0).all()
    assert set(fees["ChargeFrequency"].unique()) == {"Recurring", "One-Time"}
    # Over the closed months, each commitment's used plus unused is its amortised fee:
    # the no-upfront Savings Plan bills exactly what it amortises.
    sp = "Compute Savings Plan"
    closed = b.filter(pl.col("billing_period") < "2026-11")
    sp_fees = closed.filter((pl.col("ChargeCategory") == "Purchase")
                            & (pl.col("CommitmentDiscountType") == sp))["BilledCost"].sum()
    sp_amortised = closed.filter((pl.col("CommitmentDiscountType") == sp)
                                 & pl.col("CommitmentDiscountStatus").is_not_null()
                                 )["EffectiveCost"].sum()
    assert sp_fees == sp_amortised

    credits = b.filter(pl.col("ChargeCategory") == "Credit")
    assert (credits["BilledCost"] < 0).all()
    refund = b.filter(pl.col("ChargeClass") == "Correction")
    assert refund.height >= 1
    assert (refund["BilledCost"] < 0).all()
    assert (refund["ChargePeriodStart"] < refund["BillingPeriodStart"]).all()
    tax = b.filter(pl.col("ChargeCategory") == "Tax")
    assert (tax["BilledCost"] > 0).all() and tax["Tags"].is_null().all()


def test_weekly_seasonality_and_growth(demo: Demo) -> None:
    athena = demo.billing.filter(pl.col("ServiceName") == "Amazon Athena",
                                 pl.col("ChargeCategory") == "Usage").group_by(
        pl.col("ChargePeriodStart").dt.weekday().alias("weekday")).agg(
        pl.col("EffectiveCost").sum())
    by_day = dict(athena.iter_rows())
    assert by_day[6] + by_day[7] < Decimal("0.5") * (by_day[2] + by_day[3])  # weekend trough
    monthly = demo.billing.group_by("billing_period").agg(pl.col("EffectiveCost").sum()).sort(
        "billing_period")["EffectiveCost"].to_list()
    assert monthly[5] > monthly[0] * Decimal("1.08")  # a few percent a month


# ---- reconciliation ----------------------------------------------------------------
def test_state_totals_equal_the_warehouse_to_the_cent(demo: Demo) -> None:
    state = State(demo.home / "state.db")
    try:
        for source, run_id in demo.summary.run_ids.items():
            run = state.run(run_id)
            assert run is not None and run["status"] == "succeeded"
            assert run["rows_out"] == demo.summary.rows[source]
            totals = state.run_totals(run_id)
            stored = demo.billing.filter(pl.col("source") == source).group_by(
                "billing_period", "BillingCurrency").agg(
                pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum(), pl.len())
            expected = {(p, c): (b, e, n) for p, c, b, e, n in stored.iter_rows()}
            assert {(t.period, t.currency) for t in totals} == set(expected)
            for t in totals:
                billed, effective, rows = expected[(t.period, t.currency)]
                assert t.billed_cost.quantize(CENT) == billed.quantize(CENT)
                assert t.effective_cost.quantize(CENT) == effective.quantize(CENT)
                assert t.rows == rows
                part = demo.wh.partition_dir("billing", {"source": source,
                                                         "billing_period": t.period})
                assert t.checksum == file_sha256(part / "part-0.parquet")
    finally:
        state.close()
    summed = demo.billing.group_by("BillingCurrency").agg(pl.col("BilledCost").sum())
    assert {c: v.quantize(CENT) for c, v in summed.iter_rows()} == {
        c: v.quantize(CENT) for c, v in demo.summary.billed_cost.items()}


def test_snowflake_metered_credits_times_price_equal_billing_per_day(demo: Demo) -> None:
    metering = pl.read_csv(demo.summary.metering_path, infer_schema=False)
    assert metering.columns == ["START_TIME", "END_TIME", "WAREHOUSE_ID", "WAREHOUSE_NAME",
                                "CREDITS_USED", "CREDITS_USED_COMPUTE",
                                "CREDITS_USED_CLOUD_SERVICES"]
    credits = metering.select(
        pl.col("START_TIME").str.slice(0, 10).alias("day"),
        pl.col("CREDITS_USED").cast(pl.Decimal(38, 9)),
        pl.col("CREDITS_USED_COMPUTE").cast(pl.Decimal(38, 9)).alias("compute"),
        pl.col("CREDITS_USED_CLOUD_SERVICES").cast(pl.Decimal(38, 9)).alias("cloud"),
    )
    assert (credits["compute"] + credits["cloud"] == credits["CREDITS_USED"]).all()
    metered = dict(credits.group_by("day").agg(pl.col("CREDITS_USED").sum()).iter_rows())
    billed = dict(demo.billing.filter(pl.col("ProviderName") == "Snowflake",
                                      pl.col("ConsumedUnit") == "Credits")
                  .group_by(pl.col("ChargePeriodStart").dt.strftime("%Y-%m-%d"))
                  .agg(pl.col("BilledCost").sum()).iter_rows())
    assert len(metered) > 150
    assert set(metered) == set(billed)
    price = demo.summary.snowflake_credit_price
    for day, used in metered.items():
        assert (used * price).quantize(CENT) == billed[day].quantize(CENT), day


def test_snowflake_query_history(demo: Demo) -> None:
    queries = pl.read_csv(demo.summary.query_history_path, infer_schema=False)
    for column in ("QUERY_ID", "QUERY_TEXT", "QUERY_HASH", "QUERY_PARAMETERIZED_HASH",
                   "DATABASE_NAME", "SCHEMA_NAME", "QUERY_TYPE", "USER_NAME", "ROLE_NAME",
                   "WAREHOUSE_NAME", "WAREHOUSE_SIZE", "QUERY_TAG", "EXECUTION_STATUS",
                   "START_TIME", "END_TIME", "TOTAL_ELAPSED_TIME", "EXECUTION_TIME",
                   "COMPILATION_TIME", "QUEUED_OVERLOAD_TIME", "BYTES_SCANNED",
                   "CREDITS_USED_CLOUD_SERVICES"):
        assert column in queries.columns
    assert 10_000 <= queries.height <= 100_000
    assert queries["QUERY_ID"].n_unique() == queries.height
    tags = queries["QUERY_TAG"].fill_null("")
    untagged = (tags == "").mean()
    assert untagged is not None and 0.05 < untagged < 0.3
    tenants = {json.loads(t)["tenant"].lower() for t in tags.unique() if t}
    assert len(tenants) == 8
    # Idle warehouse time: hours metered with no query running in them.
    metering = pl.read_csv(demo.summary.metering_path, infer_schema=False)
    busy = queries.select("WAREHOUSE_NAME", pl.col("START_TIME").str.slice(0, 13).alias("h"))
    metered = metering.select("WAREHOUSE_NAME", pl.col("START_TIME").str.slice(0, 13).alias("h"))
    assert metered.join(busy.unique(), on=["WAREHOUSE_NAME", "h"], how="anti").height > 20


# ---- right-sizing inputs -----------------------------------------------------------
def test_utilization_and_inventory_files(demo: Demo) -> None:
    s = demo.summary
    with s.utilization_path.open(newline="") as fh:
        assert next(csv.reader(fh)) == ["timestamp", "resource_id", "metric", "value"]
    with s.inventory_path.open(newline="") as fh:
        assert next(csv.reader(fh))[:6] == ["resource_id", "provider", "region",
                                             "resource_type", "instance_type", "hourly_cost"]
    util = pl.read_csv(s.utilization_path, try_parse_dates=True)
    assert set(util["metric"].unique()) == {"cpu_percent", "memory_percent", "network_bytes",
                                            "disk_bytes"}
    hours = util["timestamp"].unique()
    assert hours.len() >= 30 * 24
    assert (hours.dt.minute() == 0).all()
    cpu = util.filter(pl.col("metric") == "cpu_percent").group_by("resource_id").agg(
        pl.col("value").quantile(0.95).alias("p95"))
    assert (cpu["p95"] < 10).sum() >= 5  # idle or over-provisioned
    assert (cpu["p95"] > 40).sum() >= 5  # well used
    billed_ids = set(demo.billing["ResourceId"].drop_nulls().unique())
    assert set(cpu["resource_id"]) <= billed_ids

    inventory = pl.read_csv(s.inventory_path, schema_overrides={"account_id": pl.String})
    assert inventory["resource_id"].is_unique().all()
    assert set(inventory["resource_id"]) <= billed_ids
    assert {"ec2_instance", "rds_instance", "gce_instance", "azure_vm", "ebs_volume"} <= set(
        inventory["resource_type"])
    assert (inventory["hourly_cost"] > 0).all()
    unattached = inventory.filter((pl.col("resource_type") == "ebs_volume")
                                  & (pl.col("state") == "available"))
    assert unattached.height >= 3
    # The inventory's hourly price is the billing rows' on-demand price.
    ec2 = inventory.filter(pl.col("resource_type") == "ec2_instance").row(0, named=True)
    billed = demo.billing.filter(pl.col("ResourceId") == ec2["resource_id"])
    assert float(billed["ListUnitPrice"][0]) == pytest.approx(ec2["hourly_cost"])


def test_anomaly_ground_truth(demo: Demo) -> None:
    truth = json.loads(demo.summary.truth_path.read_text())["anomalies"]
    assert {a["kind"] for a in truth} >= {"spike", "level_shift", "runaway"}
    assert len(truth) == len(demo.summary.anomalies) >= 3
    b = demo.billing.with_columns(
        _tag(TENANT_KEYS).str.strip_chars().str.to_lowercase().alias("tenant"),
        pl.col("ChargePeriodStart").dt.date().alias("day"))
    for a in truth:
        start, end = dt.date.fromisoformat(a["start"]), dt.date.fromisoformat(a["end"])
        assert demo.summary.start < start <= end <= demo.summary.end
        assert all(Decimal(v) > 0 for v in a["extra_effective_cost"].values())
        assert {"dimension", "value", "start", "end", "kind"} <= set(a)
        if a["kind"] != "spike":
            continue
        # A spike stands well above the week before it, in its dimension and service.
        scope = b.filter(pl.col(a["dimension"] if a["dimension"] == "tenant" else
                                "ServiceName") == a["value"],
                         pl.col("ServiceName") == a["service"])
        daily = scope.group_by("day").agg(pl.col("EffectiveCost").sum())
        during = daily.filter(pl.col("day").is_between(start, end))["EffectiveCost"].sum()
        before = daily.filter(pl.col("day").is_between(start - dt.timedelta(days=7),
                                                       start - dt.timedelta(days=1))
                              )["EffectiveCost"].sum()
        days = (end - start).days + 1
        assert during / days > Decimal("1.5") * before / 7
    runaway = next(a for a in truth if a["kind"] == "runaway")
    rows = demo.billing.filter(pl.col("ResourceId").is_in(runaway["resource_ids"]))
    assert rows["ChargePeriodStart"].dt.date().min().isoformat() == runaway["start"]
    assert rows["ChargePeriodStart"].dt.date().max().isoformat() == runaway["end"]


# ---- scale -------------------------------------------------------------------------
def test_scale_gives_about_that_many_rows(tmp_path: Path) -> None:
    result = _generate(tmp_path, scale=200_000)
    assert 180_000 <= result.summary.total_rows <= 220_000
    assert result.billing.height == result.summary.total_rows
    assert result.summary.notes == []


def test_rerun_with_fewer_months_leaves_no_stale_partitions(tmp_path: Path) -> None:
    first = _generate(tmp_path, scale=SMALL)
    assert len(first.summary.periods) == 7
    second = _generate(tmp_path, scale=SMALL, months=2)
    assert second.summary.periods == ["2026-10", "2026-11"]
    assert sorted({k["billing_period"] for k in second.wh.partitions("billing")}) == [
        "2026-10", "2026-11"]
    assert validate(second.wh.scan("billing")) == []
