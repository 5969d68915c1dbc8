"""Data for the pages: every read goes through the signed-in viewer's scoped warehouse.

No page reads the warehouse or ``state.db`` itself: it calls the functions here, which
take the viewer from :func:`app.identity.current` (set by ``main.py`` on every run, never
by a page) and read through :func:`models.access.scoped_warehouse`, so a tenant owner's
figures, tables, charts and downloads can only ever hold their tenants' rows.

Cached functions take the warehouse path, the id of the latest successful run
(:meth:`finops.state.State.latest_run_id`) and the viewer's :class:`~models.access.View`
as their first three arguments: a new collect or allocate run gives a new id and the
next rerun reads the new data, and viewers with the same role and tenants share entries.
Feedback on anomalies and decisions on recommendations are read fresh on every run (one
small indexed query each). Money stays ``Decimal`` here, exactly as the models return it;
rounding to the cent happens only when it is shown (:mod:`app.ui`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import streamlit as st

from app import identity
from finops.errors import BadInputError, ConfigError, FinopsError
from finops.ingest import BILLING, PERIOD, REJECT, REJECTED
from finops.settings import load_settings
from finops.state import PeriodTotal, State, open_state
from finops.warehouse import Warehouse
from models import unit_economics
from models.access import Principal, ScopedWarehouse, View, resource_owners, scoped_warehouse
from models.allocation import ALLOCATED, CUBE, UNALLOCATED, allocated_rows, coverage_by_method
from models.showback import COSTS, GROUPS

STATE_DB: Final = "state.db"
TOP_UNALLOCATED: Final = 20  # resources listed per currency
LINE_ITEMS_LIMIT: Final = 50_000  # line items read for one resource and window
TAG_SAMPLE_ROWS: Final = 200_000  # rows of the latest month sampled for the tag keys offered
VALIDATION_SAMPLE_ROWS: Final = 100_000  # rows validated per billing partition by default
# The allocated dataset's column for each cost basis of the cube.
COST_COLUMN: Final = {"effective_cost": "EffectiveCost", "billed_cost": "BilledCost"}
# What the Showback page can group by, besides any tag key ("tag:<key>").
SHOWBACK_GROUPS: Final = ("tenant", "team", "cost_center", "service", "account", "provider")
TAG_PREFIX: Final = "tag:"
NONE_KEY: Final = "(none)"


def latest_run_id(home: Path) -> str | None:
    """The latest successful run, or None when nothing ever ran (no ``state.db``)."""
    path = home / STATE_DB
    if not path.is_file():  # never create a state.db just by looking
        return None
    with closing(State(path)) as state:
        return state.latest_run_id()


def viewer() -> Principal:
    """The signed-in principal of this run."""
    return identity.current()


def _keys(home: Path) -> tuple[str, str | None, View]:
    """The cache key every cached function starts with: warehouse, latest run, view."""
    return str(home), latest_run_id(home), viewer().view


def _wh(home: str, view: View) -> ScopedWarehouse:
    return scoped_warehouse(Path(home), view)


@contextmanager
def _state(home: Path) -> Iterator[State]:
    with closing(open_state(home)) as state:
        yield state


# ---- windows ---------------------------------------------------------------------------
def _month_first(period: str) -> dt.date:
    return dt.datetime.strptime(period, "%Y-%m").date()


def _month_last(first: dt.date) -> dt.date:
    return first.replace(day=calendar.monthrange(first.year, first.month)[1])


def _add_months(first: dt.date, months: int) -> dt.date:
    index = first.year * 12 + first.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def quarter_of(period: str) -> str:
    first = _month_first(period)
    return f"{first.year}-Q{(first.month - 1) // 3 + 1}"


@dataclass(frozen=True)
class Window:
    """The time a figure covers: billing months (a month or a quarter: the invoice view)
    or a custom range of charge days."""

    kind: str  # "month", "quarter" or "range"
    start: dt.date
    end: dt.date  # inclusive
    periods: tuple[str, ...]  # billing periods read
    by_day: bool  # a custom range: rows are kept by their charge day

    @property
    def label(self) -> str:
        if self.kind == "month":
            return self.start.strftime("%B %Y")
        if self.kind == "quarter":
            return f"Q{(self.start.month - 1) // 3 + 1} {self.start.year}"
        return f"{self.start:%-d %b %Y} – {self.end:%-d %b %Y}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Window:
        if self.kind == "month":
            return month_window(_add_months(self.start, -1).strftime("%Y-%m"))
        if self.kind == "quarter":
            first = _add_months(self.start, -3)
            return quarter_window(f"{first.year}-Q{(first.month - 1) // 3 + 1}")
        end = self.start - dt.timedelta(days=1)
        return range_window(end - dt.timedelta(days=self.days - 1), end)

    def month_weights(self) -> list[tuple[str, Decimal]]:
        """Each billing month the window covers and the share of it covered (budgets)."""
        if not self.by_day:
            return [(p, Decimal(1)) for p in self.periods]
        out = []
        for period in self.periods:
            first = _month_first(period)
            last = _month_last(first)
            covered = (min(last, self.end) - max(first, self.start)).days + 1
            if covered > 0:
                out.append((period, Decimal(covered) / Decimal(last.day)))
        return out


def month_window(period: str) -> Window:
    first = _month_first(period)
    return Window("month", first, _month_last(first), (period,), by_day=False)


def quarter_window(quarter: str) -> Window:
    year, q = quarter.split("-Q")
    first = dt.date(int(year), 3 * (int(q) - 1) + 1, 1)
    periods = tuple(_add_months(first, i).strftime("%Y-%m") for i in range(3))
    return Window("quarter", first, _month_last(_add_months(first, 2)), periods, by_day=False)


def range_window(start: dt.date, end: dt.date) -> Window:
    if end < start:
        start, end = end, start
    periods = []
    month = start.replace(day=1)
    while month <= end:
        periods.append(month.strftime("%Y-%m"))
        month = _add_months(month, 1)
    return Window("range", start, end, tuple(periods), by_day=True)


@st.cache_data(show_spinner=False, max_entries=32)
def _periods(home: str, run_id: str | None) -> list[str]:
    return sorted({k[PERIOD] for k in Warehouse(Path(home)).partitions(CUBE) if PERIOD in k})


def periods(home: Path) -> list[str]:
    """Billing months with allocated data, oldest first; empty for an empty warehouse.

    Which months exist is not a secret; what is in them is read through the viewer's scope.
    """
    return _periods(str(home), latest_run_id(home))


def quarters(home: Path) -> list[str]:
    """Quarters with allocated data, oldest first (``2026-Q2``)."""
    return sorted({quarter_of(p) for p in periods(home)})


@st.cache_data(show_spinner=False, max_entries=32)
def _data_days(home: str, run_id: str | None, view: View) -> tuple[dt.date, dt.date] | None:
    if not _wh(home, view).has_data(CUBE):
        return None
    found = _wh(home, view).scan(CUBE).select(pl.col("day").min().alias("lo"),
                                              pl.col("day").max().alias("hi")).collect()
    lo, hi = found.row(0) if found.height else (None, None)
    return (lo, hi) if isinstance(lo, dt.date) and isinstance(hi, dt.date) else None


def data_days(home: Path) -> tuple[dt.date, dt.date] | None:
    """The first and last charge day the viewer has cost on, or None."""
    return _data_days(*_keys(home))


# ---- grouping ---------------------------------------------------------------------------
def is_tag(group: str) -> bool:
    return group.startswith(TAG_PREFIX)


def key_column(group: str) -> str:
    """The name of a grouping's key column in the tables: the group, or ``tag``."""
    return "tag" if is_tag(group) else group


