"""Showback: what each tenant and service cost in a month, beside the month before."""

from __future__ import annotations

import streamlit as st

from app import data, ui
from app.context import warehouse_home
from app.keys import Keys
from finops.errors import FinopsError

st.title("Showback")
st.caption("Allocated cloud cost by tenant and service, to the cent, with the share no tag "
           "or rule could place shown rather than hidden.")

home = warehouse_home()
periods = data.periods(home)
if not periods:
    st.info(
        f"There is no allocated cost in the warehouse `{home}` yet.\n\n"
        "To see the demo organisation, run `make demo`. To load your own bills, run "
        "`finops collect focus --path EXPORTS && finops allocate` (or another `finops collect` "
        "source), then reload this page.",
        icon=":material/info:",
    )
    st.stop()

months = periods[::-1]  # newest first: the default is the latest month with data
if st.session_state.get(Keys.PERIOD) not in months:
    st.session_state.pop(Keys.PERIOD, None)

month_col, basis_col, currency_col = st.columns([2, 2, 3], vertical_alignment="bottom")
period: str = month_col.selectbox("Month", months, format_func=ui.month_label, key=Keys.PERIOD)
cost: str = basis_col.segmented_control(
    "Cost basis", list(ui.COST_LABELS), format_func=ui.COST_LABELS.__getitem__,
    default="effective_cost", required=True, key=Keys.COST, help=ui.COST_HELP,
) or "effective_cost"

try:
    sb = data.showback(home, period, cost)
except FinopsError as exc:  # e.g. the month vanished under us between two reruns
    st.warning(f"Cannot show {ui.month_label(period)}: {exc.message}")
    st.stop()

if not sb.currencies:
    st.info(f"{ui.month_label(period)} has no allocated cost rows. Pick another month.",
            icon=":material/info:")
    st.stop()
currency = sb.currencies[0]
if len(sb.currencies) > 1:
    if st.session_state.get(Keys.CURRENCY) not in sb.currencies:
        st.session_state.pop(Keys.CURRENCY, None)
    currency = currency_col.selectbox(
        "Billing currency", sb.currencies, key=Keys.CURRENCY,
        help="This month was billed in more than one currency; amounts are never added "
        "across currencies.",
    )

basis = ui.COST_LABELS[cost]
total = sb.total(currency)
tenants = ui.comparison_table(sb.by_tenant, "tenant", currency)

total_col, previous_col, unallocated_col, tenants_col = st.columns(4)
total_col.metric(
    f"{basis} cost, {ui.month_label(period)}",
    ui.money(total.cost, currency),
    delta=ui.change_text(total.cost, total.previous_cost, currency) if sb.has_previous else None,
    delta_color="inverse",
    help=f"The change is against {ui.month_label(sb.previous)}." if sb.has_previous else None,
    border=True,
)
previous_col.metric(
    f"{basis} cost, {ui.month_label(sb.previous)}",
    ui.money(total.previous_cost, currency) if sb.has_previous else "No data",
    border=True,
)
unallocated_col.metric(
    "Unallocated share",
    ui.percent(total.unallocated_share),
    delta=f"{ui.money(total.unallocated_cost, currency)} not attributed",
    delta_color="off",
    delta_arrow="off",
    help="Cost that no tenant tag or allocation rule placed. It stays visible here until "
         "its resources are tagged.",
    border=True,
)
tenants_col.metric(
    "Tenants with cost",
    ui.tenants_with_cost(tenants),
    border=True,
)

chart_col, tenant_col = st.columns([5, 6], gap="large")
with chart_col:
    st.subheader("Cost by tenant")
    st.plotly_chart(ui.tenant_bar_chart(sb.by_tenant, currency, basis),
                    config={"displayModeBar": False}, key=Keys.TENANT_CHART)
with tenant_col:
    st.subheader("By tenant")
    st.dataframe(
        tenants, hide_index=True, placeholder=ui.MISSING,
        column_config=ui.comparison_columns("tenant", "Tenant", currency, period, sb.previous),
    )

st.subheader("By service")
st.dataframe(
    ui.comparison_table(sb.by_service, "service", currency),
    hide_index=True, placeholder=ui.MISSING,
    column_config=ui.comparison_columns("service", "Service", currency, period, sb.previous),
)

st.subheader("Top unallocated resources")
top = ui.unallocated_table(sb.top_unallocated, currency)
if not top.is_empty():
    st.caption(f"The {top.height} untagged resources that cost the most in "
               f"{ui.month_label(period)}. Tag them with a tenant to attribute their cost.")
    st.dataframe(top, hide_index=True, placeholder=ui.MISSING,
                 column_config=ui.unallocated_columns(currency, period))
elif total.unallocated_cost:
    st.info(f"{ui.money(total.unallocated_cost, currency)} of {ui.month_label(period)} is "
            "unallocated, spread over resources too small to list here.", icon=":material/info:")
else:
    st.success(f"All {currency} cost of {ui.month_label(period)} is allocated to a tenant.",
               icon=":material/check_circle:")

st.caption(f"{basis} cost. Amounts are rounded to the cent (half to even), so rows can differ "
           f"from the total by a cent. Change % shows {ui.MISSING} when the previous month was zero.")
