"""Anomaly detection and forecast bench: labelled synthetic organisations, default settings.

    .venv/bin/python bench/anomalies.py                # everything (a few minutes, 1 core)
    .venv/bin/python bench/anomalies.py --orgs 4 --skip-perf --skip-forecast

Prints event-level recall (within 3 days of onset, and at any delay), precision, detection
delay, false alarms by cause, for the detector and for the naive baseline (STL + robust
z-score per series); the MAPE of month-end forecasts made on day 15 against a run-rate
baseline; the causality spot check; and the time to detect over ~2,000 series × 365 days.

Delay is counted two ways: in *data days* (first day whose data made the event reportable,
minus the onset) and in *calendar days* (when it is reported: the detector does not judge
the latest ``incomplete_days`` of the export, so add those).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finops.state import open_state
from finops.warehouse import Warehouse
from models.anomalies.api import Analysis, analyse, analyse_panel, filter_panel
from models.anomalies.baseline import stl_filter
from models.anomalies.detect import FilterResult
from models.anomalies.events import Event
from models.anomalies.feedback import record_feedback
from models.anomalies.series import Panel, build_panel, load_cells
from models.anomalies.settings import AnomalySettings
from models.anomalies.synthetic import (
    Cell,
    Organisation,
    Shape,
    generate,
    write_cube,
)

EVAL_FROM = 60
WITHIN = 3


@dataclass
class Score:
    truths: int = 0
    found_within: int = 0
    found_any: int = 0
    delays: list[int] = field(default_factory=list)
    by_kind: Counter[str] = field(default_factory=Counter)
    by_kind_found: Counter[str] = field(default_factory=Counter)
    events: int = 0
    true_events: int = 0
    false_by_cause: Counter[str] = field(default_factory=Counter)
    planned_labelled: int = 0

    def add(self, other: Score) -> None:
        for name in ("truths", "found_within", "found_any", "events", "true_events",
                     "planned_labelled"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.delays += other.delays
        self.by_kind.update(other.by_kind)
        self.by_kind_found.update(other.by_kind_found)
        self.false_by_cause.update(other.false_by_cause)


def cell_sids(panel: Panel, cell: Cell) -> set[int]:
    hit = panel.cells.with_row_index("i").filter(
        (pl.col("provider") == cell.provider) & (pl.col("service") == cell.service)
        & (pl.col("account") == cell.account) & (pl.col("tenant") == cell.tenant)
    )["i"].to_list()
    return {int(panel.cell_series[lv][c]) for c in hit for lv in panel.cell_series}


def evaluate(org: Organisation, home: Path, settings: AnomalySettings,
             method: Callable[[Panel, AnomalySettings], FilterResult]) -> Score:
    wh = Warehouse(home)
    state = open_state(home)
    try:
        cells, source = load_cells(wh, cost=settings.cost)
        panel = build_panel(cells, source=source)
        analysis = analyse_panel(panel, state, settings, method=method)
        score = Score()
        # The planned migration: an operator labels the first event it raises "planned".
        for ben in org.benign:
            if ben.kind != "migration":
                continue
            sids = set().union(*(cell_sids(panel, c) for c in ben.cells))
            lo, hi = panel.index_of(ben.start), panel.index_of(ben.end)
            hits = [e for e in analysis.reported() if set(e.members) & sids
                    and lo - 1 <= e.start <= hi]
            if hits:
                record_feedback(state, hits[0].anomaly_id, "planned", "bench", "migration")
                score.planned_labelled += 1
        if score.planned_labelled:
            analysis = analyse_panel(panel, state, settings, method=method)
        return _score(org, panel, analysis, score)
    finally:
        state.close()


def _score(org: Organisation, panel: Panel, analysis: Analysis, score: Score) -> Score:
    events = [e for e in analysis.reported() if e.start >= EVAL_FROM]
    truths = [(tr, cell_sids(panel, tr.cell), panel.index_of(tr.onset), panel.index_of(tr.last))
              for tr in org.truths]

    def matches(e: Event, sids: set[int], onset: int, last: int) -> bool:
        return bool(set(e.members) & sids) and onset - 1 <= e.start <= last

    for tr, sids, onset, last in truths:
        score.truths += 1
        score.by_kind[tr.kind] += 1
        found = [e.detected for e in events if matches(e, sids, onset, last)
                 and e.detected is not None]
        if found:
            delay = min(found) - onset
            score.found_any += 1
            score.delays.append(delay)
            if delay <= WITHIN:
                score.found_within += 1
                score.by_kind_found[tr.kind] += 1
    benign = [(b, set().union(*(cell_sids(panel, c) for c in b.cells)),
               panel.index_of(b.start), panel.index_of(b.end)) for b in org.benign]
    for e in events:
        score.events += 1
        if any(matches(e, sids, onset, last) for _, sids, onset, last in truths):
            score.true_events += 1
            continue
        day = panel.days[e.start]
        cause = "other"
        for b, sids, lo, hi in benign:
            if set(e.members) & sids and lo - 1 <= e.start <= hi + 3:
                cause = b.kind
        if cause == "other" and day.day == 1:
            cause = "month_start"
        elif cause == "other" and day.weekday() >= 5:
            cause = "weekend"
        score.false_by_cause[cause] += 1
    return score


def report(name: str, score: Score, incomplete: int) -> None:
    recall = score.found_within / score.truths if score.truths else float("nan")
    recall_any = score.found_any / score.truths if score.truths else float("nan")
    precision = score.true_events / score.events if score.events else float("nan")
    delays = score.delays
    print(f"\n== {name}")
    print(f"  injected anomalies: {score.truths}; reported events: {score.events} "
          f"({score.true_events} true); migrations labelled planned: {score.planned_labelled}")
    print(f"  recall within {WITHIN} data days of onset: {recall:.3f}   at any delay: "
          f"{recall_any:.3f}")
    print(f"  precision: {precision:.3f}")
    if delays:
        print(f"  delay, data days: median {statistics.median(delays):.1f}, mean "
              f"{statistics.fmean(delays):.2f}, max {max(delays)}; calendar days (+{incomplete} "
              f"incomplete days held back): median {statistics.median(delays) + incomplete:.1f}")
        within_cal = sum(d + incomplete <= WITHIN for d in delays) / score.truths
        print(f"  recall within {WITHIN} calendar days of onset: {within_cal:.3f}")
    print("  recall by kind: " + ", ".join(
        f"{k} {score.by_kind_found[k]}/{score.by_kind[k]}" for k in sorted(score.by_kind)))
    print("  false alarms by cause: " + (", ".join(
        f"{k} {v}" for k, v in score.false_by_cause.most_common()) or "none"))


def accuracy(n_orgs: int, seed: int, settings: AnomalySettings, *, baseline: bool = True) -> None:
    ours, base = Score(), Score()
    started = time.perf_counter()
    for i in range(n_orgs):
        org = generate(seed + i)
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "ours"
            write_cube(Warehouse(home), org.cube())
            ours.add(evaluate(org, home, settings, filter_panel))
            if baseline:
                home_b = Path(tmp) / "baseline"
                write_cube(Warehouse(home_b), org.cube())
                base.add(evaluate(org, home_b, settings, stl_filter))
    print(f"accuracy over {n_orgs} organisations (seeds {seed}..{seed + n_orgs - 1}), "
          f"{time.perf_counter() - started:.1f} s")
    report("robust Holt-Winters filter (default settings)", ours, settings.incomplete_days)
    if baseline:
        report("baseline: STL + robust z-score per series (non-causal, same events and "
               "thresholds)", base, settings.incomplete_days)


def incomplete_tail(cells: pl.DataFrame, as_of: dt.date, factors: tuple[float, ...]) -> pl.DataFrame:
    """The export as seen on ``as_of``: its last days only partly loaded."""
    expr = pl.col("cost")
    for back, factor in enumerate(factors):
        day = as_of - dt.timedelta(days=back)
        expr = pl.when(pl.col("day") == day).then(pl.col("cost") * factor).otherwise(expr)
    return cells.with_columns(expr.cast(pl.Decimal(38, 12)).alias("cost"))


def causality_check(seed: int, settings: AnomalySettings, n_dates: int = 4) -> None:
    org = generate(seed)
    with tempfile.TemporaryDirectory() as tmp:
        wh = Warehouse(Path(tmp))
        write_cube(wh, org.cube())
        cells, source = load_cells(wh, cost=settings.cost)
        full_panel = build_panel(cells, source=source)
        full = filter_panel(full_panel, settings)
        full_index = {k: i for i, k in enumerate(
            full_panel.series.select("currency", "level", "value").iter_rows())}
        rng = np.random.default_rng(seed)
        same = 0
        for t in sorted(rng.integers(90, len(org.days) - 5, n_dates)):
            as_of = org.days[int(t)]
            part = incomplete_tail(cells.filter(pl.col("day") <= as_of), as_of, (0.4, 0.85))
            panel = build_panel(part, source=source)
            res = filter_panel(panel, settings)
            j = res.judged_through
            rows = [full_index[k] for k in panel.series.select("currency", "level", "value")
                    .iter_rows()]
            ok = (np.array_equal(res.flag[:, :j + 1], full.flag[rows, :j + 1])
                  and np.allclose(res.expected[:, :j + 1], full.expected[rows, :j + 1],
                                  equal_nan=True))
            same += ok
        print(f"\ncausality: {same}/{n_dates} as-of runs (last 2 days of the export at 40% and "
              f"85%) gave the same decisions as the full-year run for every judged day")


def forecast_bench(n_orgs: int, seed: int) -> None:
    from models.forecast import forecast_panel

    started = time.perf_counter()
    errors: dict[str, list[float]] = {"total": [], "tenant": [], "service": []}
    naive: dict[str, list[float]] = {"total": [], "tenant": [], "service": []}
    for i in range(n_orgs):
        org = generate(seed + i)
        with tempfile.TemporaryDirectory() as tmp:
            wh = Warehouse(Path(tmp))
            write_cube(wh, org.cube())
            cells, source = load_cells(wh)
        for month in range(3, 13):
            as_of = dt.date(org.days[0].year, month, 15)
            part = incomplete_tail(cells.filter(pl.col("day") <= as_of), as_of, (0.4, 0.85))
            fc = forecast_panel(part, source=source, as_of=as_of, levels=("total", "tenant",
                                                                          "service"))
            month_end = fc.filter(pl.col("horizon") == "month_end")
            period = f"{as_of:%Y-%m}"
            actual = (cells.filter(pl.col("day").dt.strftime("%Y-%m") == period)
                      .with_columns(pl.lit("total").alias("total")))
            for level, col in (("total", "total"), ("tenant", "tenant"), ("service", "service")):
                truth = dict(actual.group_by(col).agg(pl.col("cost").sum().cast(pl.Float64))
                             .iter_rows())
                for row in month_end.filter(pl.col("dimension") == level).iter_rows(named=True):
                    real = truth.get(row["dimension_value"], 0.0)
                    if real < 300:  # a month under $10/day says little about a forecast
                        continue
                    errors[level].append(abs(float(row["forecast"]) - real) / real)
                    naive[level].append(abs(float(row["run_rate"]) - real) / real)
    print(f"\nmonth-end forecasts made on day 15 ({n_orgs} organisations x 10 months, last 2 "
          f"days incomplete), {time.perf_counter() - started:.1f} s")
    for level, e in errors.items():
        b = naive[level]
        print(f"  {level:8s} n={len(e):4d}  MAPE {100 * statistics.fmean(e):5.2f}%  "
              f"(run-rate baseline {100 * statistics.fmean(b):5.2f}%)  median APE "
              f"{100 * statistics.median(e):5.2f}%")
    every = [x for v in errors.values() for x in v]
    every_b = [x for v in naive.values() for x in v]
    print(f"  all      n={len(every):4d}  MAPE {100 * statistics.fmean(every):5.2f}%  "
          f"(run-rate baseline {100 * statistics.fmean(every_b):5.2f}%)")


def performance(settings: AnomalySettings, target: int = 2000) -> None:
    shape = Shape(n_tenants=20, n_accounts=80, cells_per_tenant=200, n_services=60,
                  n_anomalies=40, n_new_cells=10)
    org = generate(7, shape=shape)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        wh = Warehouse(home)
        cube = org.cube()
        write_cube(wh, cube)
        state = open_state(home)
        started = time.perf_counter()
        analysis = analyse(wh, state, settings=settings)
        elapsed = time.perf_counter() - started
        state.close()
    n_series = analysis.panel.series.height
    print(f"\nperformance: {n_series} series (target ~{target}) x {analysis.panel.n_days} days, "
          f"{cube.height:,} cube rows, {len(analysis.panel.cells.rows())} cells: detect (load, "
          f"filter, events, root causes, feedback) {elapsed:.1f} s, "
          f"{len(analysis.reported())} events")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orgs", type=int, default=8)
    parser.add_argument("--forecast-orgs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--skip-perf", action="store_true")
    parser.add_argument("--skip-forecast", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    settings = AnomalySettings()
    if not args.skip_accuracy:
        accuracy(args.orgs, args.seed, settings, baseline=not args.skip_baseline)
        causality_check(args.seed, settings)
    if not args.skip_forecast:
        forecast_bench(args.forecast_orgs, args.seed)
    if not args.skip_perf:
        performance(settings)


if __name__ == "__main__":
    main()