def key_expr(group: str) -> pl.Expr:
    """A grouping's value on a cube or allocated row (a tag on allocated rows only, read
    by :func:`_frame` from the billing row into a column named after the group)."""
    if is_tag(group):
        return pl.col(group)
    if group == "account":
        name, account = pl.col("SubAccountName"), pl.col("SubAccountId")
        return (pl.when(name.is_not_null() & (name != account))
                .then(pl.concat_str(name, pl.lit(" ("), account, pl.lit(")")))
                .otherwise(account))
    return pl.col(GROUPS[group]).cast(pl.String)


def _matches(group: str, value: str | None) -> pl.Expr:
    expr = key_expr(group)
    return expr.is_null() if value is None else (expr == value).fill_null(False)


def _day(dataset: str) -> pl.Expr:
    return pl.col("day") if dataset == CUBE else pl.col("ChargePeriodStart").dt.date()


def _frame(wh: Warehouse, window: Window, dataset: str, groups: Sequence[str] = (),
           columns: Sequence[str] = ()) -> pl.LazyFrame:
    """The window's cube or allocated rows; allocated rows also carry the tag ``groups``
    and the billing ``columns`` the ledger does not keep."""
    if dataset == ALLOCATED:
        tags = {g: pl.col("Tags").map.get(g.removeprefix(TAG_PREFIX)) for g in groups if is_tag(g)}
        lf = allocated_rows(wh, window.periods, columns=columns, derived=tags)
    else:
        lf = wh.scan(dataset, where={PERIOD: list(window.periods)})
    if window.by_day:
        lf = lf.filter(_day(dataset).is_between(window.start, window.end))
    return lf


def _dataset(groups: Sequence[str]) -> str:
    return ALLOCATED if any(is_tag(g) for g in groups) else CUBE


def _costs(wh: Warehouse, window: Window, group: str, cost: str,
           where: Sequence[tuple[str, str | None]] = ()) -> pl.DataFrame:
    """``key, currency, cost`` of ``window`` grouped by ``group``, within ``where``."""
    groups = [group, *(g for g, _ in where)]
    dataset = _dataset(groups)
    lf = _frame(wh, window, dataset, groups)
    for g, value in where:
        lf = lf.filter(_matches(g, value))
    column = COST_COLUMN[cost]
    return (lf.group_by(key_expr(group).alias(key_column(group)),
                        pl.col("BillingCurrency").alias("currency"))
            .agg(pl.col(column).sum().alias("cost"))
            .collect(engine="streaming"))


def _compare(now: pl.DataFrame, before: pl.DataFrame, key: str) -> pl.DataFrame:
    """Now beside before (as :func:`models.showback.compare`): cost, previous_cost, change,
    change_pct (None when the previous cost is zero), largest cost first."""
    keys = [key, "currency"]
    before = before.rename({"cost": "previous_cost"})
    if now.is_empty() and before.is_empty():
        money = now.schema["cost"]
        return pl.DataFrame(schema={key: pl.String, "currency": pl.String, "cost": money,
                                    "previous_cost": money, "change": money,
                                    "change_pct": pl.Float64})
    return (
        now.join(before, on=keys, how="full", coalesce=True, nulls_equal=True)
        .with_columns(pl.col("cost", "previous_cost").fill_null(0))
        .with_columns((pl.col("cost") - pl.col("previous_cost")).alias("change"))
        .with_columns(
            pl.when(pl.col("previous_cost") != 0)
            .then(pl.col("change").cast(pl.Float64) / pl.col("previous_cost").cast(pl.Float64))
            .otherwise(None).alias("change_pct"))
        .sort("cost", key, descending=[True, False], nulls_last=True)
    )


