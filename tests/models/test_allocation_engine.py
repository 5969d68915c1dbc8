"""The allocation engine: tags, rules, pools, commitments, credits, lineage, conservation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from finops.errors import ConfigError
from finops.state import open_state
from finops.warehouse import Warehouse
from models.allocation import AllocationConfig, allocate, engine, load_config
from tests.core.cli import finops
from tests.models.billing_rows import line, write_billing

CONFIG = """\
version: 1
teams:
  - {id: data, cost_center: CC1, owners: [data-lead@example.com]}
  - {id: web, cost_center: CC2}
tenants:
  - {id: acme, team: data, owners: [cfo@acme.example]}
  - {id: globex, team: web}
  - {id: initech, team: data}
tags:
  values:
    tenant: {"acme corp": acme}
  accounts:
    "999": {tenant: initech}
rules:
  - id: vt-logs
    match: {service: Amazon S3, resource: "bucket-logs-*"}
    set: {tenant: globex}
pools:
  - id: support
    match: {service: "AWS Support*"}
    method: even
  - id: network
    match: {service: [Amazon VPC, "*NAT*"]}
    method: proportional
  - id: observability
    match: {service: Datadog}
    method: fixed
    weights: {acme: 0.5, globex: 0.25, initech: 0.25}
  - id: snowflake
    match: {service: Snowflake}
    method: metric
    metric: METRIC
