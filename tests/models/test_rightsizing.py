"""Right-sizing compute and idle detection: the need, the 30-hour floor, burstable credits,
idle rules, and savings at the prices in the bill (to the cent)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from collectors.utilization import conform_inventory, store_inventory, store_utilization
from finops.state import open_state
from finops.warehouse import Warehouse
from models.rightsizing.catalog import Catalog, InstanceType, snapshot
from models.rightsizing.compute import Paid, credits_hold, fits, need_of, rightsize
from models.rightsizing.idle import idle_instance
from models.rightsizing.needs import Usage, usage_by_resource
from models.rightsizing.prices import BillPrices
from models.rightsizing.run import build_recommendations, compute_recommendations
from models.rightsizing.settings import RightsizingSettings
from tests.models.billing_rows import write_billing

T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
DEFAULTS = RightsizingSettings()


def samples(rid: str, cpu: Sequence[float], *, mem: Sequence[float] | float | None = None,
            net_per_hour: float | None = None, start: dt.datetime = T0) -> pl.DataFrame:
    """Hourly samples of one resource."""
    rows: list[tuple[dt.datetime, str, str, float]] = []
    for h, c in enumerate(cpu):
        ts = start + dt.timedelta(hours=h)
        rows.append((ts, rid, "cpu_percent", float(c)))
        if mem is not None:
            rows.append((ts, rid, "memory_percent", float(mem if isinstance(mem, (int, float)) else mem[h])))
        if net_per_hour is not None:
            rows.append((ts, rid, "network_bytes", float(net_per_hour)))
    return pl.DataFrame(rows, schema={"timestamp": pl.Datetime("us", "UTC"), "resource_id": pl.String,
                                      "metric": pl.String, "value": pl.Float64}, orient="row")


def usage_of(df: pl.DataFrame, percentile: float = 99.0, confidence: float = 0.95) -> Usage:
    return next(iter(usage_by_resource(df, percentile=percentile, confidence=confidence).values()))


def upper_bound(values: Sequence[float], percentile: float, confidence: float) -> float:
    """The need, computed independently: the sample percentile, or the order statistic that
    bounds it from above with ``confidence`` (scipy's binomial quantile)."""
    from scipy.stats import binom

    ordered = sorted(values)
    n, q = len(ordered), percentile / 100
    if confidence == 0:
        return float(np.percentile(ordered, percentile, method="higher"))
    k = int(binom.ppf(confidence, n, q)) + 1  # P(Binomial(n, q) ≤ k − 1) ≥ confidence
    return ordered[min(n, k) - 1]


@pytest.mark.parametrize(("n", "confidence", "rank"), [
    (336, 0.95, 336), (4032, 0.95, 4003), (100, 0.95, 100), (4032, 0.0, 3992), (10, 0.0, 10)])
def test_upper_bound_rank(n: int, confidence: float, rank: int) -> None:
    from models.rightsizing.needs import bound_rank

    assert bound_rank(n, 0.99, confidence) == rank


def inventory(*rows: dict[str, Any]) -> pl.DataFrame:
    base = {"provider": "aws", "region": "us-east-1", "resource_type": "ec2_instance", "state": "running"}
    return conform_inventory(pl.DataFrame([{**base, **r} for r in rows], infer_schema_length=None))


def window(hours: int, days: int = 14) -> tuple[dt.datetime, dt.datetime]:
    """(window start, as_of) for ``hours`` of hourly data starting at T0."""
    end = T0 + dt.timedelta(hours=hours)
    return end - dt.timedelta(days=days), end


def recommend(util: pl.DataFrame, inv: pl.DataFrame, hours: int,
              s: RightsizingSettings = DEFAULTS, catalog: Catalog | None = None) -> list[Any]:
    start, end = window(hours, s.lookback_days)
    return compute_recommendations(inv, util, BillPrices(pl.DataFrame()), catalog or snapshot(), s,
                                   as_of=end, window_start=start)


# ---- the 30-hour floor --------------------------------------------------------------
@pytest.mark.parametrize(("hours", "expected"), [(29, 0), (30, 1)])
def test_fewer_than_30_hours_gives_nothing(hours: int, expected: int) -> None:
    util = samples("i-1", [5.0] * hours, mem=20.0, net_per_hour=1e8)
    idle = samples("i-2", [0.1] * hours, mem=5.0, net_per_hour=10.0)
    inv = inventory({"resource_id": "i-1", "instance_type": "m5.2xlarge", "hourly_cost": 0.384},
                    {"resource_id": "i-2", "instance_type": "m5.2xlarge", "hourly_cost": 0.384})
    s = RightsizingSettings(lookback_days=2, idle_min_span=0.5)
    recs = recommend(pl.concat([util, idle]), inv, hours, s)
    assert len([r for r in recs if r.resource_id == "i-1"]) == expected
    assert len([r for r in recs if r.resource_id == "i-2"]) == expected
    if expected:
        assert {r.kind for r in recs} == {"rightsize_compute", "idle_instance"}


# ---- never below the need (property) ------------------------------------------------
@st.composite
def catalogs(draw: st.DrawFn) -> tuple[Catalog, InstanceType]:
    n = draw(st.integers(2, 9))
    cat = Catalog()
    types = []
    for i in range(n):
        vcpu = float(draw(st.sampled_from([1, 2, 4, 8, 16, 32, 48])))
        mem = float(draw(st.sampled_from([0.5, 1, 2, 4, 8, 16, 32, 64, 128])))
        baseline = draw(st.one_of(st.none(), st.sampled_from([5.0, 10.0, 20.0, 30.0, 40.0])))
        family = draw(st.sampled_from(["fa", "fb"]))
        t = InstanceType("aws", "ec2", f"{family}.t{i}", family, "general", 5, "x86_64", vcpu, mem, 0,
                         baseline)
        price = Decimal(draw(st.integers(1, 5000))) / 1000
        cat.types[("aws", t.name)] = t
        cat.prices[("aws", "us-east-1", t.name)] = price
        types.append(t)
    return cat, draw(st.sampled_from(types))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picked=catalogs(),
    cpu=st.lists(st.floats(0, 100, allow_nan=False), min_size=30, max_size=120),
    mem_level=st.one_of(st.none(), st.floats(0, 100, allow_nan=False)),
    headroom=st.sampled_from([0.0, 0.1, 0.2, 0.5]),
    percentile=st.sampled_from([90.0, 95.0, 99.0]),
    confidence=st.sampled_from([0.0, 0.9, 0.95]),
    cross_family=st.booleans(),
)
def test_rightsizing_never_below_the_need(picked: tuple[Catalog, InstanceType], cpu: list[float],
                                          mem_level: float | None, headroom: float, percentile: float,
                                          confidence: float, cross_family: bool) -> None:
    cat, current = picked
    s = RightsizingSettings(headroom=headroom, cpu_percentile=percentile, cross_family=cross_family,
                            percentile_confidence=confidence, lookback_days=2,
                            min_monthly_savings=Decimal(0), include_upsize=True)
    mem = (None if mem_level is None
           else [min(100.0, mem_level * (0.5 + (h % 7) / 12)) for h in range(len(cpu))])
    usage = usage_of(samples("i-x", cpu, mem=mem), percentile, confidence)
    start, end = window(len(cpu), 2)
    paid = Paid(cat.prices[("aws", "us-east-1", current.name)], "bill")
    rec = rightsize(usage, provider="aws", region="us-east-1", current=current, paid=paid, catalog=cat,
                    settings=s, as_of=end, window_start=start)
    # The need, computed here independently of the module.
    need_vcpu = upper_bound(cpu, percentile, confidence) / 100 * current.vcpu * (1 + headroom)
    need_mem = current.memory_gib if mem is None else max(mem) / 100 * current.memory_gib * (1 + headroom)
    hourly = [c / 100 * current.vcpu * (1 + headroom) for c in cpu]
    need = need_of(usage, current, headroom)
    price = {t.name: cat.prices[("aws", "us-east-1", t.name)] for t in cat.types.values()}
    allowed = [t for t in cat.types.values() if cross_family or t.family == current.family]
    if rec is None:
        # Nothing cheaper than the current type fits.
        event("no recommendation")
        assert [t for t in allowed if fits(t, need) and price[t.name] < price[current.name]] == []
        return
    event(rec.kind)
    chosen = cat.types[("aws", rec.recommended)]
    assert chosen.vcpu >= need_vcpu - 1e-9
    assert chosen.memory_gib >= need_mem - 1e-9
    if chosen.burstable:  # replayed twice: the second pass starts where the first ended
        balance, cap = 0.0, chosen.baseline_vcpu * 60 * 24
        for rnd in range(2):
            balance = min(cap, max(0.0, balance))
            for used in hourly:
                balance = min(cap, balance + (chosen.baseline_vcpu - used) * 60)
                assert rnd == 0 or balance >= -1e-6
    assert chosen.architecture == current.architecture
    if not cross_family:
        assert chosen.family == current.family
    # And it is the cheapest type that fits.
    assert [t for t in allowed if fits(t, need) and price[t.name] < price[chosen.name]] == []