# ---- budgets ---------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=4)
def _budget_file(path: str | None, stamp: float | None) -> Any:
    from models.forecast import BudgetFile, load_budgets

    return load_budgets(Path(path)) if path else BudgetFile()


def _budgets_key(home: Path) -> tuple[str | None, float | None]:
    from models.forecast import ForecastSettings

    path = load_settings(home=home).forecast_budgets or ForecastSettings().budgets
    if path is None:
        return None, None
    try:
        return str(path), path.stat().st_mtime
    except OSError:
        raise ConfigError(f"{path}: the budgets file does not exist",
                          hint="Fix FINOPS_FORECAST_BUDGETS (or FINOPS_FORECAST__BUDGETS).") from None


def budgets(home: Path) -> Any:
    """The monthly budgets (:class:`models.forecast.BudgetFile`) the forecast stage uses:
    ``FINOPS_FORECAST_BUDGETS`` / ``forecast_budgets``, else ``FINOPS_FORECAST__BUDGETS``."""
    return _budget_file(*_budgets_key(home))


def budget_amount(budget_file: Any, dimension: str, owner: str | None, currency: str,
                  window: Window) -> Decimal | None:
    """The budget of ``owner`` (a tenant or team) for ``window``: each month's budget (a
    budget for the month beats the every-month one), prorated by days for a custom range."""
    if owner is None:
        return None
    total, found = Decimal(0), False
    for period, weight in window.month_weights():
        best = None
        for b in budget_file.budgets:
            if b.dimension != dimension or b.owner.strip().lower() != owner.strip().lower():
                continue
            if (b.currency is not None and b.currency != currency) or (
                    b.period is not None and b.period != period):
                continue
            if best is None or (b.period is not None and best.period is None):
                best = b
        if best is not None:
            total += best.amount * weight
            found = True
    return total if found else None


# ---- showback -------------------------------------------------------------------------
@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    cost: Decimal
    previous_cost: Decimal
    unallocated_cost: Decimal
    unallocated_share: float  # of ``cost``; 0.0 when the window's cost is zero
    budget: Decimal | None  # the budgets of the rows that have one (tenant or team grouping)
    budgeted_cost: Decimal  # the cost of those rows


@dataclass(frozen=True)
class Showback:
    """One window of showback on one cost basis, beside the window before."""

    window: Window
    previous: Window
    has_previous: bool  # whether the previous window has allocated data at all
    cost: str  # "effective_cost" or "billed_cost"
    group: str
    totals: tuple[CurrencyTotal, ...]  # one per billing currency, the largest cost first
    table: pl.DataFrame  # <key>, currency, cost, previous_cost, change, change_pct, budget
    by_tenant: pl.DataFrame  # tenant, currency, cost, previous_cost, change, change_pct
    by_service: pl.DataFrame  # service, currency, cost, previous_cost, change, change_pct
    top_unallocated: pl.DataFrame  # ProviderName, ServiceName, ResourceId, BillingCurrency, cost

    @property
    def currencies(self) -> list[str]:
        return [t.currency for t in self.totals]

    def total(self, currency: str) -> CurrencyTotal:
        return next(t for t in self.totals if t.currency == currency)

    @property
    def period(self) -> str:  # the month of a month window
        return self.window.periods[0]

    @property
    def has_budgets(self) -> bool:
        return "budget" in self.table.columns and self.table["budget"].is_not_null().any()


def _with_budgets(table: pl.DataFrame, group: str, window: Window, budget_file: Any) -> pl.DataFrame:
    if group not in ("tenant", "team") or not budget_file.budgets:
        return table
    amounts = [budget_amount(budget_file, group, row[group], row["currency"], window)
               for row in table.iter_rows(named=True)]
    return table.with_columns(pl.Series("budget", amounts, pl.Decimal(38, 12)))


def _top_unallocated(wh: Warehouse, window: Window, cost: str) -> pl.DataFrame:
    column = COST_COLUMN[cost]
    ranked = (
        _frame(wh, window, ALLOCATED)
        .filter(pl.col("x_AllocationMethod") == UNALLOCATED)
        .group_by("ProviderName", "ServiceName", "ResourceId", "BillingCurrency")
        .agg(pl.col(column).sum().alias("cost"))
        .collect(engine="streaming")
    )
    # Each currency gets its own top list: a small second currency is never crowded out.
    return (ranked.sort("cost", "ResourceId", descending=[True, False], nulls_last=True)
            .group_by("BillingCurrency", maintain_order=True).head(TOP_UNALLOCATED)
            .select("ProviderName", "ServiceName", "ResourceId", "BillingCurrency", "cost")
            .sort("cost", descending=True, maintain_order=True))