"""

D = "2026-03-01"
ROWS = [
    line(D, "60.00", tags={"tenant": "Acme Corp "}),                      # 1 tag alias → acme
    line(D, "30.00", tags={"Tenant": "globex", "team": "Web"}),          # 2
    line(D, "10.00", account="999", service="Amazon RDS"),              # 3 account tags → initech
    line(D, "5.00", service="Amazon S3", resource="bucket-logs-eu"),    # 4 rule → globex
    line(D, "9.00", service="AWS Support (Business)", resource=None),   # 5 even → 3 each
    line(D, "10.00", service="Amazon VPC", resource="nat-1"),           # 6 proportional
    line(D, "8.00", service="Datadog", provider="Datadog"),              # 7 fixed
    line(D, "0", effective="6.00", status="Unused", service="Savings Plans", resource=None),  # 8
    line(D, "0", effective="4.00", tags={"tenant": "acme"}, pricing="Committed", status="Used"),  # 9
    line(D, "-3.00", category="Credit", resource=None),                  # 10 follows charges
    line(D, "4.00", service="Snowflake", provider="Snowflake"),          # 11 metric
    line(D, "2.50", service="Mystery", resource="x-1"),                  # 12 unallocated
    line(D, "1.88", category="Tax", resource=None),                       # 13 follows charges
]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    metric = tmp_path / "queries.csv"
    metric.write_text("day,tenant,value\n2026-03-01,acme,3\n2026-03-01,globex,1\n2026-02-28,initech,9\n")
    (tmp_path / "allocation.yaml").write_text(CONFIG.replace("METRIC", str(metric)))
    home = tmp_path / "wh"
    write_billing(Warehouse(home), ROWS)
    return home


def allocated(home: Path) -> pl.DataFrame:
    return Warehouse(home).scan("allocated").collect()


def by_tenant(df: pl.DataFrame, cost: str = "EffectiveCost") -> dict[str, Decimal]:
    out = df.group_by("x_Tenant").agg(pl.col(cost).sum())
    return {t: c.quantize(Decimal("0.01")) for t, c in out.iter_rows()}


def test_every_step_places_the_right_dollars(home: Path, tmp_path: Path) -> None:
    allocate(Warehouse(home), open_state(home), config_path=tmp_path / "allocation.yaml")
    df = allocated(home)
    # By hand. Direct cost that day: acme 60 + 4 = 64, globex 30 + 5 = 35, initech 10.
    direct = {"acme": Decimal(64), "globex": Decimal(35), "initech": Decimal(10)}
    network = {t: Decimal(10) * c / sum(direct.values()) for t, c in direct.items()}
    # Credits follow charges on account 111 / Amazon EC2: acme 60 + 4, globex 30.
    credit = {"acme": Decimal(-3) * 64 / 94, "globex": Decimal(-3) * 30 / 94, "initech": Decimal(0)}
    # Tax follows the taxed charges the same way.
    tax = {"acme": Decimal("1.88") * 64 / 94, "globex": Decimal("1.88") * 30 / 94}
    expected = {
        "acme": 60 + 4 + Decimal(3) + network["acme"] + 4 + 6 + credit["acme"] + 3 + tax["acme"],
        "globex": 30 + 5 + Decimal(3) + network["globex"] + 2 + credit["globex"] + 1 + tax["globex"],
        "initech": 10 + Decimal(3) + network["initech"] + 2,
        "unallocated": Decimal("2.50"),
    }
    assert by_tenant(df) == {t: v.quantize(Decimal("0.01")) for t, v in expected.items()}
    # Exact conservation, not just to the cent.
    assert df["EffectiveCost"].sum() == sum(Decimal(r["EffectiveCost"]) for r in ROWS)
    assert df["BilledCost"].sum() == sum(Decimal(r["BilledCost"]) for r in ROWS)


def test_lineage_method_rule_team_cost_center(home: Path, tmp_path: Path) -> None:
    allocate(Warehouse(home), open_state(home), config_path=tmp_path / "allocation.yaml")
    df = allocated(home)
    rows = {r: g for (r,), g in df.group_by("x_SourceRow")}
    one = rows[1].row(0, named=True)
    assert (one["x_Tenant"], one["x_AllocationMethod"], one["x_AllocationRule"]) == (
        "acme", "tag", "tag:tenant")
    assert (one["x_Team"], one["x_CostCenter"]) == ("data", "CC1")  # from the hierarchy
    two = rows[2].row(0, named=True)
    assert (two["x_AllocationRule"], two["x_Team"], two["x_CostCenter"]) == ("tag:Tenant", "web", "CC2")
    assert rows[3]["x_AllocationRule"].to_list() == ["tag:account"]
    assert rows[4].select("x_Tenant", "x_AllocationMethod", "x_AllocationRule").row(0) == (
        "globex", "rule", "vt-logs")
    support = rows[5].sort("x_Tenant")
    assert support["x_Tenant"].to_list() == ["acme", "globex", "initech"]
    assert set(support["x_AllocationMethod"]) == {"shared"}
    assert set(support["x_AllocationRule"]) == {"support"}
    assert [c.quantize(Decimal("0.01")) for c in support["EffectiveCost"]] == [Decimal("3.00")] * 3
    assert sum(support["EffectiveCost"]) == Decimal(9)
    assert rows[8]["x_AllocationRule"].to_list() == ["builtin:unused-commitment"]
    assert rows[8]["x_Tenant"].to_list() == ["acme"]
    assert set(rows[10]["x_AllocationRule"]) == {"builtin:credits"}
    assert set(rows[13]["x_AllocationRule"]) == {"builtin:taxes"}
    assert sorted(rows[13]["x_Tenant"]) == ["acme", "globex"]
    snow = rows[11].sort("x_Tenant")
    assert snow.select("x_Tenant", "x_AllocationMethod").rows() == [("acme", "usage"), ("globex", "usage")]
    assert [c.quantize(Decimal("0.01")) for c in snow["EffectiveCost"]] == [
        Decimal("3.00"), Decimal("1.00")]
    assert rows[12].select("x_Tenant", "x_AllocationMethod").row(0) == ("unallocated", "unallocated")
    # Each split row's parts add up to the row, exactly.
    parts = df.group_by("x_SourceRow").agg(pl.col("EffectiveCost").sum(),
                                           pl.col("x_AllocationShare").sum())
    for source_row, cost, share in parts.iter_rows():
        assert cost == Decimal(ROWS[source_row - 1]["EffectiveCost"])
        assert share == pytest.approx(1.0)


def test_without_config_tags_and_builtin_policies_only(home: Path) -> None:
    (home.parent / "allocation.yaml").unlink()
    allocate(Warehouse(home), open_state(home))
    df = allocated(home)
    # "Acme Corp " is not acme without the value alias; account tags are not known.
    assert set(df["x_Tenant"]) == {"acme corp", "globex", "acme", "unallocated"}
    # The credit still follows the charges it corrects (three tenants on 111 / EC2), and
    # the unused commitment goes to the one tenant using it, and the tax follows the
    # taxed charges like the credit: 13 rows become 17.
    assert df.height == 17
    credit = df.filter(pl.col("x_SourceRow") == 10)
    assert sorted(credit["x_Tenant"]) == ["acme", "acme corp", "globex"]
    assert credit["EffectiveCost"].sum() == Decimal(-3)
    assert df.filter(pl.col("x_SourceRow") == 5)["x_Tenant"].to_list() == ["unallocated"]


def test_rows_sharing_a_decision_hash_are_decided_row_by_row(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Owners are decided once per distinct input, keyed by a hash; should two inputs
    share a hash, every row is decided on its own instead, with the same result."""
    config = tmp_path / "allocation.yaml"
    allocate(Warehouse(home), open_state(home), config_path=config)
    order = ["x_BillingRow", "x_Tenant"]
    by_decision = allocated(home).sort(order)
    calls: list[pl.DataFrame] = []
    real = engine.with_owners

    def spy(billing: pl.LazyFrame, cfg: AllocationConfig) -> pl.LazyFrame:
        calls.append(billing.collect())
        return real(billing, cfg)

    monkeypatch.setattr(engine, "decision_key", lambda columns: pl.lit(7, pl.UInt64).alias(engine.KEY))
    monkeypatch.setattr(engine, "with_owners", spy)
    allocate(Warehouse(home), open_state(home), config_path=config)
    # The distinct inputs were never decided on; the 13 rows were, each with its cost.
    assert [c.height for c in calls] == [len(ROWS)] and "EffectiveCost" in calls[0].columns
    assert allocated(home).sort(order).equals(by_decision)


