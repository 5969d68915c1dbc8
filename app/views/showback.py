"""Showback: what each tenant, team or service cost in a month, quarter or custom range,
beside the period before and the budget, with a drill-down to the line items."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from app import data, ui
from app.context import warehouse_home
from app.keys import Keys
from finops.errors import FinopsError

st.title("Showback")
st.caption("Allocated cloud cost by tenant, team or service, to the cent, with the share no "
           "tag or rule could place shown rather than hidden.")

home = warehouse_home()
viewer = data.viewer()
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
linked = st.query_params.get("period")  # a link from the weekly report
if Keys.PERIOD not in st.session_state and linked in months:
    st.session_state[Keys.PERIOD] = linked
if st.session_state.get(Keys.PERIOD) not in months:
    st.session_state.pop(Keys.PERIOD, None)

# ---- what to show ---------------------------------------------------------------------
kind_col, when_col, basis_col, group_col, extra_col = st.columns(
    [3, 3, 2, 2, 2], vertical_alignment="bottom")
kind: str = kind_col.segmented_control(
    "Period", ["month", "quarter", "range"], key=Keys.PERIOD_KIND, default="month",
    required=True, format_func={"month": "Month", "quarter": "Quarter", "range": "Custom"}.get,
) or "month"
if kind == "quarter":
    quarters = data.quarters(home)[::-1]
    if st.session_state.get(Keys.QUARTER) not in quarters:
        st.session_state.pop(Keys.QUARTER, None)
    quarter: str = when_col.selectbox("Quarter", quarters, key=Keys.QUARTER,
                                      format_func=lambda q: q.replace("-", " "))
    window = data.quarter_window(quarter)
elif kind == "range":
    days = data.data_days(home)
    last = days[1] if days else dt.date.today()
    first_day = days[0] if days else last - dt.timedelta(days=90)
    default = (max(first_day, last - dt.timedelta(days=29)), last)
    picked = when_col.date_input("From – to", value=default, min_value=first_day,
                                 max_value=last, key=Keys.RANGE, format="YYYY-MM-DD")
    if not isinstance(picked, tuple) or len(picked) != 2:
        st.info("Pick the last day of the range.", icon=":material/date_range:")
        st.stop()
    window = data.range_window(picked[0], picked[1])
else:
    period: str = when_col.selectbox("Month", months, format_func=ui.month_label, key=Keys.PERIOD)
    window = data.month_window(period)
cost: str = basis_col.segmented_control(
    "Cost basis", list(ui.COST_LABELS), format_func=ui.COST_LABELS.__getitem__,
    default="effective_cost", required=True, key=Keys.COST, help=ui.COST_HELP,
) or "effective_cost"
group_choice: str = group_col.selectbox(
    "Group by", [*data.SHOWBACK_GROUPS, "tag"], format_func=ui.group_label, key=Keys.GROUP,
) or "tenant"
group = group_choice
if group_choice == "tag":
    keys = ui.or_stop(lambda: data.tag_keys(home))
    if not keys:
        extra_col.caption("No tags in the latest month.")
        group = "tenant"
    else:
        if st.session_state.get(Keys.TAG_KEY) not in keys:
            st.session_state.pop(Keys.TAG_KEY, None)
        tag_key: str = extra_col.selectbox("Tag key", keys, key=Keys.TAG_KEY)
        group = f"{data.TAG_PREFIX}{tag_key}"

try:
    sb = data.showback(home, window, cost, group)
except FinopsError as exc:  # e.g. the month vanished under us between two reruns
    st.warning(f"Cannot show {window.label}: {exc.message}")
    st.stop()

if not sb.currencies:
    st.info(f"{window.label} has no allocated cost"
            + ("" if viewer.everything else " for your tenants") + ". Pick another period.",
            icon=":material/info:")
    st.stop()
currency = sb.currencies[0]
if len(sb.currencies) > 1:
    if st.session_state.get(Keys.CURRENCY) not in sb.currencies:
        st.session_state.pop(Keys.CURRENCY, None)
    currency = extra_col.selectbox(
        "Billing currency", sb.currencies, key=Keys.CURRENCY,
        help="This period was billed in more than one currency; amounts are never added "
        "across currencies.",
    )

basis = ui.COST_LABELS[cost]
total = sb.total(currency)
label, previous_label = window.label, sb.previous.label
key = data.key_column(group)
group_name = ui.group_label(group)
tenants = ui.comparison_table(sb.by_tenant, "tenant", currency)

# ---- headline figures ------------------------------------------------------------------
metric_cols = st.columns(5 if total.budget is not None else 4)
metric_cols[0].metric(
    f"{basis} cost, {label}",
    ui.money(total.cost, currency),
    delta=ui.change_text(total.cost, total.previous_cost, currency) if sb.has_previous else None,
    delta_color="inverse",
    help=f"The change is against {previous_label}." if sb.has_previous else None,
    border=True,
)
metric_cols[1].metric(
    f"{basis} cost, {previous_label}",
    ui.money(total.previous_cost, currency) if sb.has_previous else "No data",
    border=True,
)
if viewer.everything:
    metric_cols[2].metric(
        "Unallocated share",
        ui.percent(total.unallocated_share),
        delta=f"{ui.money(total.unallocated_cost, currency)} not attributed",
        delta_color="off",
        delta_arrow="off",
        help="Cost that no tenant tag or allocation rule placed. It stays visible here until "
             "its resources are tagged.",
        border=True,
    )
else:
    metric_cols[2].metric("Your tenants", viewer.scope_label, border=True,
                          help="You see the cost allocated to the tenants you own.")
metric_cols[3].metric("Tenants with cost", ui.tenants_with_cost(tenants), border=True)
if total.budget is not None:
    used = float(total.budgeted_cost / total.budget) if total.budget else 0.0
    left = total.budget - total.budgeted_cost
    metric_cols[4].metric(
        "Against budget", f"{used:.0%} used",
        delta=(f"{ui.money(left, currency)} left" if left >= 0
               else f"{ui.money(-left, currency)} over"),
        delta_color="normal" if left >= 0 else "inverse", delta_arrow="off",
        help=f"The cost of the {group_name.lower()}s with a budget against their budgets "
             f"({ui.money(total.budget, currency)}) for {label}.",
        border=True,
    )

days_with_data = data.data_days(home)
if days_with_data is not None and window.start <= days_with_data[1] < window.end:
    st.caption(f"{label} so far: the data runs through {days_with_data[1]:%-d %B %Y}, so the "
               f"change against {previous_label} compares part of a period with all of one. "
               "Trends and forecast shows where it will land.")

# ---- by group, with the drill-down's first level ----------------------------------------
drill_context = (window, cost, group, currency)
if st.session_state.get("showback.drill.context") != drill_context:
    for k in (Keys.DRILL_GROUP, Keys.DRILL_SECOND, Keys.DRILL_RESOURCE, Keys.LINES_PAGE):
        st.session_state.pop(k, None)
    st.session_state["showback.drill.context"] = drill_context

main = ui.comparison_table(sb.table, key, currency)
main_columns = ui.comparison_columns(key, group_name, currency, label, previous_label)
chart_col, table_col = st.columns([5, 6], gap="large")
with chart_col:
    st.subheader(f"Cost by {group_name.lower()}")
    st.plotly_chart(ui.group_bar_chart(sb.table, key, currency, basis),
                    config={"displayModeBar": False}, key=Keys.TENANT_CHART)
with table_col:
    st.subheader(f"By {group_name.lower()}")
    picked_main = st.dataframe(
        main, hide_index=True, placeholder=ui.MISSING, column_config=main_columns,
        on_select="rerun", selection_mode="single-row", key=Keys.DRILL_GROUP,
    )
    ui.download_buttons(main, ui.column_labels(main_columns),
                        f"showback-{group_name}-{label}-{currency}", "showback.main",
                        currency=currency, money=["cost", "previous_cost", "change", "budget"],
                        percent=["change_pct", "budget_used"])
    st.caption(f"Select a row to drill down to its {'tenants' if group == 'service' else 'services'}, "
               "resources and line items.")

second = "tenant" if group == "service" else "service"
second_table = sb.by_tenant if second == "tenant" else sb.by_service
second_name = ui.group_label(second)
st.subheader(f"By {second_name.lower()}")
second_columns = ui.comparison_columns(second, second_name, currency, label, previous_label)
second_rows = ui.comparison_table(second_table, second, currency)
st.dataframe(second_rows, hide_index=True, placeholder=ui.MISSING, column_config=second_columns)
ui.download_buttons(second_rows, ui.column_labels(second_columns),
                    f"showback-{second_name}-{label}-{currency}", "showback.second",
                    currency=currency, money=["cost", "previous_cost", "change"],
                    percent=["change_pct"])

if viewer.everything:
    st.subheader("Top unallocated resources")
    top = ui.unallocated_table(sb.top_unallocated, currency)
    if not top.is_empty():
        st.caption(f"The {top.height} untagged resources that cost the most in {label}. Tag them "
                   "with a tenant to attribute their cost.")
        unallocated_columns = ui.unallocated_columns(currency, label)
        st.dataframe(top, hide_index=True, placeholder=ui.MISSING,
                     column_config=unallocated_columns)
        ui.download_buttons(top, ui.column_labels(unallocated_columns),
                            f"unallocated-{label}-{currency}", "showback.unallocated",
                            currency=currency, money=["cost"])
    elif total.unallocated_cost:
        st.info(f"{ui.money(total.unallocated_cost, currency)} of {label} is unallocated, spread "
                "over resources too small to list here.", icon=":material/info:")
    else:
        st.success(f"All {currency} cost of {label} is allocated to a tenant.",
                   icon=":material/check_circle:")

# ---- drill down ------------------------------------------------------------------------
st.subheader("Drill down")
rows = picked_main.selection.rows if picked_main is not None else []
keys_in_order = ui.sorted_keys(sb.table, key, currency)
if not rows or rows[0] >= len(keys_in_order):
    st.caption(f"Select a {group_name.lower()} in the table above to see its "
               f"{second_name.lower()}s, their resources and the line items, each with the "
               "allocation method and rule that placed it.")
else:
    crumb_slot = st.empty()
    first_value = keys_in_order[rows[0]]
    path: data.DrillPath = ((group, first_value),)
    crumbs = [ui.crumb(group_name, first_value)]
    level2 = ui.or_stop(lambda: data.drill(home, window, cost, path, second))
    level2 = level2.filter(level2["currency"] == currency)
    level2_view = ui.drill_table(level2, second)
    level2_columns = ui.drill_columns(second, second_name, currency, label)
    picked_second = st.dataframe(level2_view, hide_index=True, placeholder=ui.MISSING,
                                 column_config=level2_columns, on_select="rerun",
                                 selection_mode="single-row", key=Keys.DRILL_SECOND)
    second_rows_sel = picked_second.selection.rows if picked_second is not None else []
    if second_rows_sel and second_rows_sel[0] < level2.height:
        second_value = level2[second][second_rows_sel[0]]
        path = (*path, (second, second_value))
        crumbs.append(ui.crumb(second_name, second_value))
        found = ui.or_stop(lambda: data.resources(home, window, cost, path))
        found = found.filter(found["currency"] == currency)
        resource_view = ui.resources_table(found)
        resource_columns = ui.resources_columns(currency, label)
        picked_resource = st.dataframe(
            ui.paginate(resource_view, "showback.resources.page"), hide_index=True,
            placeholder=ui.MISSING, column_config=resource_columns, on_select="rerun",
            selection_mode="single-row", key=Keys.DRILL_RESOURCE)
        ui.download_buttons(resource_view, ui.column_labels(resource_columns),
                            f"resources-{label}-{currency}", "showback.resources",
                            currency=currency, money=["cost"])
        resource_rows = picked_resource.selection.rows if picked_resource is not None else []
        page_offset = (int(st.session_state.get("showback.resources.page") or 1) - 1) * ui.PAGE_SIZE
        if resource_rows and page_offset + resource_rows[0] < found.height:
            resource = found["resource"][page_offset + resource_rows[0]]
            resource_id = None if resource == data.NONE_KEY else resource
            crumbs.append(ui.crumb("Resource", resource))
            lines = ui.or_stop(lambda: data.line_items(home, window, path, resource_id))
            lines = lines.filter(lines["BillingCurrency"] == currency)
            lines_view = ui.lines_table(lines)
            lines_columns = ui.lines_columns(currency)
            st.caption(f"{lines.height:,} line items"
                       + (f" (the first {data.LINE_ITEMS_LIMIT:,})"
                          if lines.height >= data.LINE_ITEMS_LIMIT else "")
                       + ". Method and rule say how each dollar found its owner; a share below 1 "
                         "is a split of a shared row.")
            st.dataframe(ui.paginate(lines_view, Keys.LINES_PAGE), hide_index=True,
                         placeholder=ui.MISSING, column_config=lines_columns)
            ui.download_buttons(lines_view, ui.column_labels(lines_columns),
                                f"line-items-{resource}-{label}", "showback.lines",
                                currency=currency, money=["BilledCost", "EffectiveCost"])
        else:
            st.caption("Select a resource to see its line items.")
    else:
        st.caption(f"Select a {second_name.lower()} to see its resources.")
    crumb_slot.text(" › ".join(crumbs))

st.caption(f"{basis} cost. Amounts are rounded to the cent (half to even), so rows can differ "
           f"from the total by a cent. Change % shows {ui.MISSING} when the previous period was "
           "zero. Downloads hold exactly the rows and columns of the table above them.")
