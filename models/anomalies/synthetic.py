"""A labelled generator of realistic daily cost, written as cube partitions.

Each organisation has providers, services, accounts and tenants; a *cell* is one
(service, account, tenant) with its own level, weekday profile, growth, noise (Student-t,
heavy tailed, plus a slow random walk) and optionally a month-start fee. Injected
anomalies (the labels) are single-day spikes, multi-day spikes, level shifts and gradual
ramps; benign patterns are weekends, month-start fees (fee-only cells such as support
plans, and fees inside usage cells), growth, small new cells, and one planned migration
(a workload moved to another service with ten days of double running).

Used by ``bench/anomalies.py`` and the tests; nothing here is needed at run time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import polars as pl

from finops.warehouse import Warehouse

MONEY: Final = pl.Decimal(38, 12)
SERVICES: Final[dict[str, tuple[str, str, float]]] = {
    # name: (provider, category, weekend factor)
    "Amazon EC2": ("AWS", "Compute", 0.75),
    "Amazon S3": ("AWS", "Storage", 1.0),
    "Amazon RDS": ("AWS", "Databases", 0.95),
    "AWS Lambda": ("AWS", "Compute", 0.55),
    "Amazon CloudFront": ("AWS", "Networking", 0.85),
    "Amazon EKS": ("AWS", "Compute", 0.8),
    "Amazon DynamoDB": ("AWS", "Databases", 0.9),
    "Amazon Redshift": ("AWS", "Analytics", 0.6),
    "Compute Engine": ("Google Cloud", "Compute", 0.7),
    "BigQuery": ("Google Cloud", "Analytics", 0.4),
    "Cloud Storage": ("Google Cloud", "Storage", 1.0),
    "Cloud SQL": ("Google Cloud", "Databases", 0.95),
}
FEE_SERVICE: Final = "AWS Support (Business)"
TENANTS: Final = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
KINDS: Final = ("spike", "multi_spike", "level_shift", "ramp")


@dataclass(frozen=True)
class Cell:
    provider: str
    service: str
    account: str
    tenant: str


@dataclass
class Truth:
    kind: str
    cell: Cell
    onset: dt.date
    last: dt.date  # last day that belongs to the anomaly (for matching)
    daily_excess: float  # at full size


@dataclass
class Benign:
    kind: str  # migration | new_cell
    cells: tuple[Cell, ...]
    start: dt.date
    end: dt.date


@dataclass
class Organisation:
    seed: int
    days: list[dt.date]
    cells: list[Cell]
    costs: np.ndarray  # [cells, days], complete
    truths: list[Truth] = field(default_factory=list)
    benign: list[Benign] = field(default_factory=list)

    def cube(self) -> pl.DataFrame:
        return cube_frame(self.cells, self.days, self.costs)

    def month_totals(self) -> pl.DataFrame:
        return self.cube().group_by("billing_period").agg(pl.col("EffectiveCost").sum())


@dataclass
class Shape:
    """How big an organisation is."""

    n_tenants: int = 5
    n_accounts: int = 6
    cells_per_tenant: int = 9
    n_services: int = len(SERVICES)
    n_anomalies: int = 12
    n_new_cells: int = 2
    migration: bool = True
    fee_cells: int = 3  # usage cells that also carry a month-start fee
    level_median: float = 60.0


def _services(n: int) -> list[tuple[str, str, str, float]]:
    base = [(name, *spec) for name, spec in SERVICES.items()]
    out = list(base[:n])
    i = 0
    while len(out) < n:
        name, provider, category, weekend = base[i % len(base)]
        out.append((f"{name} {i // len(base) + 2}", provider, category, weekend))
        i += 1
    return out


def generate(seed: int, *, start: dt.date = dt.date(2025, 1, 1), n_days: int = 365,
             shape: Shape | None = None, eval_from: int = 60,
             min_excess: float = 75.0) -> Organisation:
    """One organisation's complete daily cost, with its labels."""
    shape = shape or Shape()
    rng = np.random.default_rng(seed)
    days = [start + dt.timedelta(days=i) for i in range(n_days)]
    t = np.arange(n_days)
    weekday = np.array([d.weekday() for d in days])
    month_start = np.array([d.day == 1 for d in days])
    services = _services(shape.n_services)
    accounts = {p: [f"{p[:3].lower()}-{rng.integers(10**11, 10**12)}"
                    for _ in range(max(1, shape.n_accounts // 2))]
                for p in sorted({s[1] for s in services})}
    tenants = [TENANTS[i] if i < len(TENANTS) else f"tenant-{i}" for i in range(shape.n_tenants)]

    cells: list[Cell] = []
    weekend: list[float] = []
    for tenant in tenants:
        picked = rng.choice(len(services), size=min(shape.cells_per_tenant, len(services) * 3),
                            replace=True)
        for k in picked:
            name, provider, _, wk = services[int(k)]
            cell = Cell(provider, name, str(rng.choice(accounts[provider])), tenant)
            if cell not in cells:
                cells.append(cell)
                weekend.append(wk)
    n = len(cells)
    level = rng.lognormal(np.log(shape.level_median), 1.0, n)
    growth = rng.normal(0.02, 0.02, n)  # per month
    noise = rng.uniform(0.03, 0.10, n)
    trend = (1 + growth[:, None]) ** (t[None, :] / 30.0)
    walk = np.cumsum(rng.normal(0, 0.004, (n, n_days)), axis=1)
    # Heavy-tailed day-to-day noise (Student-t, 5 degrees of freedom, unit variance),
    # clipped at 3.5 sd: larger moves are anomalies, and those are injected and labelled.
    shocks = np.clip(rng.standard_t(5, (n, n_days)) * np.sqrt(3 / 5), -3.5, 3.5) * noise[:, None]
    week = np.where(weekday[None, :] >= 5, np.array(weekend)[:, None], 1.0)
    week = week * (1 + rng.normal(0, 0.03, (n, 7)))[:, weekday]
    costs = level[:, None] * trend * week * np.exp(walk + shocks)
    # Month-start fees inside some usage cells (marketplace subscriptions, licences).
    for c in rng.choice(n, size=min(shape.fee_cells, n), replace=False):
        costs[c, month_start] += level[c] * rng.uniform(3, 10)
    org = Organisation(seed, days, cells, costs)
    # Fee-only cells: a support plan charged on the 1st, as a share of last month's spend.
    support_account = accounts.get("AWS", next(iter(accounts.values())))[0]
    support = Cell("AWS", FEE_SERVICE, support_account, tenants[0])
    fee_row = np.zeros(n_days)
    daily_total = costs.sum(axis=0)
    for i in np.flatnonzero(month_start):
        prev = daily_total[max(0, i - 30):i].sum() if i else daily_total[:30].sum()
        fee_row[i] = 0.07 * prev
    _append(org, support, fee_row)

    _inject_anomalies(org, rng, shape, eval_from, min_excess)
    _new_cells(org, rng, shape, eval_from, services, accounts, tenants)
    if shape.migration:
        _migration(org, rng, eval_from)
    np.maximum(org.costs, 0.0, out=org.costs)
    return org


def _append(org: Organisation, cell: Cell, row: np.ndarray) -> int:
    if cell in org.cells:
        i = org.cells.index(cell)
        org.costs[i] += row
        return i
    org.cells.append(cell)
    org.costs = np.vstack([org.costs, row[None, :]])
    return len(org.cells) - 1


def _inject_anomalies(org: Organisation, rng: np.random.Generator, shape: Shape,
                      eval_from: int, min_excess: float) -> None:
    n_days = len(org.days)
    busy: dict[int, list[tuple[int, int]]] = {}
    usage = [i for i, c in enumerate(org.cells) if c.service != FEE_SERVICE]
    for j in range(shape.n_anomalies):
        kind = KINDS[j % len(KINDS)]
        for _ in range(100):
            c = int(rng.choice(usage))
            onset = int(rng.integers(eval_from, n_days - 25))
            span = (onset - 30, onset + 40)
            if all(span[1] < a or span[0] > b for a, b in busy.get(c, [])):
                break
        busy.setdefault(c, []).append((onset - 30, onset + 40))
        base = float(np.median(org.costs[c, onset - 28:onset]))
        floor = rng.uniform(min_excess, 3 * min_excess)
        if kind == "spike":
            excess = max(base * rng.uniform(1.0, 3.0), floor)
            org.costs[c, onset] += excess
            last = onset
        elif kind == "multi_spike":
            length = int(rng.integers(2, 6))
            excess = max(base * rng.uniform(0.6, 2.0), floor)
            org.costs[c, onset:onset + length] += excess * rng.uniform(0.8, 1.2, length)
            last = onset + length - 1
        elif kind == "level_shift":
            rel = max(rng.uniform(0.4, 1.5), floor / max(base, 1e-9))
            org.costs[c, onset:] *= 1 + rel
            excess = base * rel
            last = onset + 10
        else:
            length = int(rng.integers(5, 11))
            rel = max(rng.uniform(0.8, 2.0), floor / max(base, 1e-9))
            ramp = np.minimum(np.arange(1, n_days - onset + 1) / length, 1.0)
            org.costs[c, onset:] *= 1 + rel * ramp
            excess = base * rel
            last = onset + length + 10
        org.truths.append(Truth(kind, org.cells[c], org.days[onset],
                                org.days[min(last, n_days - 1)], float(excess)))


def _new_cells(org: Organisation, rng: np.random.Generator, shape: Shape, eval_from: int,
               services: list[tuple[str, str, str, float]], accounts: dict[str, list[str]],
               tenants: list[str]) -> None:
    n_days = len(org.days)
    for _ in range(shape.n_new_cells):
        name, provider, _, wk = services[int(rng.integers(len(services)))]
        cell = Cell(provider, f"{name} (new)", accounts[provider][0],
                    tenants[int(rng.integers(len(tenants)))])
        begin = int(rng.integers(eval_from, n_days - 40))
        row = np.zeros(n_days)
        size = rng.uniform(5, 20)
        weekday = np.array([d.weekday() for d in org.days[begin:]])
        row[begin:] = size * np.where(weekday >= 5, wk, 1.0) * np.exp(
            rng.normal(0, 0.05, n_days - begin))
        _append(org, cell, row)
        org.benign.append(Benign("new_cell", (cell,), org.days[begin], org.days[-1]))


def _migration(org: Organisation, rng: np.random.Generator, eval_from: int) -> None:
    """A workload moves to another service: the new one ramps up in 3 days, the old one
    keeps running 10 more days, then is switched off over 2 days."""
    n_days = len(org.days)
    truth_cells = {tr.cell for tr in org.truths}
    candidates = [i for i, c in enumerate(org.cells)
                  if c.service != FEE_SERVICE and c not in truth_cells]
    sizes = np.array([np.median(org.costs[i, :eval_from]) for i in candidates])
    src = candidates[int(np.argsort(sizes)[-3])]
    old = org.cells[src]
    start = int(rng.integers(eval_from + 30, n_days - 60))
    target = Cell(old.provider, "Amazon EKS" if old.provider == "AWS" else "GKE",
                  old.account, old.tenant)
    row = np.zeros(n_days)
    ramp = np.minimum(np.arange(1, n_days - start + 1) / 3.0, 1.0)
    row[start:] = org.costs[src, start:] * ramp
    off = start + 13
    org.costs[src, off:off + 2] *= np.array([0.5, 0.1])
    org.costs[src, off + 2:] = 0.0
    _append(org, target, row)
    org.benign.append(Benign("migration", (old, target), org.days[start], org.days[off + 2]))


def cube_frame(cells: list[Cell], days: list[dt.date], costs: np.ndarray) -> pl.DataFrame:
    """Rows as the allocation stage writes them to ``cube`` (one per cell and day)."""
    n_cells, n_days = costs.shape
    cell_idx = np.repeat(np.arange(n_cells), n_days)
    day_idx = np.tile(np.arange(n_days), n_cells)
    keys = pl.DataFrame({
        "c": np.arange(n_cells),
        "x_Tenant": [c.tenant for c in cells],
        "ServiceName": [c.service for c in cells],
        "SubAccountId": [c.account for c in cells],
        "ProviderName": [c.provider for c in cells],
    })
    frame = (
        pl.DataFrame({"c": cell_idx, "d": day_idx, "cost": costs.reshape(-1).round(2)})
        .filter(pl.col("cost") != 0)
        .join(keys, on="c", how="left")
        .with_columns((pl.lit(days[0], pl.Date) + pl.duration(days=pl.col("d"))).alias("day"))
    )
    return frame.select(
        "day", "x_Tenant",
        pl.col("x_Tenant").alias("x_Team"),
        pl.lit("cc-1").alias("x_CostCenter"),
        "ServiceName",
        pl.when(pl.col("ServiceName") == FEE_SERVICE).then(pl.lit("Management and Governance"))
        .otherwise(pl.lit("Compute")).alias("ServiceCategory"),
        "SubAccountId",
        pl.concat_str(pl.lit("acct "), "SubAccountId").alias("SubAccountName"),
        "ProviderName",
        pl.lit("us-east-1").alias("RegionId"),
        pl.when(pl.col("ServiceName") == FEE_SERVICE).then(pl.lit("Purchase"))
        .otherwise(pl.lit("Usage")).alias("ChargeCategory"),
        pl.lit("tag").alias("x_AllocationMethod"),
        pl.lit("USD").alias("BillingCurrency"),
        pl.col("cost").cast(MONEY).alias("BilledCost"),
        pl.col("cost").cast(MONEY).alias("EffectiveCost"),
        pl.lit(1, pl.UInt32).alias("rows"),
    ).with_columns(pl.col("day").dt.strftime("%Y-%m").alias("billing_period"))


def write_cube(wh: Warehouse, cube: pl.DataFrame, *, run_id: str = "synthetic") -> None:
    """Write ``cube`` as one partition per billing period, as ``finops allocate`` does."""
    for period in sorted(cube["billing_period"].unique().to_list()):
        wh.replace_partition("cube", {"billing_period": period},
                             cube.filter(pl.col("billing_period") == period), run_id=run_id)
    wh.drop_staging(run_id)


def daily_series(days: list[dt.date], level: float, *, weekend: float = 0.7,
                 growth: float = 0.0, noise: float = 0.03, fee: float = 0.0,
                 seed: int = 0) -> np.ndarray:
    """One cell's daily cost: a weekday profile, monthly growth, Gaussian noise (clipped
    at 3 sd) and an optional fee on each first of the month."""
    rng = np.random.default_rng(seed)
    t = np.arange(len(days))
    weekday = np.array([d.weekday() for d in days])
    values = level * (1 + growth) ** (t / 30.0) * np.where(weekday >= 5, weekend, 1.0)
    values = values * (1 + np.clip(rng.normal(0, 1, len(days)), -3, 3) * noise)
    values = values + np.array([fee if d.day == 1 else 0.0 for d in days])
    out: np.ndarray = np.maximum(values, 0.0)
    return out


def write_cells(wh: Warehouse, days: list[dt.date], series: dict[Cell, np.ndarray],
                *, run_id: str = "test") -> pl.DataFrame:
    """Write these cells' daily costs to the warehouse as cube partitions; returns the cube."""
    cells = list(series)
    cube = cube_frame(cells, days, np.vstack([series[c] for c in cells]))
    write_cube(wh, cube, run_id=run_id)
    return cube