# ---- burstable types by their credit baseline ----------------------------------------
def test_burstable_types_are_judged_by_their_credit_baseline() -> None:
    s = RightsizingSettings(cross_family=True)
    day = [5.0] * 23 + [60.0]  # an hourly burst a day, after 23 quiet hours
    bursty = samples("i-burst", day * 14, mem=10.0, net_per_hour=1e8)
    steady = samples("i-steady", [30.0] * 336, mem=10.0, net_per_hour=1e8)
    inv = inventory({"resource_id": "i-burst", "instance_type": "m5.large", "hourly_cost": 0.096},
                    {"resource_id": "i-steady", "instance_type": "m5.large", "hourly_cost": 0.096})
    recs = {r.resource_id: r for r in recommend(pl.concat([bursty, steady]), inv, 336, s)}
    # Bursts to 1.44 vCPU fit 2 burstable vCPUs and the quiet hours earn the credits back.
    burst = snapshot().types[("aws", recs["i-burst"].recommended)]
    assert burst.burstable
    assert recs["i-burst"].recommended == "t3a.micro"
    # 0.72 vCPU all day long: more than a t3.micro's 0.2 vCPU baseline, though under its 2 vCPUs.
    micro = snapshot().types[("aws", "t3.micro")]
    steady_need = need_of(usage_of(steady), snapshot().types[("aws", "m5.large")], 0.2)
    assert micro.vcpu >= steady_need.vcpu
    assert not fits(micro, steady_need)
    assert not credits_hold(steady_need.hourly_vcpu, micro.baseline_vcpu)
    chosen = snapshot().types[("aws", recs["i-steady"].recommended)]
    assert not chosen.burstable or chosen.baseline_vcpu >= steady_need.vcpu