@st.cache_data(show_spinner="Reading allocated cost…", max_entries=64)
def _showback(home: str, run_id: str | None, view: View, window: Window, cost: str,
              group: str, budgets_key: tuple[str | None, float | None]) -> Showback:
    wh = _wh(home, view)
    budget_file = _budget_file(*budgets_key)
    available = set(_periods(home, run_id))
    previous = window.previous()
    has_previous = bool(available & set(previous.periods))

    def compare(by: str) -> pl.DataFrame:
        now = _costs(wh, window, by, cost)
        before = _costs(wh, previous, by, cost) if has_previous else now.clear()
        return _compare(now, before, key_column(by))

    by_tenant = compare("tenant")
    by_service = compare("service")
    table = by_tenant if group == "tenant" else by_service if group == "service" else compare(group)
    table = _with_budgets(table, group, window, budget_file)
    unallocated = by_tenant.filter(pl.col("tenant") == UNALLOCATED)
    totals = []
    for row in by_tenant.group_by("currency").agg(pl.col("cost").sum(),
                                                    pl.col("previous_cost").sum()).iter_rows(named=True):
        currency = row["currency"]
        cost_now = row["cost"] or Decimal(0)
        un = unallocated.filter(pl.col("currency") == currency)["cost"].sum() or Decimal(0)
        rows = table.filter(pl.col("currency") == currency)
        budgeted = rows.filter(pl.col("budget").is_not_null()) if "budget" in rows.columns else None
        totals.append(CurrencyTotal(
            currency=currency, cost=cost_now, previous_cost=row["previous_cost"] or Decimal(0),
            unallocated_cost=un,
            unallocated_share=float(un / cost_now) if cost_now else 0.0,
            budget=(budgeted["budget"].sum() if budgeted is not None and budgeted.height else None),
            budgeted_cost=(budgeted["cost"].sum() if budgeted is not None and budgeted.height
                           else Decimal(0)),
        ))
    top = (_top_unallocated(wh, window, cost) if view.everything
           else pl.DataFrame(schema={"ProviderName": pl.String, "ServiceName": pl.String,
                                     "ResourceId": pl.String, "BillingCurrency": pl.String,
                                     "cost": pl.Decimal(38, 12)}))
    return Showback(
        window=window, previous=previous, has_previous=has_previous, cost=cost, group=group,
        # The main billing currency first: amounts of different currencies are compared
        # only to order the currency picker, never added.
        totals=tuple(sorted(totals, key=lambda t: (-t.cost, t.currency))),
        table=table, by_tenant=by_tenant, by_service=by_service, top_unallocated=top,
    )


def showback(home: Path, window: Window | str, cost: str = "effective_cost",
             group: str = "tenant") -> Showback:
    """Showback for a window (or a month, ``YYYY-MM``) grouped by ``group``."""
    if cost not in COSTS:
        raise ValueError(f"cost {cost!r} is not one of {', '.join(COSTS)}")
    if group not in SHOWBACK_GROUPS and not is_tag(group):
        raise BadInputError(f"cannot group by {group!r}")
    win = month_window(window) if isinstance(window, str) else window
    return _showback(*_keys(home), win, cost, group, _budgets_key(home))


@st.cache_data(show_spinner=False, max_entries=16)
def _tag_keys(home: str, run_id: str | None, view: View) -> list[str]:
    wh = _wh(home, view)
    months = _periods(home, run_id)
    if not months:
        return []
    sample = (allocated_rows(wh, [months[-1]], derived={"key": pl.col("Tags").map.keys()})
              .select("key").head(TAG_SAMPLE_ROWS))
    counts = (sample.explode("key")
              .drop_nulls().group_by("key").len().sort("len", "key", descending=[True, False])
              .collect())
    return [str(k) for k in counts["key"].head(60).to_list() if str(k).strip()]


def tag_keys(home: Path) -> list[str]:
    """Tag keys seen on the latest month's allocated rows (a sample), most used first."""
    return _tag_keys(*_keys(home))


# ---- drill down ---------------------------------------------------------------------------
DrillPath = tuple[tuple[str, str | None], ...]  # (group, value) pairs, outermost first


@st.cache_data(show_spinner="Drilling down…", max_entries=64)
def _drill(home: str, run_id: str | None, view: View, window: Window, cost: str,
           path: DrillPath, level: str) -> pl.DataFrame:
    wh = _wh(home, view)
    return (_costs(wh, window, level, cost, path)
            .sort("cost", key_column(level), descending=[True, False], nulls_last=True))


def drill(home: Path, window: Window, cost: str, path: DrillPath, level: str) -> pl.DataFrame:
    """Cost of ``window`` within ``path`` (pairs of group and value) by ``level``:
    ``<level>, currency, cost``, largest first."""
    return _drill(*_keys(home), window, cost, path, level)


@st.cache_data(show_spinner="Reading the resources…", max_entries=64)
def _resources(home: str, run_id: str | None, view: View, window: Window, cost: str,
               path: DrillPath) -> pl.DataFrame:
    lf = _frame(_wh(home, view), window, ALLOCATED, [g for g, _ in path])
    for group, value in path:
        lf = lf.filter(_matches(group, value))
    column = COST_COLUMN[cost]
    return (
        lf.group_by(pl.col("ResourceId").fill_null(NONE_KEY).alias("resource"),
                    pl.col("BillingCurrency").alias("currency"))
        .agg(pl.col("ResourceName").drop_nulls().first().alias("name"),
             pl.col(column).sum().alias("cost"),
             pl.len().alias("rows"),
             pl.col("x_AllocationMethod").drop_nulls().unique().sort().str.join(", ").alias("methods"),
             pl.col("x_AllocationRule").drop_nulls().unique().sort().str.join(", ").alias("rules"))
        .sort("cost", "resource", descending=[True, False], nulls_last=True)
        .collect(engine="streaming")
    )


