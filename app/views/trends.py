"""Trends and forecast: daily cost stacked by tenant or service, where the month will land
(the forecast with its 80% and 95% ranges) and the budget."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import streamlit as st

from app import data, ui
from app.context import warehouse_home
from app.keys import Keys

st.title("Trends and forecast")
st.caption("Daily cost from the allocated cube, and where this month will land: the forecast "
           "with its likely range, against the budget.")

home = warehouse_home()
viewer = data.viewer()
days = data.data_days(home)
if days is None:
    st.info(f"There is no allocated cost in the warehouse `{home}`"
            + ("" if viewer.everything else " for your tenants") + " yet.\n\n"
            "Run `make demo`, or `finops collect … && finops allocate && finops forecast`.",
            icon=":material/info:")
    st.stop()
first_day, last_day = days

WINDOWS = {"month": "This month", "30": "30 days", "90": "90 days", "182": "6 months"}
STACKS = ("tenant", "service", "provider", "team", "account")

window_col, stack_col, focus_col, basis_col, currency_col = st.columns(
    [4, 2, 2, 2, 1], vertical_alignment="bottom")
window_choice: str = window_col.segmented_control(
    "Window", list(WINDOWS), format_func=WINDOWS.__getitem__, default="month", required=True,
    key=Keys.TREND_WINDOW) or "month"
stacks = [s for s in STACKS if viewer.everything or s != "team"]
stack: str = stack_col.selectbox("Stack by", stacks, format_func=ui.group_label,
                                 key=Keys.TREND_STACK) or "tenant"
tenants = sorted({t for t in data.drill(home, data.month_window(last_day.strftime("%Y-%m")),
                                         "effective_cost", (), "tenant")["tenant"].to_list()
                  if t is not None})
focus_options: list[tuple[str, str] | None] = [("tenant", t) for t in tenants]
focus_options += [("team", t) for t in data.teams(home)]
if viewer.everything or len(tenants) != 1:
    focus_options.insert(0, None)
if st.session_state.get(Keys.TREND_FOCUS) not in focus_options:
    st.session_state.pop(Keys.TREND_FOCUS, None)
focus: tuple[str, str] | None = focus_col.selectbox(
    "Show", focus_options, key=Keys.TREND_FOCUS,
    format_func=lambda f: ("All tenants" if viewer.everything else "All my tenants") if f is None
    else f"{ui.group_label(f[0])}: {f[1]}")
cost: str = basis_col.segmented_control(
    "Cost basis", list(ui.COST_LABELS), format_func=ui.COST_LABELS.__getitem__,
    default="effective_cost", required=True, key=Keys.TREND_COST, help=ui.COST_HELP,
) or "effective_cost"

month_start = last_day.replace(day=1)
month_end = data.month_window(last_day.strftime("%Y-%m")).end
start = month_start if window_choice == "month" else max(
    first_day, last_day - dt.timedelta(days=int(window_choice) - 1))
daily = data.daily(home, start, last_day, stack, cost, focus)
currencies = (daily.group_by("currency").agg(pl.col("cost").sum())
              .sort("cost", descending=True)["currency"].to_list())
if not currencies:
    st.info("No cost in this window. Pick a longer one.", icon=":material/info:")
    st.stop()
if st.session_state.get(Keys.TREND_CURRENCY) not in currencies:
    st.session_state.pop(Keys.TREND_CURRENCY, None)
currency: str = currency_col.selectbox("Currency", currencies, key=Keys.TREND_CURRENCY,
                                       disabled=len(currencies) == 1) or currencies[0]

# ---- the forecast and budget for what is shown -------------------------------------------
forecasts = data.forecasts(home)
month = month_start.strftime("%Y-%m")
dimension, value = (focus if focus is not None else
                    ("total", "total") if viewer.everything else (None, None))
forecast = None
if dimension is not None and not forecasts.is_empty():
    found = forecasts.filter((pl.col("dimension") == dimension) & (pl.col("dimension_value") == value)
                             & (pl.col("currency") == currency) & (pl.col("horizon") == "month_end")
                             & (pl.col("period") == month))
    forecast = found.row(0, named=True) if found.height else None
next_month = None
if dimension is not None and not forecasts.is_empty():
    found = forecasts.filter((pl.col("dimension") == dimension) & (pl.col("dimension_value") == value)
                             & (pl.col("currency") == currency) & (pl.col("horizon") == "next_month"))
    next_month = found.row(0, named=True) if found.height else None

budget_file = data.budgets(home)
month_window = data.month_window(month)
if focus is not None:
    budget = data.budget_amount(budget_file, focus[0], focus[1], currency, month_window)
    budget_label = "Budget"
else:
    amounts = [data.budget_amount(budget_file, "tenant", t, currency, month_window) for t in tenants]
    known = [a for a in amounts if a is not None]
    budget = sum(known, Decimal(0)) if known else None
    budget_label = "Sum of tenant budgets"

mtd = (data.daily(home, month_start, last_day, "tenant", cost, focus)
       .filter(pl.col("currency") == currency)
       .group_by("day").agg(pl.col("cost").sum()).sort("day"))
mtd_total = mtd["cost"].sum() if mtd.height else Decimal(0)

# ---- headline ----------------------------------------------------------------------------
cols = st.columns(4)
cols[0].metric(f"Month to date, {month_start:%B %Y}", ui.money(mtd_total, currency),
               delta=f"through {last_day:%-d %b}", delta_color="off", delta_arrow="off",
               border=True)
if forecast is not None:
    cols[1].metric(
        "Forecast, month end", ui.money(forecast["forecast"], currency),
        delta=f"80%: {ui.money(forecast['lower_80'], currency)} – "
              f"{ui.money(forecast['upper_80'], currency)}",
        delta_color="off", delta_arrow="off", border=True,
        help=f"Model {forecast['model']}, fitted on data through {forecast['data_through']}. "
             "The month-to-date actual plus the forecast of the days left.")
else:
    cols[1].metric("Forecast, month end", "None",
                   delta="pick one tenant" if dimension is None else "run finops forecast",
                   delta_color="off", delta_arrow="off", border=True)
if budget is not None:
    projected = forecast["forecast"] if forecast is not None else mtd_total
    gap = budget - projected
    cols[2].metric(budget_label, ui.money(budget, currency),
                   delta=(f"{ui.money(gap, currency)} headroom" if gap >= 0
                          else f"{ui.money(-gap, currency)} over forecast"),
                   delta_color="normal" if gap >= 0 else "inverse", delta_arrow="off",
                   border=True)
else:
    cols[2].metric("Budget", "Not set", delta="FINOPS_FORECAST__BUDGETS", delta_color="off",
                   delta_arrow="off", border=True,
                   help="Budgets per tenant or team come from the budgets file of `finops "
                        "forecast` (FINOPS_FORECAST__BUDGETS).")
if next_month is not None:
    cols[3].metric(f"Forecast, {data.month_window(next_month['period']).label}",
                   ui.money(next_month["forecast"], currency),
                   delta=f"80%: {ui.money(next_month['lower_80'], currency)} – "
                         f"{ui.money(next_month['upper_80'], currency)}",
                   delta_color="off", delta_arrow="off", border=True)
else:
    cols[3].metric("Forecast, next month", "None", border=True)

# ---- charts ------------------------------------------------------------------------------
basis = ui.COST_LABELS[cost]
st.subheader(f"Daily cost by {ui.group_label(stack).lower()}")
daily_forecast = None
if forecast is not None and window_choice == "month":
    through = forecast["data_through"]
    future = [through + dt.timedelta(days=i + 1) for i in range((month_end - through).days)]
    if future:
        daily_forecast = {**forecast, "future_days": future, "days_left": len(future)}
pace = (budget / month_window.days) if budget is not None else None
st.plotly_chart(ui.daily_stack_chart(daily, currency, basis, forecast=daily_forecast,
                                     budget_per_day=pace),
                config={"displayModeBar": False}, key="trends.daily")
st.caption("The largest groups are shown, the rest as Other. On the days left in the month the "
           "dashed line is the forecast's average per day, with its 80% range.")

st.subheader("Where the month will land")
st.plotly_chart(ui.cumulative_chart(mtd, currency, month_start, month_end, forecast, budget),
                config={"displayModeBar": False}, key="trends.cumulative")
if forecast is None and dimension is not None:
    st.caption("No forecast for this selection: run `finops forecast` (the pipeline does).")

# ---- forecasts table -----------------------------------------------------------------
if not forecasts.is_empty():
    st.subheader("Forecasts")
    table = ui.forecast_table(forecasts.filter(pl.col("currency") == currency))
    columns = ui.forecast_columns(currency)
    st.dataframe(ui.paginate(table, "trends.forecasts.page"), hide_index=True,
                 placeholder=ui.MISSING, column_config=columns)
    ui.download_buttons(table, ui.column_labels(columns), f"forecasts-{currency}", "trends.forecasts",
                        currency=currency, money=["actual_to_date", "forecast", "lower_80",
                                                  "upper_80", "lower_95", "upper_95", "budget"])
