"""Query cost: the Snowflake split against an example computed by hand, idle policies,
prices, tenant rules, and the bridge to the bill."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from collectors.snowflake import collect_snowflake_files
from finops.errors import ConfigError
from finops.state import State, open_state
from finops.warehouse import Warehouse
from models.query_cost import (
    QUERY_COST,
    QUERY_SHARES,
    bridge_shares,
    cost_by,
    run_query_cost,
    split_by_shares,
    tenant_daily,
    top_recurring,
)
from models.query_rules import IdlePolicy, QueryCostConfig, TenantRule, load_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "query_history"
CENT = Decimal("0.01")
PRICE = Decimal("3")


def D(text: str) -> Decimal:
    return Decimal(text)


@pytest.fixture
def wh_state(tmp_path: Path) -> tuple[Warehouse, State]:
    wh = Warehouse(tmp_path / "wh")
    state = open_state(wh.home)
    yield wh, state
    state.close()


def load(wh: Warehouse, state: State, folder: str, config: QueryCostConfig) -> pl.DataFrame:
    collect_snowflake_files(wh, state, FIXTURES / folder)
    run_query_cost(wh, state, config)
    return wh.scan(QUERY_COST).collect()


def by(df: pl.DataFrame, key: str) -> dict[str, Decimal]:
    out = df.group_by(key).agg(pl.col("cost").sum())
    return dict(out.iter_rows())


# The fixture, computed by hand (credits; price $3):
# ANALYTICS_WH execution minutes per hour (exec = [END - EXECUTION_TIME, END]):
#   10h: q1 20 (10:01-10:21), q2 25 (10:35-11:00), q3 5 (10:55-11:00) = 50 -> 1.0 credit
#        q1 0.4, q2 0.5, q3 0.1
#   11h: q2 25, q3 60 = 85 -> 1.7: q2 0.5, q3 1.2
#   12h: q3 60 -> 0.8: q3 0.8
#   13h: q3 5, q4 50 (failed, untagged) = 55 -> 1.1: q3 0.1, q4 1.0; q5 (compilation
#        error) has no execution time and no compute
#   14h: no query -> 0.5 idle, split by the day's execution time on ANALYTICS_WH:
#        acme 20+130=150, globex 50, unallocated 50 -> 0.3 / 0.1 / 0.1
# LOADING_WH 10h: q6 (written at -0700) alone -> 4.0 globex; 05-05 09h: 1.0 and no query
#   that day -> stays idle.
# Cloud services 05-04: metered 0.05+0.05+0.2+0.1+1.31 = 1.71, compute 9.1 -> allowance
#   0.91 -> 0.80 billed, split by the queries' own CS credits (1.0 in all):
#   q1 .08 q2 .08 q3 .16 q4 .08 q5 .24 q6 .16
HAND = {
    "acme": D("0.4") + D("0.1") + D("1.2") + D("0.8") + D("0.1") + D("0.3")
    + D("0.08") + D("0.16") + D("0.24"),  # 3.38
    "globex": D("0.5") + D("0.5") + D("0.1") + D("4.0") + D("0.08") + D("0.16"),  # 5.34
    "unallocated": D("1.0") + D("0.1") + D("0.08"),  # 1.18
    "idle": D("1.0"),
}


def test_snowflake_split_matches_the_hand_computed_example(wh_state: tuple[Warehouse, State]) -> None:
    wh, state = wh_state
    df = load(wh, state, "snowflake", QueryCostConfig(credit_price=PRICE))
    assert {"acme": D("3.38"), "globex": D("5.34"), "unallocated": D("1.18"), "idle": D("1")} == HAND
    assert by(df, "tenant") == {k: v * PRICE for k, v in HAND.items()}
    per_query = by(df.filter(pl.col("kind") == "query"), "query_id")
    ids = {f"01b4a1f0-0000-0001-0000-00000000000{i}": i for i in range(1, 8)}
    got = {ids[k]: v for k, v in per_query.items()}
    assert got == {1: D("1.44"), 2: D("3.24"), 3: D("7.08"), 4: D("3.24"), 5: D("0.72"),
                   6: D("12.48"), 7: D("0")}
    # The multi-hour query is split into one piece per hour; only the last counts the query.
    q3 = df.filter(pl.col("query_id").str.ends_with("3")).sort("hour")
    assert q3["hour"].dt.hour().to_list() == [10, 11, 12, 13]
    assert q3["compute_credits"].round(9).to_list() == [0.1, 1.2, 0.8, 0.1]
    assert q3["queries"].to_list() == [0, 0, 0, 1]
    assert q3["execution_ms"].to_list() == [300_000, 3_600_000, 3_600_000, 300_000]
    # The failed query is charged like any other; every query is counted once.
    assert df["queries"].sum() == 7
    idle = df.filter(pl.col("kind") == "idle").sort("day", "tenant")
    assert idle.select("day", "warehouse", "tenant", "tenant_rule").rows() == [
        (dt.date(2026, 5, 4), "ANALYTICS_WH", "acme", "idle:tenant_share"),
        (dt.date(2026, 5, 4), "ANALYTICS_WH", "globex", "idle:tenant_share"),
        (dt.date(2026, 5, 4), "ANALYTICS_WH", "unallocated", "idle:tenant_share"),
        (dt.date(2026, 5, 5), "LOADING_WH", "idle", "idle:no-queries-that-day"),
    ]
    assert idle["cost"].to_list() == [D("0.9"), D("0.3"), D("0.3"), D("3")]


def test_totals_equal_metered_credits_times_price(wh_state: tuple[Warehouse, State]) -> None:
    wh, state = wh_state
    df = load(wh, state, "snowflake", QueryCostConfig(credit_price=PRICE))
    metering = pl.read_csv(FIXTURES / "snowflake" / "warehouse_metering_history.csv",
                           schema_overrides={"CREDITS_USED_COMPUTE": pl.String,
                                             "CREDITS_USED_CLOUD_SERVICES": pl.String})
    compute = cloud_billed = Decimal(0)
    for day in ("2026-05-04", "2026-05-05"):  # the 10% allowance is per day
        rows = metering.filter(pl.col("START_TIME").str.starts_with(day))
        day_compute = sum(Decimal(v) for v in rows["CREDITS_USED_COMPUTE"])
        day_cloud = sum(Decimal(v) for v in rows["CREDITS_USED_CLOUD_SERVICES"])
        compute += day_compute
        cloud_billed += max(Decimal(0), day_cloud - day_compute * Decimal("0.1"))
    assert df["cost"].sum() == (compute + cloud_billed) * PRICE == D("32.70")
    assert abs(df["credits"].sum() - float(compute + cloud_billed)) < 1e-9
    shares = wh.scan(QUERY_SHARES).collect()
    assert shares["cost"].sum() == df["cost"].sum()
    run = state.runs(stage="query_cost", limit=1)[0]
    assert run["status"] == "succeeded"
    assert state.run_totals(run["run_id"])[0].billed_cost == D("32.70")


def test_idle_policy_owner_and_idle(wh_state: tuple[Warehouse, State]) -> None:
    wh, state = wh_state
    owner = QueryCostConfig(credit_price=PRICE, idle_policy=IdlePolicy.owner,
                            warehouse_owners={"loading_wh": "Platform"})
    df = load(wh, state, "snowflake", owner)
    idle = df.filter(pl.col("kind") == "idle").sort("day").select("warehouse", "tenant", "tenant_rule",
                                                                  "cost")
    assert idle.rows() == [("ANALYTICS_WH", "idle", "idle:no-owner", D("1.5")),
                           ("LOADING_WH", "platform", "idle:owner", D("3"))]
    run_query_cost(wh, state, QueryCostConfig(credit_price=PRICE, idle_policy=IdlePolicy.idle))
    df = wh.scan(QUERY_COST).collect()
    assert by(df, "tenant")["idle"] == D("4.5")
    assert df["cost"].sum() == D("32.70")


def test_attribution_history_weights_and_idle_remainder(wh_state: tuple[Warehouse, State]) -> None:
    # 08h: 1.0 credit metered, QUERY_ATTRIBUTION_HISTORY gives a1 0.3 and a2 0.1: they get
    # exactly that and 0.6 is idle; 09h has no attribution yet (a3): execution time, 0.5.
    # Idle 0.6 split by the day's execution minutes: acme 30, globex 60 -> 0.2 / 0.4.
    # Rate sheet: $2 per credit.
    wh, state = wh_state
    df = load(wh, state, "snowflake_attribution", QueryCostConfig())
    q = df.filter(pl.col("kind") == "query").sort("query_id")
    assert q.select("query_id", "method", "cost").rows() == [
        ("a1", "query_attribution", D("0.6")), ("a2", "query_attribution", D("0.2")),
        ("a3", "execution_time", D("1.0"))]
    assert by(df, "tenant") == {"acme": D("1.0"), "globex": D("2.0")}
    assert df["currency"].unique().to_list() == ["USD"]


def test_rate_sheet_first_then_setting_else_a_clear_error(wh_state: tuple[Warehouse, State],
                                                          tmp_path: Path) -> None:
    wh, state = wh_state
    folder = tmp_path / "in"
    shutil.copytree(FIXTURES / "snowflake", folder)
    (folder / "rate_sheet_daily.csv").write_text(
        "DATE,ACCOUNT_NAME,USAGE_TYPE,CURRENCY,EFFECTIVE_RATE,SERVICE_TYPE\n"
        "2026-05-04,ACCT,compute,EUR,2.00,WAREHOUSE_METERING\n"
        "2026-05-04,ACCT,cloud services,EUR,4.00,WAREHOUSE_METERING\n")
    collect_snowflake_files(wh, state, folder)
    with pytest.raises(ConfigError, match="no Snowflake credit price for 1 day"):
        run_query_cost(wh, state, QueryCostConfig())
    run_query_cost(wh, state, QueryCostConfig(credit_price=PRICE))
    df = wh.scan(QUERY_COST).collect()
    # 05-04: 9.1 compute credits x 2 EUR + 0.8 cloud services x 4 EUR; 05-05: 1.0 x $3
    # (the setting, in USD): never added together.
    assert by(df, "currency") == {"EUR": D("9.1") * 2 + D("0.8") * 4, "USD": D("3")}
    table = cost_by(wh, "tenant")
    assert table.columns[:2] == ["tenant", "currency"]
    assert table.filter(pl.col("currency") == "USD")["tenant"].to_list() == ["idle"]


def test_tenant_rules_in_order_with_lineage(wh_state: tuple[Warehouse, State]) -> None:
    wh, state = wh_state
    rules = (
        TenantRule(id="tag", field="query_tag", key=("tenant",)),
        TenantRule(id="role-prefix", field="role", pattern=r"^(?P<tenant>[A-Z]+)_(ANALYST|ETL)$"),
        TenantRule(id="carol", field="user", values={"carol": "Initech"}),
    )
    df = load(wh, state, "snowflake", QueryCostConfig(credit_price=PRICE, rules=rules))
    rows = dict(df.filter(pl.col("queries") == 1).select("query_id", "tenant").rows())
    rules_used = dict(df.filter(pl.col("queries") == 1).select("query_id", "tenant_rule").rows())
    q = "01b4a1f0-0000-0001-0000-00000000000"
    assert rows[q + "1"] == "acme" and rules_used[q + "1"] == "tag"
    assert rows[q + "4"] == "initech" and rules_used[q + "4"] == "carol"  # untagged, role ANALYST
    assert rows[q + "7"] == "initech"
    assert df["cost"].sum() == D("32.70")


def test_config_file_section(tmp_path: Path) -> None:
    path = tmp_path / "alloc.yaml"
    path.write_text("other: 1\nquery_cost:\n  idle_policy: owner\n  warehouse_owners: {X: y}\n"
                    "  rules:\n    - {id: r1, field: labels, key: team}\n")
    cfg = load_config(path, credit_price=2.5)
    assert cfg.idle_policy == IdlePolicy.owner and cfg.credit_price == D("2.5")
    assert cfg.rules[0].key == ("team",)
    path.write_text("query_cost:\n  rules:\n    - {id: r1, field: role, key: team}\n")
    with pytest.raises(ConfigError, match="key applies to tag fields"):
        load_config(path)


def test_unit_economics_and_bridge(wh_state: tuple[Warehouse, State]) -> None:
    wh, state = wh_state
    load(wh, state, "snowflake", QueryCostConfig(credit_price=PRICE))
    table = cost_by(wh, "tenant")
    assert table.columns == ["tenant", "queries", "tb_scanned", "credits", "cost", "cost_per_query",
                             "cost_per_tb"]
    acme = table.row(by_predicate=pl.col("tenant") == "acme", named=True)
    assert acme["queries"] == 3 and acme["tb_scanned"] == 3.0
    assert acme["cost_per_query"] == D("3.38") and acme["cost_per_tb"] == D("3.38")
    assert table.row(by_predicate=pl.col("tenant") == "idle", named=True)["cost"] == D("3")
    assert cost_by(wh, "tenant", since=dt.date(2026, 5, 5))["tenant"].to_list() == ["idle"]
    users = cost_by(wh, "user")
    assert users["cost"].sum() == D("32.70") and "idle" in users["user"].to_list()
    daily = tenant_daily(wh)
    assert daily["cost"].sum() == D("32.70")
    top = top_recurring(wh, limit=3)
    assert top["query_hash"].to_list() == ["ph-daily-sales"]  # the only hash run twice
    assert top["cost"].item() == D("8.52")

    shares = bridge_shares(wh).collect()
    sums = shares.group_by("day", "service_key").agg(pl.col("share").sum())
    assert all(abs(s - 1) < 1e-12 for s in sums["share"])
    billing = pl.LazyFrame({
        "ChargePeriodStart": [dt.datetime(2026, 5, 4, tzinfo=dt.UTC), dt.datetime(2026, 5, 4, tzinfo=dt.UTC),
                              dt.datetime(2026, 5, 6, tzinfo=dt.UTC)],
        "ServiceName": ["Snowflake", "Amazon S3", "Snowflake"],
        "BilledCost": [D("100.01"), D("5"), D("7")], "EffectiveCost": [D("99.99"), D("5"), D("7")],
    }, schema_overrides={"BilledCost": pl.Decimal(38, 12), "EffectiveCost": pl.Decimal(38, 12)})
    split = split_by_shares(billing, bridge_shares(wh)).collect()
    assert split["BilledCost"].sum() == D("112.01") and split["EffectiveCost"].sum() == D("111.99")
    snow = split.filter(pl.col("x_AllocationMethod") == "usage:query_history")
    assert sorted(snow["x_Tenant"].to_list()) == ["acme", "globex", "unallocated"]
    assert snow["BilledCost"].sum() == D("100.01")
    # globex used 16.02 of the day's 29.70 (the 05-05 idle is another day).
    globex = snow.row(by_predicate=pl.col("x_Tenant") == "globex", named=True)
    assert abs(globex["BilledCost"] - D("100.01") * D("16.02") / D("29.70")) < D("1e-9")
    assert split.filter(pl.col("x_AllocationMethod").is_null()).height == 2  # S3, and no shares on 05-06


def test_databricks_list_prices_and_corrections(wh_state: tuple[Warehouse, State]) -> None:
    # r1 acme 10 DBU x 0.55; r2 globex 20 x 0.15 (jobs); r3 untagged 4 x 0.60 (price
    # changed on 05-15); r4 acme 6 x 0.55 retracted by r5 (-6) and restated by r6 as
    # 5 DBU for globex.
    from collectors.databricks import collect_databricks_files

    wh, state = wh_state
    collect_databricks_files(wh, state, FIXTURES / "databricks")
    run_query_cost(wh, state, QueryCostConfig())
    df = wh.scan(QUERY_COST).collect()
    assert by(df, "tenant") == {"acme": D("5.50"), "globex": D("3.00") + D("2.75"),
                                "unallocated": D("2.40")}
    assert by(df, "execution_status")["RETRACTION"] == D("-3.30")
    assert set(df["method"]) == {"list_price"}
    assert dict(df.select("query_id", "warehouse").rows())["r2"] == "0510-abc"  # a job cluster
    assert cost_by(wh, "tenant", source="databricks")["cost"].sum() == D("13.65")


def test_bigquery_on_demand_bytes_and_reservation_slot_share(wh_state: tuple[Warehouse, State]) -> None:
    # On-demand at $6.25 per TiB billed: j1 1 TiB (acme) 6.25; j2 0.5 TiB (globex) 3.125;
    # j3 failed 10 MiB (unallocated); j4 cache hit 0; the script parent is skipped and its
    # child (0.25 TiB, acme) costs 1.5625. Reservation (3 slots x $0.06/slot-hour = $0.18
    # an hour, 10h-12h): r1 acme 1 slot-hour in 10h -> 0.06; r2 globex 2 slot-hours over
    # 10:30-11:30 -> 0.06 + 0.06; idle 0.06 + 0.12 + 0.18 = 0.36 split by the day's
    # slot-ms: acme 1/3, globex 2/3.
    from collectors.bigquery_jobs import collect_bigquery_files

    wh, state = wh_state
    collect_bigquery_files(wh, state, FIXTURES / "bigquery")
    run_query_cost(wh, state, QueryCostConfig())
    df = wh.scan(QUERY_COST).collect()
    tib_10mib = D("6.25") * 10 * 2**20 / 2**40
    assert by(df, "tenant") == {
        "acme": D("6.25") + D("1.5625") + D("0.06") + D("0.12"),
        "globex": D("3.125") + D("0.06") + D("0.06") + D("0.24"),
        "unallocated": tib_10mib.quantize(D("1e-12")),
    }
    assert by(df, "service_key") == {"bigquery:on_demand": D("10.937559604645"),
                                     "bigquery:reservation": D("0.54")}
    assert df["queries"].sum() == 7  # the script parent is not a job of its own
    r2 = df.filter(pl.col("query_id") == "shared-bi:bquxjob_r2").sort("hour")
    assert r2["compute_credits"].round(9).to_list() == [1.0, 1.0]  # slot-hours, split by run time