def test_gpu_instances_and_unknown_types_are_never_resized() -> None:
    util = pl.concat([samples("i-gpu", [1.0] * 336, mem=5.0, net_per_hour=1e9),
                      samples("i-odd", [1.0] * 336, mem=5.0, net_per_hour=1e9)])
    inv = inventory({"resource_id": "i-gpu", "instance_type": "p3.8xlarge", "hourly_cost": 12.24},
                    {"resource_id": "i-odd", "instance_type": "x9.mega", "hourly_cost": 1.0})
    assert recommend(util, inv, 336) == []


# ---- idle ------------------------------------------------------------------------------
def test_idle_detection() -> None:
    hours = 336
    util = pl.concat([
        samples("i-idle", [0.5] * hours, mem=8.0, net_per_hour=100_000.0),  # 2.4 MB a day
        samples("i-chatty", [0.5] * hours, mem=8.0, net_per_hour=10_000_000.0),  # 240 MB a day
        samples("i-blind", [0.5] * hours, mem=8.0),  # no network metric: cannot tell
        samples("i-new", [0.5] * 100, mem=8.0, net_per_hour=10.0, start=T0 + dt.timedelta(hours=236)),
        samples("i-spiky", [0.5] * 300 + [50.0] * 36, mem=8.0, net_per_hour=10.0),
    ])
    inv = inventory(*({"resource_id": r, "instance_type": "m5.xlarge", "hourly_cost": 0.192}
                      for r in ("i-idle", "i-chatty", "i-blind", "i-new", "i-spiky")))
    recs = {r.resource_id: r for r in recommend(util, inv, hours)}
    idle = recs.pop("i-idle")
    assert (idle.kind, idle.recommended) == ("idle_instance", "stop")
    assert idle.monthly_savings == Decimal("140.16")  # 0.192 × 730
    assert idle.evidence["cpu_p95_pct"] == 0.5
    assert idle.evidence["days_covered"] == 14
    assert len(idle.evidence["series"]) == 14
    assert all(r.kind != "idle_instance" for r in recs.values())


def test_idle_instance_needs_negligible_network_every_day() -> None:
    s = DEFAULTS
    one_busy_day = samples("i-1", [0.5] * 336, net_per_hour=1000.0).with_columns(
        pl.when((pl.col("metric") == "network_bytes") & (pl.col("timestamp").dt.day() == 7))
        .then(1_000_000.0).otherwise(pl.col("value")).alias("value"))
    start, end = window(336)
    u = usage_of(one_busy_day)
    assert u.net_daily_max == 24_000_000.0
    assert idle_instance(u, provider="aws", region="us-east-1", instance_type="m5.large",
                         paid=Paid(Decimal("0.096"), "bill"), settings=s, as_of=end,
                         window_start=start) is None