def resources(home: Path, window: Window, cost: str, path: DrillPath) -> pl.DataFrame:
    """Resources within ``path``: ``resource, currency, name, cost, rows, methods, rules``;
    ``methods`` and ``rules`` say how their cost was allocated (x_AllocationMethod/Rule)."""
    return _resources(*_keys(home), window, cost, path)


LINE_COLUMNS: Final = ("ChargePeriodStart", "BilledCost", "EffectiveCost", "x_AllocationMethod",
                       "x_AllocationRule", "x_AllocationShare", "ChargeCategory",
                       "ChargeDescription", "ConsumedQuantity", "ConsumedUnit", "SkuId",
                       "BillingCurrency", "x_Tenant", "x_SourceFile", "x_SourceRow")


@st.cache_data(show_spinner="Reading the line items…", max_entries=32)
def _line_items(home: str, run_id: str | None, view: View, window: Window, path: DrillPath,
                resource: str | None) -> pl.DataFrame:
    lf = _frame(_wh(home, view), window, ALLOCATED, [g for g, _ in path], LINE_COLUMNS)
    for group, value in path:
        lf = lf.filter(_matches(group, value))
    lf = lf.filter(pl.col("ResourceId").is_null() if resource is None
                   else pl.col("ResourceId") == resource)
    present = lf.collect_schema().names()
    columns = [c for c in LINE_COLUMNS if c in present]
    return (lf.select(columns).sort("ChargePeriodStart", nulls_last=True)
            .head(LINE_ITEMS_LIMIT).collect(engine="streaming"))


def line_items(home: Path, window: Window, path: DrillPath, resource: str | None) -> pl.DataFrame:
    """The allocated line items of one resource within ``path`` (at most
    :data:`LINE_ITEMS_LIMIT`), each with its allocation method, rule and share."""
    return _line_items(*_keys(home), window, path, resource)


# ---- trends and forecast ------------------------------------------------------------------
@st.cache_data(show_spinner="Reading daily cost…", max_entries=64)
def _daily(home: str, run_id: str | None, view: View, start: dt.date, end: dt.date,
           stack: str, cost: str, focus: tuple[str, str] | None) -> pl.DataFrame:
    window = range_window(start, end)
    lf = _frame(_wh(home, view), window, CUBE)
    if focus is not None:
        lf = lf.filter(_matches(focus[0], focus[1]))
    return (lf.group_by("day", key_expr(stack).alias("key"), pl.col("BillingCurrency").alias("currency"))
            .agg(pl.col(COST_COLUMN[cost]).sum().alias("cost"))
            .sort("day", "key", nulls_last=True).collect())


def daily(home: Path, start: dt.date, end: dt.date, stack: str, cost: str,
          focus: tuple[str, str] | None = None) -> pl.DataFrame:
    """Cost per charge day and ``stack`` group (``day, key, currency, cost``) from the cube,
    optionally within one tenant or team (``focus``)."""
    return _daily(*_keys(home), start, end, stack, cost, focus)


@st.cache_data(show_spinner=False, max_entries=32)
def _forecasts(home: str, run_id: str | None, view: View) -> pl.DataFrame:
    from models.forecast import load_forecasts

    return load_forecasts(_wh(home, view))


def forecasts(home: Path) -> pl.DataFrame:
    """The latest forecasts the viewer may see (:func:`models.forecast.load_forecasts`)."""
    return _forecasts(*_keys(home))


@st.cache_data(show_spinner=False, max_entries=32)
def _teams(home: str, run_id: str | None, view: View) -> list[str]:
    if not view.everything:
        return []  # a team's figures mix its tenants
    found = _wh(home, view).scan(CUBE).select(pl.col("x_Team").unique()).collect().to_series()
    return sorted(str(t) for t in found.drop_nulls().to_list() if t != UNALLOCATED)


def teams(home: Path) -> list[str]:
    return _teams(*_keys(home))


# ---- anomalies ------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def _anomalies(home: str, run_id: str | None, view: View) -> pl.DataFrame:
    from models.anomalies import load_anomalies

    return load_anomalies(_wh(home, view))


def anomalies(home: Path) -> pl.DataFrame:
    """The latest anomaly events the viewer may see, with the latest feedback on each
    (``label, labelled_by, labelled_at, label_comment``) read fresh from state.db."""
    events = _anomalies(*_keys(home))
    feedback = anomaly_feedback(home, events["anomaly_id"].to_list())
    rows = [{"anomaly_id": k, "label_now": f.label, "labelled_by": f.who,
             "labelled_at": f.created_at, "label_comment": f.comment} for k, f in feedback.items()]
    fb = pl.DataFrame(rows, schema={"anomaly_id": pl.String, "label_now": pl.String,
                                    "labelled_by": pl.String, "labelled_at": pl.String,
                                    "label_comment": pl.String})
    return (events.join(fb, on="anomaly_id", how="left")
            .with_columns(pl.coalesce("label_now", "label").alias("label")).drop("label_now"))