def test_pool_without_basis_stays_unallocated_and_visible(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    write_billing(Warehouse(home), [line("2026-03-02", "7.00", service="Amazon VPC")])
    cfg = tmp_path / "a.yaml"
    cfg.write_text("pools:\n  - {id: net, match: {service: Amazon VPC}, method: proportional}\n")
    allocate(Warehouse(home), open_state(home), config_path=cfg)
    row = allocated(home).row(0, named=True)
    assert (row["x_Tenant"], row["x_AllocationRule"], row["EffectiveCost"]) == (
        "unallocated", "net:no-basis", Decimal(7))


def test_config_errors_name_file_line_and_near_miss(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("version: 1\nrules:\n  - id: r1\n    match:\n      servce: Amazon S3\n"
                   "    set: {tenant: acme}\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert f"{bad}, line 5" in text
    assert "rules[0].match.servce" in text
    assert "Did you mean 'service'" in text
    dup = tmp_path / "dup.yaml"
    dup.write_text("pools:\n  - {id: p, match: {service: X}, method: fixed, weights: {a: 0.5}}\n")
    with pytest.raises(ConfigError, match="must sum to 1"):
        load_config(dup)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("tenants: [{id: acme}]\nrules:\n"
                       "  - {id: r, match: {service: X}, set: {tenant: acm}}\n")
    with pytest.raises(ConfigError, match="Did you mean 'acme'"):
        load_config(unknown)
    reserved = tmp_path / "reserved.yaml"
    reserved.write_text("tenants: [{id: acme}, {id: unallocated}]\n")
    with pytest.raises(ConfigError, match="'unallocated' is reserved"):
        load_config(reserved)


def test_cli_allocate_explain_and_bad_config(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "allocation.yaml"
    proc = finops("allocate", "--home", home, "--config", cfg, "--format", "json", check=True)
    assert "Coverage" not in proc.stdout
    proc = finops("explain", "--resource", "nat-1", "--home", home, "--format", "json", check=True)
    import json

    rows = json.loads(proc.stdout)
    assert {r["tenant"] for r in rows} == {"acme", "globex", "initech"}
    assert {r["rule"] for r in rows} == {"network"}
    assert sum(Decimal(r["effective_cost"]) for r in rows) == Decimal("10.00")
    proc = finops("explain", "--rule", "suport", "--home", home)
    assert proc.returncode == 2
    assert "Did you mean 'support'" in proc.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("pools:\n  - id: x\n    method: fixd\n    match: {service: A}\n")
    proc = finops("allocate", "--home", home, "--config", broken)
    assert proc.returncode == 2
    assert "line 3" in proc.stderr and "Traceback" not in proc.stderr
