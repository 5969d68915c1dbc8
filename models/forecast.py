"""Forecasts: where this month and next month will land, with 80% and 95% intervals.

Per series (the total, each tenant, each service, and each team that has a budget):

1. history: the last ``history_days`` judged days (the latest ``incomplete_days`` of the
   export are not used: they are forecast like the future), cleaned by the anomaly
   filter (anomalous days enter as the filter's clipped values, so a one-off spike does
   not inflate the forecast; an accepted level shift does move it);
2. month-start fees are taken out (day 1 enters at its fee-free expectation) and added
   back on each future day 1 as the median excess of the last three day 1s;
3. statsmodels ``ETSModel`` (additive error, additive damped trend, weekly seasonality,
   multiplicative when the series is positive; heuristic initial states, five times
   faster to fit than estimated ones at the same accuracy) is fitted on the daily values; 1,000
   simulated paths give the distribution of the month sums, the point is the model mean;
4. month end = month-to-date actual (exact) + the forecast of the remaining days.

Series with under 28 days of history get a run-rate forecast (mean of the last 7 days)
with normal intervals. Budgets come from a TOML or YAML file (``--budgets FILE`` or
``FINOPS_FORECAST__BUDGETS``); see :class:`BudgetFile`.
"""

from __future__ import annotations

import calendar
import datetime as dt
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Final, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from finops.errors import BadInputError, ConfigError
from finops.state import State
from finops.warehouse import Warehouse
from models.anomalies.api import filter_panel
from models.anomalies.series import Panel, build_panel, load_cells
from models.anomalies.settings import (
    AnomalySettings,
    describe_errors,
    load_anomaly_settings,
    read_config_file,
)

FORECASTS: Final = "forecasts"
CENT: Final = Decimal("0.01")
MONEY_COLUMNS: Final = ["actual_to_date", "forecast", "lower_80", "upper_80", "lower_95",
                        "upper_95", "run_rate", "budget"]
MIN_HISTORY: Final = 28
QUANTILES: Final = (0.025, 0.10, 0.90, 0.975)
Z: Final = {0.80: 1.2816, 0.95: 1.96}
MONEY: Final = pl.Decimal(38, 2)
SCHEMA: Final[dict[str, pl.DataType]] = {
    "dimension": pl.String(), "dimension_value": pl.String(), "currency": pl.String(),
    "period": pl.String(), "horizon": pl.String(), "actual_to_date": MONEY, "forecast": MONEY,
    "lower_80": MONEY, "upper_80": MONEY, "lower_95": MONEY, "upper_95": MONEY,
    "run_rate": MONEY, "budget": MONEY, "budget_status": pl.String(), "model": pl.String(),
    "data_through": pl.Date(),
}


