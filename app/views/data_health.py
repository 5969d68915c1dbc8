"""Data health: how fresh each source is, what ran and whether it reconciled, how much cost
is tagged, FOCUS validation issues, and the rows set aside."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from app import data, ui
from app.context import warehouse_home
from app.keys import Keys

home = warehouse_home()
viewer = data.viewer()
pipeline = viewer.view.sees_pipeline

st.title("Data health")
st.caption("What ran, when, and whether it worked: every collect and allocate run from the "
           "warehouse's run log"
           + (", with the totals each one recorded per billing period" if pipeline else "")
           + ", how fresh each source is and how much of the cost is tagged.")
limit: int = st.segmented_control(
    "Runs shown", [20, 50, 200], default=20, required=True, key=Keys.RUNS_LIMIT,
) or 20
log = data.run_log(home, limit=limit)
if not log.runs:
    st.info(
        f"No runs are recorded in the warehouse `{home}` yet.\n\n"
        "To see the demo organisation, run `make demo`. To load your own bills, run "
        "`finops collect focus --path EXPORTS && finops allocate`, then reload this page.",
        icon=":material/info:",
    )
    st.stop()

succeeded = [r for r in log.runs if r["status"] == "succeeded"]
failed = [r for r in log.runs if r["status"] == "failed"]
periods = data.periods(home)

last_col, failed_col, periods_col = st.columns(3)
last_col.metric(
    "Last successful run",
    ui.timestamp_label(succeeded[0]["ended_at"], zone=False) if succeeded else "None yet",
    delta=f"{succeeded[0]['stage']}, UTC" if succeeded else None,
    delta_color="off", delta_arrow="off", border=True,
)
failed_col.metric(
    f"Failed runs (last {len(log.runs)})", len(failed),
    delta=("latest run failed" if log.runs[0]["status"] == "failed" else None),
    delta_color="inverse", delta_arrow="off", border=True,
)
periods_col.metric(
    "Months with allocated cost", len(periods),
    delta=(f"{ui.month_label(periods[0])} – {ui.month_label(periods[-1])}" if periods else
           "run finops allocate"),
    delta_color="off", delta_arrow="off", border=True,
)

if log.runs[0]["status"] == "failed":
    st.error("The latest run failed: see its message in the table below. Figures elsewhere "
             "may not include what it was loading.", icon=":material/error:")

# ---- freshness -------------------------------------------------------------------------
sources = data.freshness(home)
if sources:
    st.subheader("Freshness")
    today = dt.datetime.now(dt.UTC).date()
    cards = st.columns(min(len(sources), 4))
    for i, source in enumerate(sources):
        through = source.data_through
        age = (today - through).days if through else None
        cards[i % len(cards)].metric(
            source.source, f"{through:%-d %b %Y}" if through else "No data",
            delta=(f"{age} day{'s' if age != 1 else ''} old" if age is not None and age >= 0
                   else "latest charge day"),
            delta_color="inverse" if age is not None and age > 3 else "off", delta_arrow="off",
            help=("Last collected " + ui.timestamp_label(source.last_success)
                  if source.last_success else "Never collected successfully"),
            border=True)
    late = [s for s in sources if s.last_failure]
    for source in late:
        st.warning(f"The last collect of source {ui.md_text(source.source)} failed "
                   f"({ui.timestamp_label(source.last_failure)}), after its last success. "
                   "Its message:", icon=":material/warning:")
        st.text(source.failure_message or "no message")

# ---- runs ---------------------------------------------------------------------------------
st.subheader("Runs")
runs_columns = {k: v for k, v in ui.RUNS_COLUMNS.items()
                if pipeline or k not in ("rows_in", "rows_out", "rows_rejected", "message")}
runs_table = ui.runs_table(log.runs).select(list(runs_columns))
st.dataframe(runs_table, hide_index=True, placeholder=ui.MISSING, column_config=runs_columns)

if pipeline:
    st.subheader("Totals per billing period")
    st.caption("What each run recorded: a collect run its loaded and set-aside totals, an "
               "allocate run the allocated totals, which equal its input to the cent.")
    st.dataframe(ui.run_totals_table(log.runs, log.totals), hide_index=True,
                 placeholder=ui.MISSING, column_config=ui.RUN_TOTALS_COLUMNS)

    recon = data.reconciliation(home)
    if recon:
        st.subheader("Reconciliation")
        st.caption("Per month and currency: what the latest collect of each billing source "
                   "stored, beside what the latest allocation placed. They must be equal to the "
                   "cent.")
        table = ui.reconciliation_table(recon)
        columns = ui.RECONCILIATION_COLUMNS
        st.dataframe(ui.paginate(table, "health.recon.page", size=50), hide_index=True,
                     placeholder=ui.MISSING, column_config=columns)
        off = [r for r in recon if r.ok is False]
        if off:
            st.warning(f"{len(off)} month(s) do not reconcile: run `finops allocate` again, and "
                       "see the allocate run's message.", icon=":material/warning:")

# ---- tagging ------------------------------------------------------------------------------
if periods:
    st.subheader("Tag coverage")
    months = periods[::-1]
    if st.session_state.get(Keys.HEALTH_COVERAGE_PERIOD) not in months:
        st.session_state.pop(Keys.HEALTH_COVERAGE_PERIOD, None)
    month_col, _ = st.columns([1, 3])
    month: str = month_col.selectbox("Month", months, format_func=ui.month_label,
                                     key=Keys.HEALTH_COVERAGE_PERIOD) or months[0]
    coverage = ui.or_warn(lambda: data.tag_coverage(home, month))
    methods = data.allocation_coverage(home, month)
    tags_col, methods_col = st.columns([3, 2], gap="large")
    with tags_col:
        st.caption("Share of the month's usage cost (effective) whose line items carry each tag "
                   "key, the most used first.")
        if coverage is None:
            pass  # or_warn said why
        elif coverage.is_empty():
            st.info("No usage cost this month.", icon=":material/info:")
        else:
            table = ui.coverage_table(coverage)
            st.dataframe(ui.paginate(table, "health.tags.page", size=25), hide_index=True,
                         column_config=ui.COVERAGE_COLUMNS)
    with methods_col:
        st.caption("How the month's effective cost found its owner.")
        if not methods.is_empty():
            st.dataframe(ui.methods_table(methods), hide_index=True,
                         column_config=ui.METHODS_COLUMNS)

# ---- FOCUS validation, rows set aside ----------------------------------------------------
if pipeline:
    st.subheader("FOCUS 1.2 validation")
    full = bool(st.session_state.get(Keys.HEALTH_FULL_VALIDATION))
    issues = data.validation(home, full=full)
    checked = "every row" if full else f"the first {data.VALIDATION_SAMPLE_ROWS:,} rows"
    if issues.is_empty():
        st.success(f"No FOCUS 1.2 violations in {checked} of each billing partition.",
                   icon=":material/check_circle:")
    else:
        st.caption(f"Violations in {checked} of each billing partition (source and month). "
                   "Rows −1: the column itself is missing or has the wrong type.")
        table = ui.validation_table(issues)
        st.dataframe(ui.paginate(table, "health.validation.page", size=50), hide_index=True,
                     column_config=ui.VALIDATION_COLUMNS)
    if not full:
        st.button("Validate every row", key=Keys.HEALTH_FULL_VALIDATION + ".button",
                  on_click=lambda: st.session_state.update({Keys.HEALTH_FULL_VALIDATION: True}),
                  help="Reads every billing partition in full; cached until the next run.")

    st.subheader("Rows set aside")
    summary, sample = data.rejected(home)
    if summary.is_empty():
        st.success("No rows were set aside: every row of every export could be read.",
                   icon=":material/check_circle:")
    else:
        st.caption("Rows a collect could not read, kept in `rejected/` with their reason, and "
                   "counted in the run log.")
        reasons_col, rows_col = st.columns([2, 3], gap="large")
        reasons_col.dataframe(summary, hide_index=True, column_config=ui.REJECTED_SUMMARY_COLUMNS)
        with rows_col:
            shown = ui.rejected_table(sample)
            st.dataframe(ui.paginate(shown, Keys.HEALTH_REJECTED_PAGE, size=50), hide_index=True,
                         placeholder=ui.MISSING, column_config=ui.REJECTED_COLUMNS)
            ui.download_buttons(shown, ui.column_labels(ui.REJECTED_COLUMNS), "rows-set-aside",
                                "health.rejected")
else:
    st.caption("Run totals, reconciliation, FOCUS validation and rows set aside cover every "
               "tenant's cost: they are shown to finance and the platform team.")