def anomaly_feedback(home: Path, visible: Sequence[str]) -> dict[str, Any]:
    """The latest feedback per anomaly id, for the ``visible`` ids only."""
    if not (home / STATE_DB).is_file() or not visible:
        return {}
    from models.anomalies import load_feedback

    wanted = set(visible)
    with _state(home) as state:
        return {f.event.anomaly_id: f for f in load_feedback(state) if f.event.anomaly_id in wanted}


@dataclass(frozen=True)
class Band:
    """A series around an anomaly: actual cost, what the model expected and the range
    outside which it alerts (expected ± threshold × robust sigma)."""

    frame: pl.DataFrame  # day, actual, expected, lower, upper
    threshold: float


@st.cache_data(show_spinner=False, max_entries=8)
def _analysis(home: str, run_id: str | None, view: View) -> Any:
    from models.anomalies import analyse, load_anomaly_settings

    path = load_settings(home=Path(home)).anomaly_thresholds
    return analyse(_wh(home, view), None, settings=load_anomaly_settings(path), register=False)


def anomaly_band(home: Path, event: dict[str, Any]) -> Band | None:
    """The anomaly's series with its expected band, or None when the series is not found
    (the data changed since detection)."""
    try:
        analysis = _analysis(*_keys(home))
    except FinopsError:
        return None
    panel, result = analysis.panel, analysis.result
    value = str(event["dimension_value"])
    currency = event.get("currency")
    suffix = f" ({currency})"
    if currency and value.endswith(suffix):
        value = value.removesuffix(suffix)
    found = panel.series.filter((pl.col("level") == event["dimension"]) & (pl.col("value") == value)
                                & (pl.col("currency") == currency if currency else pl.lit(True)))
    if found.is_empty():
        return None
    sid = int(found["sid"][0])
    threshold = float(analysis.settings.z_threshold)
    expected = result.expected[sid]
    spread = threshold * result.sigma[sid]
    frame = pl.DataFrame({
        "day": panel.days, "actual": panel.values[sid], "expected": expected,
        "lower": np.maximum(expected - spread, 0.0), "upper": expected + spread,
    }).with_columns(pl.col("actual", "expected", "lower", "upper").fill_nan(None))
    return Band(frame, threshold)


def label_anomaly(home: Path, anomaly_id: str, label: str, comment: str | None) -> Any:
    """Record feedback on an anomaly the viewer can see, as the viewer."""
    principal = viewer()
    if not principal.can_label_anomalies:
        raise PermissionError(f"{principal.label} users cannot label anomalies")
    if anomaly_id not in set(_anomalies(*_keys(home))["anomaly_id"].to_list()):
        raise PermissionError(f"anomaly {anomaly_id} is not one you can see")
    from models.anomalies import record_feedback

    with _state(home) as state:
        return record_feedback(state, anomaly_id, label, who=principal.email,
                               comment=(comment or "").strip() or None)


# ---- recommendations ------------------------------------------------------------------------
def recommendations_available() -> bool:
    """Whether the right-sizing models are installed (they arrive with their own issue)."""
    try:
        from models.rightsizing import lifecycle, run  # noqa: F401
    except ImportError:
        return False
    return True


@st.cache_data(show_spinner="Reading recommendations…", max_entries=32)
def _recommendations(home: str, run_id: str | None, view: View) -> pl.DataFrame:
    from models.rightsizing.run import load_recommendations

    wh = _wh(home, view)
    recs = load_recommendations(wh)
    owners = resource_owners(wh, recs["resource_id"].to_list()).with_columns(
        pl.col("tenants").list.join(", ").alias("tenant"),
        pl.col("accounts").list.join(", ").alias("account"),
    ).select("resource_id", "tenant", "account")
    return recs.join(owners, on="resource_id", how="left")


def recommendations(home: Path) -> pl.DataFrame:
    """The latest recommendations the viewer may see, biggest savings first: the DESIGN
    columns, ``summary, provider, region, currency, tenant, account`` (from the resource's
    allocated cost) and the decision now in force: ``status, decided_by, decided_at,
    comment`` (read fresh from state.db)."""
    from models.rightsizing.lifecycle import load_decisions
    from models.rightsizing.run import with_status
    from models.rightsizing.settings import load_rightsizing_settings

    recs = _recommendations(*_keys(home))
    if recs.is_empty():
        decisions: dict[str, Any] = {}
    else:
        with _state(home) as state:
            decisions = load_decisions(state)
    threshold = load_rightsizing_settings().material_change
    return with_status(recs, decisions, threshold).sort(
        ["monthly_savings", "recommendation_id"], descending=[True, False], nulls_last=True)


def decision_history(home: Path, recommendation_id: str) -> list[dict[str, Any]]:
    """Every decision on a recommendation the viewer can see, oldest first."""
    if recommendation_id not in set(_recommendations(*_keys(home))["recommendation_id"].to_list()):
        return []
    from models.rightsizing.lifecycle import decision_log

    with _state(home) as state:
        return decision_log(state, recommendation_id)


def decide(home: Path, recommendation_id: str, status: str, comment: str | None) -> Any:
    """Accept, dismiss or mark done a recommendation, as the viewer (platform only)."""
    principal = viewer()
    if not principal.can_decide_recommendations:
        raise PermissionError("only the platform team decides on recommendations")
    from models.rightsizing.run import decide as record

    wh = _wh(str(home), principal.view)  # the decision is checked against what they can see
    with _state(home) as state:
        return record(wh, state, recommendation_id, status, who=principal.email,
                      comment=(comment or "").strip() or None)