class Budget(BaseModel):
    """A monthly budget for one tenant or one team."""

    model_config = ConfigDict(extra="forbid")

    tenant: str | None = None
    team: str | None = None
    amount: Decimal = Field(gt=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    period: str | None = Field(default=None, description="YYYY-MM; every month when omitted")

    @model_validator(mode="after")
    def _one_owner(self) -> Budget:
        if (self.tenant is None) == (self.team is None):
            raise ValueError("give exactly one of tenant or team")
        return self

    @field_validator("period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                dt.datetime.strptime(value, "%Y-%m")
            except ValueError:
                raise ValueError(f"period {value!r} is not YYYY-MM") from None
        return value

    @property
    def dimension(self) -> str:
        return "tenant" if self.tenant is not None else "team"

    @property
    def owner(self) -> str:
        return str(self.tenant if self.tenant is not None else self.team)


class BudgetFile(BaseModel):
    """``budgets = [{tenant = "acme", amount = 12000}, {team = "data", amount = 5000,
    period = "2026-06", currency = "EUR"}]`` (TOML ``[[budgets]]`` tables or a YAML list)."""

    model_config = ConfigDict(extra="forbid")

    budgets: list[Budget] = Field(default_factory=list)


class ForecastSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FINOPS_FORECAST__", extra="forbid")

    budgets: Path | None = None
    history_days: int = Field(default=182, ge=MIN_HISTORY)
    repetitions: int = Field(default=1000, ge=100)
    seed: int = 0


def load_budgets(path: Path) -> BudgetFile:
    data = read_config_file(path, "forecast")
    try:
        return BudgetFile(**data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, str(path)),
                          hint="Each budget needs `amount` and one of `tenant` or `team`; "
                          "optional `currency` (ISO code) and `period` (YYYY-MM).") from None


def month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    first = day.replace(day=1)
    last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    return first, last


def _to_money(value: float) -> Decimal:
    return Decimal(str(round(float(value), 2))).quantize(CENT)


def _regular_history(panel: Panel, sid: int, lo: int, hi: int, clean: np.ndarray,
                     base: np.ndarray, month_start: np.ndarray) -> tuple[np.ndarray, float]:
    """Daily values ``lo..hi`` with anomalies clipped and month-start fees removed, and the
    fee to add on future first days."""
    raw = panel.values[sid, lo:hi + 1].copy()
    reg = np.where(np.isnan(clean[sid, lo:hi + 1]), raw, clean[sid, lo:hi + 1])
    fee_days = np.flatnonzero(month_start[lo:hi + 1])
    excess = []
    for i in fee_days.tolist():
        b = base[sid, lo + i]
        if np.isfinite(b):
            excess.append(raw[i] - b)
            reg[i] = b
        else:
            neighbours = raw[max(0, i - 7):i]
            fill = float(np.nanmedian(neighbours)) if np.isfinite(neighbours).any() else raw[i]
            excess.append(raw[i] - fill)
            reg[i] = fill
    fee = float(np.median(excess[-3:])) if excess else 0.0
    # Missing days: carry the last value.
    for i in range(len(reg)):
        if np.isnan(reg[i]):
            reg[i] = reg[i - 1] if i else 0.0
    return reg, fee


def _simulate(reg: np.ndarray, horizon: int, repetitions: int,
              seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Point (h,) and simulated paths (h, R) of daily cost."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    recent = reg[-7:]
    if len(reg) >= MIN_HISTORY and np.ptp(reg) > 0:
        seasonal: Literal["add", "mul"] = "mul" if reg.min() > 0 else "add"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = ETSModel(reg, error="add", trend="add", damped_trend=True,
                                 seasonal=seasonal, seasonal_periods=7,
                                 initialization_method="heuristic")
                fit = model.fit(disp=False, maxiter=200)
                point = np.asarray(fit.forecast(horizon), dtype=float)
                paths = np.asarray(fit.simulate(horizon, anchor="end", repetitions=repetitions,
                                                rng=np.random.default_rng(seed)), dtype=float)
            if np.isfinite(point).all() and np.isfinite(paths).all():
                paths = paths.reshape(horizon, -1)
                return np.maximum(point, 0), np.maximum(paths, 0), f"ets_{seasonal}"
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            pass
    mean = float(np.mean(recent)) if len(recent) else 0.0
    sd = float(np.std(reg[-28:])) if len(reg) > 1 else abs(mean) * 0.2
    rng = np.random.default_rng(seed)
    paths = mean + sd * rng.standard_normal((horizon, repetitions))
    return np.full(horizon, max(mean, 0.0)), np.maximum(paths, 0), "run_rate"


def forecast_panel(cells: pl.DataFrame, *, source: str, as_of: dt.date | None = None,
                   levels: tuple[str, ...] = ("total", "tenant", "service"),
                   budgets: BudgetFile | None = None,
                   settings: ForecastSettings | None = None,
                   anomaly_settings: AnomalySettings | None = None) -> pl.DataFrame:
    """Month-end and next-month forecasts from cell-day costs (see the module docstring)."""
    settings = settings or ForecastSettings()
    anomaly_settings = anomaly_settings or load_anomaly_settings()
    budgets = budgets or BudgetFile()
    if as_of is not None:
        cells = cells.filter(pl.col("day") <= as_of)
    wanted = [lv for lv in levels if not (lv in {"tenant", "team"} and source != "cube")]
    if any(b.dimension == "team" for b in budgets.budgets) and "team" not in wanted:
        wanted.append("team")
    if any(b.dimension == "tenant" for b in budgets.budgets) and "tenant" not in wanted:
        wanted.append("tenant")
    panel = build_panel(cells, source=source, levels=tuple(wanted))
    as_of = as_of or panel.data_end
    result = filter_panel(panel, anomaly_settings)
    last = result.judged_through
    if last < 0:
        raise BadInputError(
            f"too little data to forecast: {panel.n_days} day(s) up to {panel.data_end}",
            hint=f"Forecasts need more than {anomaly_settings.incomplete_days} complete days.")
    through = panel.days[last]
    month_first, month_last = month_bounds(as_of)
    next_first, next_last = month_bounds(month_last + dt.timedelta(days=1))
    horizon = (next_last - through).days
    future = [through + dt.timedelta(days=i + 1) for i in range(horizon)]
    future_fee = np.array([d.day == 1 for d in future])
    in_month = np.array([month_first <= d <= month_last for d in future])
    in_next = np.array([next_first <= d <= next_last for d in future])
    month_start = np.array([d.day == 1 for d in panel.days])
    lo_month = max(0, panel.index_of(month_first))
    rows = []
    series = panel.series
    for sid in range(series.height):
        first = int(panel.first[sid])
        if first > last:
            continue
        lo = max(first, last - settings.history_days + 1)
        reg, fee = _regular_history(panel, sid, lo, last, result.clean, result.base, month_start)
        point, paths, model = _simulate(reg, horizon, settings.repetitions, settings.seed + sid)
        point = point + np.where(future_fee, fee, 0.0)
        paths = paths + np.where(future_fee, fee, 0.0)[:, None]
        cells_of = panel.series_cells(sid).tolist()
        mtd_exact = (panel.data.filter(pl.col("cell").is_in(cells_of)
                                       & pl.col("t").is_between(lo_month, last))
                     .select(pl.col("cost").sum()).item()) if lo_month <= last else None
        mtd = Decimal(0) if mtd_exact is None else Decimal(mtd_exact)
        elapsed = max((through - month_first).days + 1, 0)
        days_in_month = (month_last - month_first).days + 1
        rate_month = (mtd / elapsed * days_in_month) if elapsed > 0 else None
        recent = np.nanmean(panel.values[sid, max(first, last - 6):last + 1])
        level = series.row(sid, named=True)
        for name, mask, actual in (("month_end", in_month, mtd), ("next_month", in_next, None)):
            future_point = float(point[mask].sum())
            sums = paths[mask].sum(axis=0)
            q = np.quantile(sums, QUANTILES) if mask.any() else np.zeros(len(QUANTILES))
            base_amount = actual if actual is not None else Decimal(0)
            fc = base_amount + _to_money(future_point)
            bounds = [base_amount + _to_money(v) for v in q]
            lower_95, lower_80, upper_80, upper_95 = bounds
            lower_80, lower_95 = min(lower_80, fc), min(lower_95, lower_80, fc)
            upper_80, upper_95 = max(upper_80, fc), max(upper_95, upper_80, fc)
            period = (month_first if name == "month_end" else next_first).strftime("%Y-%m")
            if name == "month_end":
                run_rate = rate_month if rate_month is not None else _to_money(
                    recent * days_in_month)
            else:
                run_rate = _to_money(recent * ((next_last - next_first).days + 1))
            rows.append({
                "dimension": level["level"], "dimension_value": level["value"],
                "currency": level["currency"], "period": period, "horizon": name,
                "actual_to_date": actual if actual is not None else Decimal(0),
                "forecast": fc, "lower_80": lower_80, "upper_80": upper_80,
                "lower_95": lower_95, "upper_95": upper_95, "run_rate": run_rate,
                "budget": None, "budget_status": None, "model": model, "data_through": through,
            })
    frame = pl.DataFrame(rows, schema=SCHEMA, orient="row") if rows else pl.DataFrame(
        schema=SCHEMA)
    return apply_budgets(frame, budgets)


def budget_status(actual: Decimal, point: Decimal, upper_80: Decimal, budget: Decimal,
                  horizon: str) -> str:
    """``exceeded`` (already spent), ``over`` (forecast above), ``at_risk`` (the 80% upper
    bound above), else ``on_track``."""
    if horizon == "month_end" and actual > budget:
        return "exceeded"
    if point > budget:
        return "over"
    if upper_80 > budget:
        return "at_risk"
    return "on_track"


def _budget_for(budgets: BudgetFile, dimension: str, value: str, currency: str,
                period: str) -> Budget | None:
    found = None
    for b in budgets.budgets:
        if b.dimension != dimension or b.owner.strip().lower() != value.strip().lower():
            continue
        if b.currency is not None and b.currency != currency:
            continue
        if b.period is not None and b.period != period:
            continue
        if found is None or (b.period is not None and found.period is None):
            found = b  # a budget for the month beats the every-month one
    return found


def apply_budgets(frame: pl.DataFrame, budgets: BudgetFile) -> pl.DataFrame:
    if not budgets.budgets or frame.is_empty():
        return frame
    amounts: list[Decimal | None] = []
    statuses: list[str | None] = []
    for row in frame.iter_rows(named=True):
        b = _budget_for(budgets, row["dimension"], row["dimension_value"], row["currency"],
                        row["period"])
        if b is None:
            amounts.append(None)
            statuses.append(None)
            continue
        amounts.append(b.amount.quantize(CENT))
        statuses.append(budget_status(row["actual_to_date"], row["forecast"], row["upper_80"],
                                      b.amount, row["horizon"]))
    return frame.with_columns(pl.Series("budget", amounts, MONEY),
                              pl.Series("budget_status", statuses, pl.String))


def unmatched_budgets(frame: pl.DataFrame, budgets: BudgetFile) -> list[Budget]:
    """Budgets whose tenant or team has no series in the data (worth telling the user)."""
    have = {(d, str(v).strip().lower()) for d, v in
            frame.select("dimension", "dimension_value").unique().iter_rows()}
    return [b for b in budgets.budgets if (b.dimension, b.owner.strip().lower()) not in have]


def forecast(wh: Warehouse, *, as_of: dt.date | None = None, budgets: BudgetFile | None = None,
             settings: ForecastSettings | None = None,
             levels: tuple[str, ...] = ("total", "tenant", "service")) -> pl.DataFrame:
    """Month-end and next-month forecasts with intervals and budget status.

    Columns: ``dimension, dimension_value, currency, period, horizon (month_end |
    next_month), actual_to_date, forecast, lower_80, upper_80, lower_95, upper_95,
    run_rate, budget, budget_status, model, data_through``.
    """
    settings = settings or ForecastSettings()
    anomaly_settings = load_anomaly_settings()
    if budgets is None and settings.budgets is not None:
        budgets = load_budgets(settings.budgets)
    cells, source = load_cells(wh, cost=anomaly_settings.cost, through=as_of)
    return forecast_panel(cells, source=source, as_of=as_of, levels=levels, budgets=budgets,
                          settings=settings, anomaly_settings=anomaly_settings)


def write_forecasts(wh: Warehouse, frame: pl.DataFrame, as_of: dt.date, run_id: str) -> None:
    wh.replace_partition(FORECASTS, {"as_of": as_of.isoformat()}, frame, run_id=run_id)


def load_forecasts(wh: Warehouse, as_of: dt.date | None = None) -> pl.DataFrame:
    """The forecasts written by the latest run (or the run for ``as_of``); empty if none."""
    parts = sorted(k["as_of"] for k in wh.partitions(FORECASTS) if "as_of" in k)
    if as_of is not None:
        parts = [p for p in parts if p == as_of.isoformat()]
    if not parts:
        return pl.DataFrame(schema=SCHEMA)
    return wh.scan(FORECASTS, where={"as_of": parts[-1]}).collect()


def run_forecast(wh: Warehouse, state: State, *, as_of: dt.date | None = None,
                 budgets: BudgetFile | None = None,
                 settings: ForecastSettings | None = None) -> pl.DataFrame:
    """Forecast, write the ``forecasts`` partition for the as-of date and log the run."""
    run_id = state.start_run("forecast", None, [as_of.isoformat()] if as_of else [])
    try:
        frame = forecast(wh, as_of=as_of, budgets=budgets, settings=settings)
        through = frame["data_through"].max() if frame.height else None
        key = as_of or (through + dt.timedelta(days=load_anomaly_settings().incomplete_days)
                        if isinstance(through, dt.date) else None)
        if key is not None:
            write_forecasts(wh, frame, key, run_id)
        state.finish_run(run_id, status="succeeded", rows_out=frame.height)
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=str(exc)[:2000])
        raise
    finally:
        wh.drop_staging(run_id)
    return frame


def run_stage(wh: Warehouse, state: State) -> str:
    """The pipeline stage: forecast as of the latest data and write ``forecasts``."""
    frame = run_forecast(wh, state)
    over = frame.filter(pl.col("budget_status").is_in(["over", "exceeded"])).height
    return f"{frame.height} forecasts, {over} over budget"