# ---- prices paid, from the bill -------------------------------------------------------
def _bill_day(day: int, resource: str, cost: str, *, unit: str | None = "Hrs", qty: float | None = 24.0,
              category: str = "Usage", pricing: str | None = "Standard") -> dict[str, Any]:
    start = T0 + dt.timedelta(days=day)
    return {
        "BilledCost": Decimal(cost), "EffectiveCost": Decimal(cost), "ListCost": Decimal(cost),
        "ContractedCost": Decimal(cost), "BillingAccountId": "payer", "BillingCurrency": "USD",
        "BillingPeriodStart": dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
        "BillingPeriodEnd": dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
        "ChargePeriodStart": start, "ChargePeriodEnd": start + dt.timedelta(days=1),
        "ChargeCategory": category, "ServiceName": "Amazon Elastic Compute Cloud",
        "ServiceCategory": "Compute", "SubAccountId": "111", "ResourceId": resource,
        "ProviderName": "AWS", "PublisherName": "AWS", "InvoiceIssuerName": "AWS",
        "PricingCategory": pricing, "RegionId": "us-east-1", "ConsumedQuantity": qty,
        "ConsumedUnit": unit, "__source": "t",
    }


def test_savings_use_the_price_paid_and_scale_the_discount(tmp_path: Path) -> None:
    wh, state = Warehouse(tmp_path), open_state(tmp_path)
    util = pl.concat([samples("i-bill", [5.0] * 336, mem=20.0, net_per_hour=1e8),
                      samples("i-inv", [5.0] * 336, mem=20.0, net_per_hour=1e8)])
    store_utilization(wh, state, util, source="t", inputs=["t"])
    inv = inventory({"resource_id": "i-bill", "instance_type": "m5.2xlarge", "hourly_cost": 0.384},
                    {"resource_id": "i-inv", "instance_type": "m5.xlarge", "hourly_cost": 0.2})
    store_inventory(wh, state, inv, source="t", inputs=["t"])
    rows = []
    for day in range(14):
        rows.append(_bill_day(day, "i-bill", "7.20"))  # 0.30 an hour, under the 0.384 list price
        rows.append(_bill_day(day, "i-bill", "-0.24", unit=None, qty=None, category="Credit"))
        rows.append(_bill_day(day, "i-bill", "1.00", unit="GB", qty=11.1))  # data transfer: not resized
    write_billing(wh, rows)
    out = build_recommendations(wh, RightsizingSettings())
    recs = {r.resource_id: r for r in out.recommendations}
    bill = recs["i-bill"]
    # Paid (7.20 − 0.24) / 24 = 0.29 an hour; m5.large at 0.096 × 0.29 / 0.384 = 0.0725;
    # (0.29 − 0.0725) × 730 = 158.775 → 158.78.
    assert (bill.current, bill.recommended) == ("m5.2xlarge", "m5.large")
    assert bill.monthly_savings == Decimal("158.78")
    assert bill.evidence["price_source"] == "bill"
    assert bill.evidence["paid_hourly_current"] == "0.290000"
    assert bill.evidence["paid_hourly_recommended"] == "0.072500"
    # No bill: the inventory's 0.20 an hour is the price paid; 0.096 × 0.20 / 0.192 = 0.10.
    inv_rec = recs["i-inv"]
    assert inv_rec.recommended == "m5.large"
    assert inv_rec.monthly_savings == Decimal("73.00")
    assert inv_rec.evidence["price_source"] == "inventory"
    assert bill.confidence > inv_rec.confidence
    state.close()


def test_a_type_is_never_below_the_observed_memory() -> None:
    # CPU is idle-ish but memory is near full: no smaller m5 has the memory.
    util = samples("i-mem", [3.5] * 336, mem=80.0, net_per_hour=1e9)
    inv = inventory({"resource_id": "i-mem", "instance_type": "m5.xlarge", "hourly_cost": 0.192})
    assert recommend(util, inv, 336) == []
    # Across families, a cheaper type with at least 16 × 0.8 × 1.2 = 15.36 GiB is allowed.
    rec = recommend(util, inv, 336, RightsizingSettings(cross_family=True))[0]
    chosen = snapshot().types[("aws", rec.recommended)]
    assert chosen.memory_gib >= 15.36
    assert rec.monthly_savings > 0


def test_memory_not_measured_is_kept() -> None:
    util = samples("i-nomem", [2.0] * 336, net_per_hour=1e9)
    inv = inventory({"resource_id": "i-nomem", "instance_type": "r5.2xlarge", "hourly_cost": 0.504})
    rec = recommend(util, inv, 336, RightsizingSettings(cross_family=True))[0]
    chosen = snapshot().types[("aws", rec.recommended)]
    assert chosen.memory_gib >= 64
    assert rec.evidence["memory_measured"] is False
