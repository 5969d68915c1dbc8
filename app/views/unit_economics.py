"""Unit economics: what a warehouse query costs, per query, per TB scanned and per tenant,
and the queries that cost the most."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import data, ui
from app.context import warehouse_home
from app.keys import Keys

st.title("Unit economics")
st.caption("Data warehouse cost split to the queries that used it (Snowflake, BigQuery, "
           "Databricks): cost per query, per TB scanned and per tenant, and the most expensive "
           "queries.")

home = warehouse_home()
viewer = data.viewer()
months = data.query_months(home)
if not months:
    st.info("No query cost " + ("" if viewer.everything else "for your tenants ") + "yet. Collect "
            "a warehouse's query history (`finops collect snowflake|bigquery-jobs|databricks`), "
            "then `finops queries --refresh` computes what each query cost.",
            icon=":material/info:")
    st.stop()

options = ["all", *months[::-1]]
if st.session_state.get(Keys.UE_PERIOD) not in options:
    st.session_state[Keys.UE_PERIOD] = months[-1]
period_col, currency_col = st.columns([2, 1], vertical_alignment="bottom")
period: str = period_col.selectbox(
    "Period", options, key=Keys.UE_PERIOD,
    format_func=lambda p: f"All ({ui.month_label(months[0], short=True)} – "
                          f"{ui.month_label(months[-1], short=True)})" if p == "all"
    else ui.month_label(p)) or months[-1]
if period == "all":
    start, end = data.month_window(months[0]).start, data.month_window(months[-1]).end
else:
    window = data.month_window(period)
    start, end = window.start, window.end
units = data.unit_costs(home, start, end)
if units.totals.is_empty():
    st.info("No query cost in this period.", icon=":material/info:")
    st.stop()
currencies = units.totals["currency"].to_list()
currency: str = currency_col.selectbox("Currency", currencies, key="units.currency",
                                       disabled=len(currencies) == 1) or currencies[0]
total = units.totals.filter(pl.col("currency") == currency).row(0, named=True)

cols = st.columns(5)
cols[0].metric("Warehouse cost", ui.money(total["cost"], currency), border=True,
               delta=(f"{ui.money(total['idle_cost'], currency)} idle" if total["idle_cost"]
                      else None), delta_color="off", delta_arrow="off",
               help="Metered warehouse cost split to queries; idle time no tenant used is "
                    "included and shown as idle.")
cols[1].metric("Queries", f"{total['queries']:,}", border=True)
cols[2].metric("Cost per query", ui.unit_money(total["cost_per_query"], currency), border=True)
cols[3].metric("TB scanned", f"{total['tb_scanned']:,.2f}", border=True)
cols[4].metric("Cost per TB scanned", ui.unit_money(total["cost_per_tb"], currency), border=True)

chart_col, table_col = st.columns([2, 3], gap="large")
with chart_col:
    st.subheader("Cost per query by tenant")
    st.plotly_chart(ui.unit_cost_chart(units.by_tenant, currency),
                    config={"displayModeBar": False}, key="units.by_tenant_chart")
with table_col:
    st.subheader("By tenant")
    tenant_table = ui.unit_table(units.by_tenant, "tenant", currency)
    tenant_columns = ui.unit_columns("tenant", "Tenant", currency)
    st.dataframe(tenant_table, hide_index=True, placeholder=ui.MISSING, column_config=tenant_columns)
    ui.download_buttons(tenant_table, ui.column_labels(tenant_columns),
                        f"unit-costs-by-tenant-{period}", "units.tenant", currency=currency,
                        money=["cost", "cost_per_query", "cost_per_tb"], percent=["share"])

st.subheader("Queries and cost per query, by day")
st.plotly_chart(ui.unit_trend_chart(units.daily, currency), config={"displayModeBar": False},
                key="units.daily_chart")

st.subheader("By warehouse")
warehouse_table = ui.unit_table(units.by_warehouse, "warehouse", currency)
warehouse_columns = ui.unit_columns("warehouse", "Warehouse", currency)
st.dataframe(warehouse_table, hide_index=True, placeholder=ui.MISSING,
             column_config=warehouse_columns)

st.subheader("Most expensive queries")
single, recurring = st.tabs(["Single queries", "Recurring queries"])
with single:
    top = ui.top_queries_table(units.top_queries, currency)
    top_columns = ui.top_queries_columns(currency)
    st.dataframe(ui.paginate(top, Keys.UE_QUERIES_PAGE, size=50), hide_index=True,
                 placeholder=ui.MISSING, column_config=top_columns)
    ui.download_buttons(top, ui.column_labels(top_columns), f"top-queries-{period}",
                        "units.top", currency=currency, money=["cost"])
with recurring:
    st.caption("Queries with the same parameterised text (hash), added up: what a scheduled "
               "job or dashboard costs over the period.")
    rec = ui.recurring_table(units.top_recurring, currency)
    rec_columns = ui.recurring_columns(currency)
    st.dataframe(rec, hide_index=True, placeholder=ui.MISSING, column_config=rec_columns)
    ui.download_buttons(rec, ui.column_labels(rec_columns), f"recurring-queries-{period}",
                        "units.recurring", currency=currency, money=["cost", "cost_per_run"])
st.caption(f"{start:%-d %b %Y} – {end:%-d %b %Y}. Cost per query divides "
           "the warehouse cost, idle time included, by the queries run.")