# ---- unit economics -----------------------------------------------------------------------
@dataclass(frozen=True)
class UnitEconomics:
    totals: pl.DataFrame  # currency, the unit columns, idle_cost
    by_tenant: pl.DataFrame
    by_warehouse: pl.DataFrame
    daily: pl.DataFrame
    top_queries: pl.DataFrame
    top_recurring: pl.DataFrame


@st.cache_data(show_spinner=False, max_entries=16)
def _query_months(home: str, run_id: str | None, view: View) -> list[str]:
    wh = _wh(home, view)
    if not wh.has_data(unit_economics.QUERY_COST):
        return []
    return unit_economics.months(wh.scan(unit_economics.QUERY_COST))


def query_months(home: Path) -> list[str]:
    """Months with warehouse query cost the viewer can see, oldest first."""
    return _query_months(*_keys(home))


@st.cache_data(show_spinner="Reading query cost…", max_entries=32)
def _unit_economics(home: str, run_id: str | None, view: View, start: dt.date,
                    end: dt.date) -> UnitEconomics:
    lf = unit_economics.between(_wh(home, view).scan(unit_economics.QUERY_COST), start, end)
    return UnitEconomics(
        totals=unit_economics.totals(lf),
        by_tenant=unit_economics.by(lf, "tenant"),
        by_warehouse=unit_economics.by(lf, "warehouse"),
        daily=unit_economics.daily(lf),
        top_queries=unit_economics.top_queries(lf),
        top_recurring=unit_economics.top_recurring(lf),
    )


def unit_costs(home: Path, start: dt.date, end: dt.date) -> UnitEconomics:
    return _unit_economics(*_keys(home), start, end)


# ---- data health ----------------------------------------------------------------------------
@dataclass(frozen=True)
class RunLog:
    runs: list[dict[str, Any]]  # State.runs() rows, newest first
    totals: dict[str, list[PeriodTotal]]  # run_id -> its per-period totals (finance and platform)


def run_log(home: Path, limit: int = 20) -> RunLog:
    """The latest runs and (for viewers of every tenant) their per-period totals, read
    fresh on every rerun.

    Not cached: this is the live log (a running or failed run does not change the
    latest successful run id the cache is keyed on), and it is one small indexed query.
    """
    path = home / STATE_DB
    if not path.is_file():
        return RunLog([], {})
    with closing(State(path)) as state:
        runs = state.runs(limit=limit)
        if not viewer().view.sees_pipeline:
            # Stage, status and times only: counts and messages are organisation-wide (a
            # failed allocation names periods' totals, a config error may name a tenant).
            hidden = {"rows_in": None, "rows_out": None, "rows_rejected": None, "message": None,
                      "inputs": None}
            return RunLog([{**r, **hidden} for r in runs], {})
        return RunLog(runs, {r["run_id"]: state.run_totals(r["run_id"]) for r in runs})


@dataclass(frozen=True)
class Reconciliation:
    period: str
    currency: str
    collected_billed: Decimal
    collected_effective: Decimal
    allocated_billed: Decimal | None
    allocated_effective: Decimal | None

    @property
    def ok(self) -> bool | None:
        if self.allocated_billed is None or self.allocated_effective is None:
            return None
        cent = Decimal("0.005")
        return (abs(self.collected_billed - self.allocated_billed) < cent
                and abs(self.collected_effective - self.allocated_effective) < cent)


def reconciliation(home: Path) -> list[Reconciliation]:
    """Per billing month and currency: the latest collect of each billing source beside
    the latest allocate run's totals (finance and platform only)."""
    path = home / STATE_DB
    if not path.is_file() or not viewer().view.sees_pipeline:
        return []
    sources = {k["source"] for k in Warehouse(home).partitions(BILLING) if "source" in k}
    collected: dict[tuple[str, str], list[Decimal]] = {}
    allocated: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
    with closing(State(path)) as state:
        seen: set[tuple[str, str]] = set()  # (source, period): the newest collect wins
        for run in state.runs(stage="collect", limit=500):
            if run["status"] != "succeeded" or run["source"] not in sources:
                continue
            for t in state.run_totals(run["run_id"]):
                if (run["source"], t.period) in seen:
                    continue
                sums = collected.setdefault((t.period, t.currency), [Decimal(0), Decimal(0)])
                sums[0] += t.billed_cost
                sums[1] += t.effective_cost
            seen |= {(run["source"], t.period) for t in state.run_totals(run["run_id"])}
        for run in state.runs(stage="allocate", limit=50):
            if run["status"] != "succeeded":
                continue
            for t in state.run_totals(run["run_id"]):
                allocated.setdefault((t.period, t.currency), (t.billed_cost, t.effective_cost))
    out = []
    for key in sorted(set(collected) | set(allocated), reverse=True):
        billed, effective = collected.get(key, [Decimal(0), Decimal(0)])
        alloc = allocated.get(key)
        out.append(Reconciliation(key[0], key[1], billed, effective,
                                  alloc[0] if alloc else None, alloc[1] if alloc else None))
    return out


def freshness(home: Path) -> list[Any]:
    """Per billing source: the latest charge day, last successful and failed collect.

    Dates and run times only, no money and no tenant: every viewer may see how fresh
    the data is, so this reads the (unscoped) billing partitions' latest day.
    """
    path = home / STATE_DB
    if not path.is_file():
        return []
    return _freshness(str(home), latest_run_id(home), _collect_stamp(home))


