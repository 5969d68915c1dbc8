"""Data health: the pipeline's latest runs from state.db, their status and totals."""

from __future__ import annotations

import streamlit as st

from app import data, ui
from app.context import warehouse_home
from app.keys import Keys

st.title("Data health")
st.caption("What ran, when, and whether it worked: every collect and allocate run from the "
           "warehouse's run log, with the totals each one recorded per billing period.")

home = warehouse_home()
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

st.subheader("Runs")
st.dataframe(ui.runs_table(log.runs), hide_index=True, placeholder=ui.MISSING,
             column_config=ui.RUNS_COLUMNS)

st.subheader("Totals per billing period")
st.caption("What each run recorded: a collect run its loaded and set-aside totals, an allocate "
           "run the allocated totals, which equal its input to the cent.")
st.dataframe(ui.run_totals_table(log.runs, log.totals), hide_index=True, placeholder=ui.MISSING,
             column_config=ui.RUN_TOTALS_COLUMNS)
