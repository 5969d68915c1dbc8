"""Anomaly detection over the warehouse: what the CLI, the pipeline, the app and the report call.

``detect(wh, state)`` returns the events; ``run_stage(wh, state)`` also writes them to the
``anomalies`` dataset (partition ``as_of=YYYY-MM-DD``) and logs the run;
``load_anomalies(wh)`` reads the latest written partition back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import numpy as np
import polars as pl

from finops.state import State
from finops.warehouse import Warehouse
from models.anomalies.detect import FilterResult, run_filter
from models.anomalies.events import CENT, Event, build_events, exact_actual
from models.anomalies.feedback import (
    EventKey,
    load_feedback,
    matching_feedback,
    register_events,
)
from models.anomalies.series import Panel, build_panel, load_cells
from models.anomalies.settings import AnomalySettings, load_anomaly_settings

ANOMALIES: Final = "anomalies"
OUTPUT_COLUMNS: Final = ("anomaly_id", "start_date", "end_date", "dimension", "dimension_value",
                         "actual_cost", "expected_cost", "impact", "severity", "root_causes")
EXTRA_COLUMNS: Final = ("currency", "impact_pct", "label", "detected_on")
MONEY_COLUMNS: Final = ["actual_cost", "expected_cost", "impact"]
SUPPRESSING: Final = ("expected", "planned")
CAUSE_TYPE: Final = pl.Struct({"dimension": pl.String, "value": pl.String,
                               "contribution": pl.Decimal(38, 2), "share": pl.Float64})
SCHEMA: Final[dict[str, pl.DataType]] = {
    "anomaly_id": pl.String(), "start_date": pl.Date(), "end_date": pl.Date(),
    "dimension": pl.String(), "dimension_value": pl.String(),
    "actual_cost": pl.Decimal(38, 12), "expected_cost": pl.Decimal(38, 12),
    "impact": pl.Decimal(38, 12), "severity": pl.String(), "root_causes": pl.List(CAUSE_TYPE),
    "currency": pl.String(), "impact_pct": pl.Float64(), "label": pl.String(),
    "detected_on": pl.Date(),
}


@dataclass
class Analysis:
    panel: Panel
    result: FilterResult
    events: list[Event]  # every group of anomalous days, reported or not
    as_of: dt.date
    settings: AnomalySettings

    @property
    def judged_through(self) -> dt.date | None:
        t = self.result.judged_through
        return self.panel.days[t] if t >= 0 else None

    def reported(self, *, include_suppressed: bool = False) -> list[Event]:
        return [e for e in self.events if e.reported
                and (include_suppressed or e.label not in SUPPRESSING)]


def calendar(days: list[dt.date]) -> tuple[np.ndarray, np.ndarray]:
    weekdays = np.array([d.weekday() for d in days], dtype=np.int64)
    month_start = np.array([d.day == 1 for d in days], dtype=bool)
    return weekdays, month_start


def filter_panel(panel: Panel, settings: AnomalySettings) -> FilterResult:
    """Run the robust filter on every series, judging up to the data's end minus the
    incomplete days."""
    weekdays, month_start = calendar(panel.days)
    money, pct = settings.day_floor()
    return run_filter(
        panel.values, panel.first, weekdays, month_start, params=settings.model,
        min_history=settings.min_history_days, confirm_days=settings.confirm_days,
        z_threshold=settings.z_threshold, direction=settings.direction,
        day_floor_money=money, day_floor_pct=pct,
        judged_through=panel.n_days - 1 - settings.incomplete_days,
    )


def event_key(panel: Panel, ev: Event) -> EventKey:
    series = panel.series
    members = frozenset(
        f"{series['currency'][s]}|{series['level'][s]}|{series['value'][s]}" for s in ev.members
    )
    return EventKey(ev.anomaly_id, ev.currency, ev.dimension, ev.dimension_value,
                    panel.days[ev.start], panel.days[ev.end], _expected_money(ev.impact), members)


def _expected_money(value: float) -> Decimal:
    return Decimal(str(round(value, 2))).quantize(CENT)


def analyse_panel(panel: Panel, state: State | None, settings: AnomalySettings, *,
                  as_of: dt.date | None = None, register: bool = True,
                  method: Callable[[Panel, AnomalySettings], FilterResult] | None = None,
                  ) -> Analysis:
    """Filter (``method``, default the robust filter), group, apply feedback, register."""
    result = (method or filter_panel)(panel, settings)
    events = build_events(panel, result, settings)
    feedback = load_feedback(state) if state is not None else []
    keys: list[tuple[EventKey, str]] = []
    for ev in events:
        if not ev.reported:
            continue
        key = event_key(panel, ev)
        fb = matching_feedback(key, feedback, grace_days=settings.planned_grace_days,
                               repeat_factor=settings.repeat_factor)
        ev.label = fb.label if fb else None
        keys.append((key, json.dumps(_causes_json(ev))))
    analysis = Analysis(panel, result, events, as_of or panel.data_end, settings)
    if state is not None and register and keys:
        register_events(state, keys, analysis.as_of)
    return analysis


def analyse(wh: Warehouse, state: State | None, *, as_of: dt.date | None = None,
            settings: AnomalySettings | None = None, register: bool = True) -> Analysis:
    """Load the series up to ``as_of`` (default: all data), run the filter, build events,
    apply feedback and (``register``) record the reported events in state.db."""
    settings = settings or load_anomaly_settings()
    cells, source = load_cells(wh, cost=settings.cost, through=as_of)
    panel = build_panel(cells, source=source)
    return analyse_panel(panel, state, settings, as_of=as_of, register=register)


def _causes_json(ev: Event) -> list[dict[str, object]]:
    return [{"dimension": c.dimension, "value": c.value,
             "contribution": str(_expected_money(c.contribution)), "share": round(c.share, 3)}
            for c in ev.root_causes]


def events_frame(analysis: Analysis, *, since: dt.date | None = None,
                 include_suppressed: bool = False) -> pl.DataFrame:
    """The reported events: the DESIGN columns, then ``currency, impact_pct, label,
    detected_on``; most recent first."""
    panel = analysis.panel
    lag = dt.timedelta(days=analysis.settings.incomplete_days)
    several = panel.series["currency"].n_unique() > 1
    rows = []
    for ev in analysis.reported(include_suppressed=include_suppressed):
        end = panel.days[ev.end]
        if since is not None and end < since:
            continue
        actual = exact_actual(panel, ev)
        expected = _expected_money(ev.expected)
        impact = actual - expected
        rows.append({
            "anomaly_id": ev.anomaly_id,
            "start_date": panel.days[ev.start],
            "end_date": end,
            "dimension": ev.dimension,
            # With several billing currencies, the value names its currency.
            "dimension_value": (f"{ev.dimension_value} ({ev.currency})" if several
                                else ev.dimension_value),
            "actual_cost": actual,
            "expected_cost": expected,
            "impact": impact,
            "severity": ev.severity,
            "root_causes": [{"dimension": c.dimension, "value": c.value,
                             "contribution": _expected_money(c.contribution),
                             "share": round(c.share, 3)} for c in ev.root_causes],
            "currency": ev.currency,
            "impact_pct": (float(impact / expected) if expected > 0 else None),
            "label": ev.label,
            "detected_on": (panel.days[ev.detected] + lag) if ev.detected is not None else None,
        })
    df = pl.DataFrame(rows, schema=SCHEMA, orient="row") if rows else pl.DataFrame(schema=SCHEMA)
    return df.sort(["start_date", "impact"], descending=[True, True])


def detect(wh: Warehouse, state: State | None, *, as_of: dt.date | None = None,
           since: dt.date | None = None, settings: AnomalySettings | None = None) -> pl.DataFrame:
    """Anomaly events as of ``as_of`` (default: the latest data) ending on or after
    ``since`` (default: all), feedback applied. See ``events_frame`` for the columns."""
    analysis = analyse(wh, state, as_of=as_of, settings=settings)
    return events_frame(analysis, since=since)


def write_anomalies(wh: Warehouse, frame: pl.DataFrame, as_of: dt.date, run_id: str) -> None:
    wh.replace_partition(ANOMALIES, {"as_of": as_of.isoformat()}, frame, run_id=run_id)


def load_anomalies(wh: Warehouse, as_of: dt.date | None = None) -> pl.DataFrame:
    """The events written by the latest run (or the run for ``as_of``); empty if none."""
    parts = sorted(k["as_of"] for k in wh.partitions(ANOMALIES) if "as_of" in k)
    if as_of is not None:
        parts = [p for p in parts if p == as_of.isoformat()]
    if not parts:
        return pl.DataFrame(schema=SCHEMA)
    return wh.scan(ANOMALIES, where={"as_of": parts[-1]}).collect()


def run_detection(wh: Warehouse, state: State, *, as_of: dt.date | None = None,
                  settings: AnomalySettings | None = None) -> tuple[Analysis, pl.DataFrame, str]:
    """Detect, write the ``anomalies`` partition for the as-of date and log the run."""
    run_id = state.start_run("anomalies", None, [as_of.isoformat()] if as_of else [])
    try:
        analysis = analyse(wh, state, as_of=as_of, settings=settings)
        frame = events_frame(analysis)
        write_anomalies(wh, frame, analysis.as_of, run_id)
        state.finish_run(run_id, status="succeeded", rows_in=analysis.panel.series.height,
                         rows_out=frame.height)
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=str(exc)[:2000])
        raise
    finally:
        wh.drop_staging(run_id)
    return analysis, frame, run_id


def run_stage(wh: Warehouse, state: State) -> str:
    """The pipeline stage: detect as of the latest data and write ``anomalies``."""
    analysis, frame, _ = run_detection(wh, state)
    through = analysis.judged_through
    return (f"{frame.height} anomalies over {analysis.panel.series.height} series, "
            f"judged through {through.isoformat() if through else 'no day yet'}")
