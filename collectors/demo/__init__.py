"""The demo organisation: a seeded, deterministic multi-cloud company to try everything on.

:func:`generate_demo` writes FOCUS 1.2 billing rows for AWS, Google Cloud, Azure and a
shared Snowflake account into the warehouse (one collect run per source, one partition
per source and month), plus the inputs other collectors read: Snowflake query and
metering history, hourly utilisation, the resource inventory, and the ground truth of
the planted anomalies, under ``<home>/_inputs/demo/``. The same seed and end date give
the same bytes; nothing reads the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from collectors.demo import snowflake, utilization
from collectors.demo.anomalies import AnomalyTruth, place, truths, write_truth
from collectors.demo.billing import UsageGenerator, covered_usage, write_source
from collectors.demo.charges import charge_rows
from collectors.demo.commitments import commitment_rows, size_commitments
from collectors.demo.frames import invoice_id, rows_frame
from collectors.demo.infrastructure import Deployment, deployments
from collectors.demo.lines import estimate_rows, expand
from collectors.demo.money import UNIT
from collectors.demo.org import PROVIDERS, SOURCES, SUB_ACCOUNTS, Provider
from collectors.demo.window import Period, Window
from finops.ingest import BILLING, PERIOD
from finops.state import State
from finops.warehouse import Warehouse

__all__ = ["DEFAULT_END", "DemoSummary", "generate_demo", "inputs_dir"]

DEFAULT_END: Final = dt.date(2026, 11, 22)
DEFAULT_MONTHS: Final = 7
# Rows that are not per-resource usage (fees, commitments, Snowflake), per window day.
_OTHER_ROWS_PER_DAY: Final = 14


@dataclass
class DemoSummary:
    seed: int
    scale: int | None
    start: dt.date  # first day with data
    end: dt.date  # last day with data (inclusive; its month is month-to-date)
    periods: list[str]
    rows: dict[str, int]  # per source
    billed_cost: dict[str, Decimal]  # per billing currency
    effective_cost: dict[str, Decimal]
    run_ids: dict[str, str]  # per source
    anomalies: list[AnomalyTruth]
    inputs_dir: Path
    truth_path: Path
    utilization_path: Path
    inventory_path: Path
    query_history_path: Path
    metering_path: Path
    snowflake_credit_price: Decimal
    queries: int
    utilization_rows: int
    scale_factor: float = 1.0
    notes: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def inputs_dir(wh: Warehouse) -> Path:
    return wh.home / "_inputs" / "demo"


def scale_factor(deps: list[Deployment], window: Window, scale: int | None) -> float:
    """The resource multiplier that gives about ``scale`` billing rows in total.

    Every deployment keeps at least one resource, so there is a floor (about 45,000 rows
    for seven months); a smaller ``scale`` gets the floor.
    """
    if scale is None:
        return 1.0
    if scale <= 0:
        raise ValueError(f"scale must be a positive number of rows, not {scale}")
    target = max(scale - _OTHER_ROWS_PER_DAY * window.n_days, scale * 0.2)
    lo, hi = 1e-4, 1e5
    for _ in range(60):
        mid = (lo * hi) ** 0.5
        if estimate_rows(deps, window, mid) < target:
            lo = mid
        else:
            hi = mid
    # Counts round to whole resources: take whichever side lands closer.
    below, above = estimate_rows(deps, window, lo), estimate_rows(deps, window, hi)
    return lo if abs(below - target) <= abs(above - target) else hi


def generate_demo(
    wh: Warehouse,
    state: State,
    *,
    seed: int = 42,
    scale: int | None = None,
    end: dt.date = DEFAULT_END,
    months: int = DEFAULT_MONTHS,
) -> DemoSummary:
    """Generate the demo organisation into ``wh``; see the module docstring.

    ``scale``: about this many billing rows in total (None: the default size, about
    150,000 rows; a larger scale adds resources, so spend grows with it). ``end``: the
    last day with data. ``months``: calendar months covered, the last one month-to-date.
    """
    window = Window.ending(end, months)
    placed = place(window)
    deps = deployments()
    factor = scale_factor(deps, window, scale)
    expansion = expand(deps, window, factor, placed, np.random.default_rng([seed, 1]))
    lines = expansion.lines
    commitments = size_commitments(window, covered_usage(lines, window))
    generator = UsageGenerator(lines, window, placed, commitments, seed)
    label = f"demo seed={seed} scale={scale} end={end.isoformat()} months={months}"
    folder = inputs_dir(wh)

    queries = snowflake.generate_queries(window, snowflake.query_count(factor),
                                         np.random.default_rng([seed, 3]))
    metering, snow_usage = snowflake.meter(window, queries)
    query_path, metering_path = snowflake.write_files(folder / "snowflake", queries, metering)
    del queries, metering
    util_path, inventory_path, util_rows = utilization.write_files(
        folder, expansion.resources, window, np.random.default_rng([seed, 4]))

    def invoices(period: Period) -> dict[str, str | None]:
        billing = {s.billing.account_id: s.billing for s in SUB_ACCOUNTS.values()}
        return {k: invoice_id(b, period) for k, b in billing.items()}

    def cloud_frames(provider: Provider) -> Callable[[Period], Iterator[pl.DataFrame]]:
        p = PROVIDERS.index(provider)

        def frames(period: Period) -> Iterator[pl.DataFrame]:
            yield from generator.period_frames(p, period)
            totals = generator.totals
            rows = [row for c in commitments if c.spec.provider == provider
                    for row in commitment_rows(c, window, period)]
            previous = totals.billed[:, period.index - 1] if period.index else None
            rows += charge_rows(provider, period, window, lines, totals.billed[:, period.index],
                                totals.effective[:, period.index], previous, factor)
            if rows:
                yield rows_frame(rows)

        return frames

    def snowflake_frames(period: Period) -> Iterator[pl.DataFrame]:
        yield snowflake.billing_rows(window, snow_usage, period)

    writes = []
    for provider in ("aws", "gcp", "azure"):
        writes.append(write_source(wh, state, SOURCES[provider], [label], window,
                                   cloud_frames(provider), invoices))
    writes.append(write_source(wh, state, SOURCES["snowflake"], [label], window,
                               snowflake_frames, invoices))
    _drop_stale_partitions(wh, {w.source: set(w.periods) for w in writes})
    total = sum(w.rows for w in writes)
    notes = []
    if scale is not None and abs(total - scale) > 0.1 * scale:
        notes.append(f"asked for {scale:,} rows, made {total:,}: the demo company cannot be "
                     f"smaller than one resource per deployment")

    anomaly_truth = truths(window, placed, generator.totals.anomaly_extra,
                           expansion.anomaly_resources, UNIT)
    truth_path = folder / "truth.json"
    write_truth(truth_path, anomaly_truth)

    billed: dict[str, Decimal] = {}
    effective: dict[str, Decimal] = {}
    for w in writes:
        for t in w.totals:
            billed[t.currency] = billed.get(t.currency, Decimal(0)) + t.billed_cost
            effective[t.currency] = effective.get(t.currency, Decimal(0)) + t.effective_cost
    return DemoSummary(
        seed=seed, scale=scale, start=window.start, end=window.end,
        periods=[p.label for p in window.periods],
        rows={w.source: w.rows for w in writes},
        billed_cost=dict(sorted(billed.items())),
        effective_cost=dict(sorted(effective.items())),
        run_ids={w.source: w.run_id for w in writes},
        anomalies=anomaly_truth, inputs_dir=folder, truth_path=truth_path,
        utilization_path=util_path, inventory_path=inventory_path,
        query_history_path=query_path, metering_path=metering_path,
        snowflake_credit_price=snowflake.CREDIT_PRICE, queries=snow_usage.queries,
        utilization_rows=util_rows, scale_factor=factor, notes=notes,
    )


def _drop_stale_partitions(wh: Warehouse, written: dict[str, set[str]]) -> None:
    """A shorter re-run must not leave months of an earlier, longer one behind."""
    for keys in wh.partitions(BILLING):
        source, period = keys.get("source"), keys.get(PERIOD)
        if source in written and period not in written[source]:
            wh.delete_partition(BILLING, keys)