def _collect_stamp(home: Path) -> str | None:
    with closing(State(home / STATE_DB)) as state:
        runs = state.runs(stage="collect", limit=1)
    return f"{runs[0]['run_id']}:{runs[0]['status']}" if runs else None


@st.cache_data(show_spinner=False, max_entries=16)
def _freshness(home: str, run_id: str | None, stamp: str | None) -> list[Any]:
    from reports.sources import freshness as source_freshness

    with closing(State(Path(home) / STATE_DB)) as state:
        return source_freshness(Warehouse(Path(home)), state)


@st.cache_data(show_spinner="Measuring tag coverage…", max_entries=16)
def _tag_coverage(home: str, run_id: str | None, view: View, period: str) -> pl.DataFrame:
    wh = _wh(home, view)
    usage = pl.col("ChargeCategory") == "Usage"
    cost = pl.col("EffectiveCost").cast(pl.Float64).alias("cost")
    # The total needs no billing column: only the tagged side reads tags back.
    total = (wh.scan(ALLOCATED, where={PERIOD: period}).filter(usage)
             .group_by("BillingCurrency").agg(cost.sum().alias("total")))
    lf = (allocated_rows(wh, [period], derived={"key": pl.col("Tags").map.keys()}).filter(usage)
          .select("key", "BillingCurrency", cost))
    tagged = (lf.explode("key").drop_nulls("key")
              .group_by("key", "BillingCurrency")
              .agg(pl.col("cost").sum().alias("tagged_cost"), pl.len().alias("rows")))
    return (tagged.join(total, on="BillingCurrency")
            .with_columns((pl.col("tagged_cost") / pl.col("total")).alias("share"))
            .rename({"BillingCurrency": "currency"})
            .sort("tagged_cost", "key", descending=[True, False])
            .collect(engine="streaming"))


def tag_coverage(home: Path, period: str) -> pl.DataFrame:
    """Per tag key and currency: the share of the month's usage cost (effective) whose
    rows carry the key: ``key, currency, tagged_cost, rows, total, share``."""
    return _tag_coverage(*_keys(home), period)


@st.cache_data(show_spinner=False, max_entries=16)
def _coverage(home: str, run_id: str | None, view: View, period: str) -> pl.DataFrame:
    return coverage_by_method(_wh(home, view), [period])


def allocation_coverage(home: Path, period: str) -> pl.DataFrame:
    """Effective cost by allocation method: ``method, BillingCurrency, effective_cost, share``."""
    return _coverage(*_keys(home), period)


@st.cache_data(show_spinner="Validating against FOCUS 1.2…", max_entries=8)
def _validation(home: str, run_id: str | None, view: View, sample: int | None) -> pl.DataFrame:
    from finops.validate import validate

    wh = _wh(home, view)
    rows = []
    for keys in wh.partitions(BILLING):
        lf = wh.scan(BILLING, where=keys)
        checked = lf.head(sample) if sample else lf
        counted = checked.select(pl.len()).collect().item()
        for v in validate(checked):
            rows.append({"source": keys.get("source"), "period": keys.get(PERIOD),
                         "rule": v.rule_id, "column": v.column, "rows": v.rows,
                         "detail": v.detail, "checked_rows": counted})
    schema = {"source": pl.String, "period": pl.String, "rule": pl.String, "column": pl.String,
              "rows": pl.Int64, "detail": pl.String, "checked_rows": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row").sort("period", "source", "rule",
                                                                 descending=[True, False, False])


def validation(home: Path, *, full: bool = False) -> pl.DataFrame:
    """FOCUS 1.2 violations per billing partition (a sample of each unless ``full``):
    ``source, period, rule, column, rows, detail, checked_rows``; finance and platform."""
    if not viewer().view.sees_pipeline:
        return pl.DataFrame()
    return _validation(*_keys(home), None if full else VALIDATION_SAMPLE_ROWS)


@st.cache_data(show_spinner=False, max_entries=8)
def _rejected(home: str, run_id: str | None, view: View) -> tuple[pl.DataFrame, pl.DataFrame]:
    wh = _wh(home, view)
    if not wh.has_data(REJECTED):
        empty = pl.DataFrame()
        return empty, empty
    lf = wh.scan(REJECTED)
    names = lf.collect_schema().names()
    reason = pl.col(REJECT).str.split("; ").explode().str.replace(r" '.*", "").alias("reason")
    summary = (lf.select("source", reason).group_by("source", "reason").len("rows")
               .sort("rows", descending=True).collect())
    wanted = [c for c in ("source", "run", "x_SourceFile", "x_SourceRow", REJECT, "BilledCost",
                          "BillingCurrency", "ChargePeriodStart", "ServiceName", "ResourceId")
              if c in names]
    sample = lf.select(wanted).head(5_000).collect()
    return summary, sample


def rejected(home: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows set aside at collection: ``(source, reason, rows)`` counts and up to 5,000 of
    the rows themselves; finance and platform only (the rows are organisation-wide)."""
    return _rejected(*_keys(home))


def month_of(day: dt.date) -> str:
    return day.strftime("%Y-%m")


def json_items(text: str | None) -> list[tuple[str, str]]:
    """A JSON object's items as (key, value text) pairs, for an evidence table."""
    if not text:
        return []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return [("evidence", text)]
    if not isinstance(value, dict):
        return [("evidence", json.dumps(value))]
    return [(str(k), v if isinstance(v, str) else json.dumps(v, default=str)) for k, v in value.items()]
