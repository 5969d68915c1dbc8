"""Right-sizing bench: a labelled synthetic fleet, run through the real stage.

    .venv/bin/python bench/rightsizing.py                 # 600 instances, seed 7
    .venv/bin/python bench/rightsizing.py --n 300 --seed 1 --percentile 95

Each instance gets a class (over-provisioned, right-sized, bursty, memory-bound, idle), a
current type (EC2 m5/m6i/c5/r5/m6g/r6g/t3, RDS db.m5/db.r6g; us-east-1 or eu-west-1), a
discount on list price, and an hourly CPU / memory / network process simulated for ten
weeks. The *truth* is computed from all ten weeks: the true p99 vCPU need and the true
maximum memory, and the type a recommender with perfect knowledge and the same policy
(20% headroom, same family, burstable credits) would pick, at the price paid. The stage
only sees the last 14 days (utilisation, inventory, and a daily bill for half the fleet;
the inventory's hourly_cost for the other half).

Printed: recall on truly over-provisioned and idle instances (target ≥ 0.95); unsafe
recommendations — a recommended type below the true p99 vCPU need or the true memory
maximum, a burstable type whose credits would run out on the true series, or an idle
stop of an instance that is not idle (target 0); and the error of the estimated monthly
savings against the true savings (target within 10%).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from collectors.utilization import conform_inventory, store_inventory, store_utilization
from finops.focus import SCHEMA
from finops.ingest import ensure_focus_columns
from finops.state import open_state
from finops.warehouse import Warehouse
from models.rightsizing.base import Recommendation
from models.rightsizing.catalog import InstanceType, snapshot
from models.rightsizing.run import build_recommendations
from models.rightsizing.settings import RightsizingSettings

WEEKS = 10
LOOKBACK_DAYS = 14
HOURS = WEEKS * 7 * 24
END = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
START = END - dt.timedelta(hours=HOURS)
CLASSES = {"over": 0.35, "right": 0.20, "bursty": 0.15, "memory": 0.15, "idle": 0.15}
CURRENT = {  # family: sizes a fleet is launched with
    "m5": ["xlarge", "2xlarge", "4xlarge", "8xlarge"], "m6i": ["xlarge", "2xlarge", "4xlarge"],
    "c5": ["xlarge", "2xlarge", "4xlarge", "9xlarge"], "r5": ["xlarge", "2xlarge", "4xlarge"],
    "m6g": ["xlarge", "2xlarge", "4xlarge"], "r6g": ["large", "xlarge", "2xlarge"],
    "t3": ["large", "xlarge", "2xlarge"], "db.m5": ["xlarge", "2xlarge", "4xlarge"],
    "db.r6g": ["xlarge", "2xlarge"],
}
DISCOUNTS = [0.0, 0.05, 0.12, 0.2, 0.3]
HEADROOM = 0.2


@dataclass
class Instance:
    rid: str
    cls: str
    current: InstanceType
    region: str
    list_price: Decimal
    paid: Decimal  # per hour
    billed: bool  # price from the bill (else the inventory's hourly_cost)
    cpu: np.ndarray  # % of the current type, hourly, ten weeks
    mem: np.ndarray  # % of the current type's memory
    net: np.ndarray  # bytes per hour


def _diurnal(rng: np.random.Generator) -> np.ndarray:
    h = np.arange(HOURS)
    phase = rng.uniform(0, 24)
    day = 0.5 + 0.5 * np.sin(2 * np.pi * (h - phase) / 24)
    weekend = ((h // 24) % 7 >= 5).astype(float)
    return np.asarray(day * (1 - 0.3 * weekend))


def simulate(cls: str, rng: np.random.Generator, *, stress: bool = False,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    shape = _diurnal(rng)
    noise = rng.lognormal(0, 0.25, HOURS)
    if cls == "idle":
        cpu = rng.uniform(0.2, 1.2) * rng.lognormal(0, 0.3, HOURS)
        mem = np.full(HOURS, rng.uniform(5, 30)) + rng.normal(0, 0.5, HOURS)
        net = rng.uniform(20_000, 150_000) * rng.lognormal(0, 0.2, HOURS)
    elif cls == "over":
        peak = rng.uniform(6, 30)
        cpu = peak * (0.25 + 0.75 * shape) * noise / 1.6
        mem = rng.uniform(10, 38) + rng.normal(0, 1.5, HOURS)
        net = 10 ** rng.uniform(7, 9) * (0.3 + shape)
    elif cls == "right":
        peak = rng.uniform(55, 80)
        cpu = peak * (0.4 + 0.6 * shape) * noise / 1.5
        mem = rng.uniform(45, 75) + rng.normal(0, 2, HOURS)
        net = 10 ** rng.uniform(7.5, 9.5) * (0.3 + shape)
    elif cls == "bursty":
        base = rng.uniform(2, 8)
        cpu = base * noise
        bursts = rng.random(HOURS) < rng.uniform(0.01, 0.05)
        # stress: every burst its own size (the 14 days seen need not hold the biggest);
        # else a job with its own peak, ±8% from one run to the next.
        size = (rng.uniform(40, 95, HOURS) if stress
                else rng.uniform(40, 90) * rng.lognormal(0, 0.08, HOURS))
        cpu = np.where(bursts, size, cpu)
        mem = rng.uniform(20, 50) + rng.normal(0, 2, HOURS)
        net = 10 ** rng.uniform(7, 9) * (0.3 + shape)
    else:  # memory-bound
        cpu = rng.uniform(4, 20) * (0.3 + 0.7 * shape) * noise
        mem = rng.uniform(70, 90) + rng.normal(0, 2, HOURS) + 4 * shape
        net = 10 ** rng.uniform(7, 9) * (0.3 + shape)
    return (np.clip(cpu, 0, 100), np.clip(mem, 0, 100), np.maximum(net, 0))


def generate_fleet(n: int, seed: int, *, stress: bool = False) -> list[Instance]:
    rng = np.random.default_rng(seed)
    cat = snapshot()
    classes = list(CLASSES)
    fleet = []
    for i in range(n):
        cls = str(rng.choice(classes, p=list(CLASSES.values())))
        family = str(rng.choice(list(CURRENT)))
        itype = f"{family}.{rng.choice(CURRENT[family])}"
        current = cat.types[("aws", itype)]
        region = str(rng.choice(["us-east-1", "eu-west-1"]))
        listed = cat.prices[("aws", region, itype)]
        discount = Decimal(str(rng.choice(DISCOUNTS)))
        paid = (listed * (1 - discount)).quantize(Decimal("0.000001"))
        cpu, mem, net = simulate(cls, rng, stress=stress)
        prefix = "db-" if family.startswith("db.") else "i-"
        rid = (f"arn:aws:rds:{region}:111122223333:db:{prefix}{i:05d}" if prefix == "db-"
               else f"i-{i:017x}")
        fleet.append(Instance(rid, cls, current, region, listed, paid, bool(i % 2), cpu, mem, net))
    return fleet


# ---- the truth, computed independently of the module under test ----------------------
def credits_ok(hourly_vcpu: np.ndarray, baseline: float) -> bool:
    """No credit shortfall over the ten weeks, replayed from where a first pass ends."""
    balance, cap = 0.0, baseline * 60 * 24
    for rnd in range(2):
        balance = min(cap, max(0.0, balance))
        for used in hourly_vcpu:
            balance = min(cap, balance + (baseline - float(used)) * 60)
            if rnd and balance < -1e-9:
                return False
    return True


@dataclass
class Truth:
    p99_vcpu: float
    mem_gib: float
    idle: bool
    best: InstanceType
    savings: Decimal  # monthly, same policy, at the price paid


def truth(inst: Instance) -> Truth:
    cat = snapshot()
    cur = inst.current
    p99_vcpu = float(np.percentile(inst.cpu, 99)) / 100 * cur.vcpu
    mem_gib = float(inst.mem.max()) / 100 * cur.memory_gib
    busiest_day = float(inst.net.reshape(-1, 24).sum(axis=1).max())
    idle = float(np.percentile(inst.cpu, 95)) < 3.0 and busiest_day <= 5e6
    hourly = inst.cpu / 100 * cur.vcpu * (1 + HEADROOM)
    best, best_price = cur, inst.list_price
    for t in cat.types.values():
        key = ("aws", inst.region, t.name)
        if t.service != cur.service or t.family != cur.family or key not in cat.prices:
            continue
        price = cat.prices[key]
        ok = t.vcpu >= p99_vcpu * (1 + HEADROOM) and t.memory_gib >= mem_gib * (1 + HEADROOM)
        if ok and t.burstable:
            ok = credits_ok(hourly, t.baseline_vcpu)
        if ok and price < best_price:
            best, best_price = t, price
    saving = inst.paid * 730 if idle else (inst.paid - best_price * inst.paid / inst.list_price) * 730
    return Truth(p99_vcpu, mem_gib, idle, best, saving.quantize(Decimal("0.01")))


def unsafe(rec: Recommendation, inst: Instance, tr: Truth) -> str | None:
    if rec.kind == "idle_instance":
        return None if tr.idle else "stopped a busy instance"
    if rec.kind != "rightsize_compute":
        return None
    t = snapshot().types[("aws", rec.recommended)]
    if t.vcpu < tr.p99_vcpu - 1e-9:
        return f"{t.name} has {t.vcpu} vCPU < true p99 need {tr.p99_vcpu:.2f}"
    if t.memory_gib < tr.mem_gib - 1e-9:
        return f"{t.name} has {t.memory_gib} GiB < true memory max {tr.mem_gib:.2f}"
    if t.burstable and not credits_ok(inst.cpu / 100 * inst.current.vcpu, t.baseline_vcpu):
        return f"{t.name} runs out of CPU credits on the true series"
    return None


# ---- writing the fleet into a warehouse ------------------------------------------------
def write_warehouse(home: Path, fleet: list[Instance]) -> None:
    wh, state = Warehouse(home), open_state(home)
    seen = slice(HOURS - LOOKBACK_DAYS * 24, HOURS)
    hours = [START + dt.timedelta(hours=h) for h in range(HOURS)][seen]
    n = len(hours)
    frames = []
    for inst in fleet:
        for metric, values in (("cpu_percent", inst.cpu), ("memory_percent", inst.mem),
                               ("network_bytes", inst.net)):
            frames.append(pl.DataFrame({"timestamp": hours, "resource_id": [inst.rid] * n,
                                        "metric": [metric] * n, "value": values[seen]}))
    store_utilization(wh, state, pl.concat(frames), source="bench", inputs=["bench"])
    inv = conform_inventory(pl.DataFrame([{
        "resource_id": i.rid, "provider": "aws", "region": i.region,
        "resource_type": "rds_instance" if i.current.service == "rds" else "ec2_instance",
        "instance_type": i.current.name,
        "hourly_cost": float(i.list_price) if i.billed else float(i.paid),  # billed: the bill wins
        "currency": "USD", "state": "running"} for i in fleet]))
    store_inventory(wh, state, inv, source="bench", inputs=["bench"])
    rows: list[dict[str, Any]] = []
    for inst in fleet:
        if not inst.billed:
            continue
        for d in range(LOOKBACK_DAYS):
            start = END - dt.timedelta(days=LOOKBACK_DAYS - d)
            cost = inst.paid * 24
            rows.append({
                "BilledCost": cost, "EffectiveCost": cost, "ListCost": inst.list_price * 24,
                "ContractedCost": cost, "BillingAccountId": "payer", "BillingCurrency": "USD",
                "BillingPeriodStart": dt.datetime(2026, 5, 1, tzinfo=dt.UTC),
                "BillingPeriodEnd": END, "ChargePeriodStart": start,
                "ChargePeriodEnd": start + dt.timedelta(days=1), "ChargeCategory": "Usage",
                "ServiceName": "Amazon Elastic Compute Cloud", "ServiceCategory": "Compute",
                "ResourceId": inst.rid, "ProviderName": "AWS", "PublisherName": "AWS",
                "InvoiceIssuerName": "AWS", "PricingCategory": "Standard", "RegionId": inst.region,
                "ConsumedQuantity": 24.0, "ConsumedUnit": "Hrs", "SubAccountId": "111122223333",
            })
    bill = pl.DataFrame(rows, schema={k: SCHEMA[k] for k in rows[0]})
    wh.replace_partition("billing", {"source": "bench", "billing_period": "2026-05"},
                         ensure_focus_columns(bill.lazy()).collect(), run_id="bench")
    wh.drop_staging("bench")
    state.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--percentile", type=float, default=99.0)
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="upper confidence bound of the percentile (0: the sample percentile)")
    parser.add_argument("--stress", action="store_true",
                        help="bursty instances draw every burst's size afresh (40-95%%)")
    args = parser.parse_args()
    fleet = generate_fleet(args.n, args.seed, stress=args.stress)
    truths = {i.rid: truth(i) for i in fleet}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        t0 = time.perf_counter()
        write_warehouse(home, fleet)
        t1 = time.perf_counter()
        settings = RightsizingSettings(cpu_percentile=args.percentile, min_monthly_savings=Decimal("0.01"),
                                       percentile_confidence=args.confidence)
        outcome = build_recommendations(Warehouse(home), settings, as_of=END)
        t2 = time.perf_counter()
    recs = {r.resource_id: r for r in outcome.recommendations
            if r.kind in ("rightsize_compute", "idle_instance")}
    by_id = {i.rid: i for i in fleet}
    target = [i for i in fleet if truths[i.rid].idle or truths[i.rid].best.name != i.current.name]
    found = [i for i in target if i.rid in recs]
    print(f"fleet: {len(fleet)} instances (seed {args.seed}{', stress' if args.stress else ''}), "
          f"CPU p{args.percentile:g} (upper bound at {args.confidence:g}), 20% headroom, "
          f"14-day lookback out of {WEEKS} simulated weeks")
    counts = {c: sum(1 for i in fleet if i.cls == c) for c in CLASSES}
    print("  classes: " + ", ".join(f"{c} {n}" for c, n in counts.items()))
    print(f"  truly over-provisioned or idle (same policy, perfect knowledge): {len(target)}")
    n_idle = sum(1 for r in recs.values() if r.kind == "idle_instance")
    print(f"  recommendations: {len(recs)} ({n_idle} idle, {len(recs) - n_idle} right-size)")
    recall = len(found) / len(target) if target else 1.0
    print(f"\nrecall on truly over-provisioned and idle: {recall:.3f}  ({len(found)}/{len(target)})")
    for c in CLASSES:
        tc = [i for i in target if i.cls == c]
        if tc:
            print(f"  {c:7s} {sum(1 for i in tc if i.rid in recs)}/{len(tc)}")
    idle_t = [i for i in fleet if truths[i.rid].idle]
    idle_found = [i for i in idle_t if recs.get(i.rid) and recs[i.rid].kind == "idle_instance"]
    print(f"  idle found as idle: {len(idle_found)}/{len(idle_t)}")
    problems = [(rid, why) for rid, r in recs.items() if (why := unsafe(r, by_id[rid], truths[rid]))]
    print(f"\nunsafe recommendations: {len(problems)}")
    for rid, why in problems[:10]:
        print(f"  {rid}: {why}")
    false_pos = [rid for rid in recs if by_id[rid] not in target]
    print(f"recommendations on resources that are not over-provisioned (safe, but beyond the "
          f"same-policy optimum): {len(false_pos)}")
    est = sum((r.monthly_savings for r in recs.values()), Decimal(0))
    true_total = sum((truths[i.rid].savings for i in target), Decimal(0))
    err = float(abs(est - true_total) / true_total) if true_total else 0.0
    matched_est = sum((recs[i.rid].monthly_savings for i in found), Decimal(0))
    matched_true = sum((truths[i.rid].savings for i in found), Decimal(0))
    m_err = float(abs(matched_est - matched_true) / matched_true) if matched_true else 0.0
    print(f"\nmonthly savings: estimated {est}, true {true_total}, error {100 * err:.2f}%")
    print(f"  on the resources found: estimated {matched_est}, true {matched_true}, error {100 * m_err:.2f}%")
    exact = sum(1 for i in found if recs[i.rid].monthly_savings == truths[i.rid].savings)
    print(f"  recommendations whose savings equal the truth to the cent: {exact}/{len(found)}")
    print(f"\ntime: write warehouse {t1 - t0:.1f}s, build recommendations {t2 - t1:.1f}s")


if __name__ == "__main__":
    main()
