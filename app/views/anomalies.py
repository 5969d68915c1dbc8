"""Anomalies: unusual daily cost, its impact and root causes; the series against what was
expected; and feedback (expected, planned, real) that teaches the detector."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import data, ui
from app.context import warehouse_home
from app.keys import Keys
from finops.errors import FinopsError

st.title("Anomalies")
st.caption("Days whose cost left the range the model expected, grouped into events, with the "
           "money they moved and what moved it. Your feedback suppresses repeats of what is "
           "normal or planned.")

home = warehouse_home()
viewer = data.viewer()
events = data.anomalies(home)
if events.is_empty():
    st.info("No anomalies " + ("" if viewer.everything else "on your tenants ") + "in the latest "
            "detection run. Detection runs with the pipeline (`finops run`, or `finops anomalies`); "
            "a series needs 21 days of history before it can alert.", icon=":material/info:")
    st.stop()

STATUSES = {"open": "Open", "expected": "Expected", "planned": "Planned", "real": "Real", "all": "All"}
status_col, severity_col = st.columns([3, 3], vertical_alignment="bottom")
status: str = status_col.segmented_control(
    "Show", list(STATUSES), format_func=STATUSES.__getitem__, default="open", required=True,
    key=Keys.ANOMALY_STATUS,
    help="Open: no feedback yet, or confirmed real. Expected and planned ones no longer alert.",
) or "open"
severities = sorted(set(events["severity"].drop_nulls().to_list()),
                    key=lambda s: ui.SEVERITY_ORDER.get(s, 9))
chosen: list[str] = severity_col.pills(
    "Severity", severities, selection_mode="multi", default=severities,
    format_func=lambda s: ui.SEVERITY_LABELS.get(s, s), key=Keys.ANOMALY_SEVERITY) or []

shown = ui.filter_anomalies(events, status, chosen)

# ---- headline --------------------------------------------------------------------------
currency = ui.main_currency(events)
open_events = ui.filter_anomalies(events, "open", severities)
cols = st.columns(4)
cols[0].metric("Open anomalies", open_events.height, border=True,
               help="No feedback yet, or confirmed as real.")
cols[1].metric("High or critical, open",
               open_events.filter(pl.col("severity").is_in(["high", "critical"])).height,
               border=True)
impact = open_events.filter(pl.col("currency") == currency)["impact"].sum()
cols[2].metric(f"Open impact ({currency})", ui.money(impact, currency, signed=True), border=True,
               help="Actual minus expected cost over the anomalies' days.")
cols[3].metric("With feedback", events.filter(pl.col("label").is_not_null()).height, border=True)

# ---- the list ----------------------------------------------------------------------------
st.subheader("Events")
if shown.is_empty():
    st.info("No anomalies match. Change the filters above.", icon=":material/filter_alt:")
    st.stop()
table = ui.anomalies_table(shown)
columns = ui.anomalies_columns()
st.dataframe(ui.paginate(table, Keys.ANOMALY_PAGE), hide_index=True, placeholder=ui.MISSING,
             column_config=columns)
ui.download_buttons(table, ui.column_labels(columns), "anomalies", "anomalies.list",
                    percent=["impact_pct"])

# ---- one anomaly -----------------------------------------------------------------------
st.subheader("Detail")
ids = shown["anomaly_id"].to_list()
if st.session_state.get(Keys.ANOMALY_SELECTED) not in ids:
    st.session_state.pop(Keys.ANOMALY_SELECTED, None)
by_id = {r["anomaly_id"]: r for r in shown.iter_rows(named=True)}
selected: str = st.selectbox("Anomaly", ids, key=Keys.ANOMALY_SELECTED,
                             format_func=lambda i: ui.anomaly_title(by_id[i])) or ids[0]
event = by_id[selected]
event_currency = event.get("currency") or currency

cols = st.columns(4)
cols[0].metric("Actual", ui.money(event["actual_cost"], event_currency), border=True,
               delta=f"{event['start_date']:%-d %b} – {event['end_date']:%-d %b %Y}",
               delta_color="off", delta_arrow="off")
cols[1].metric("Expected", ui.money(event["expected_cost"], event_currency), border=True)
cols[2].metric("Impact", ui.money(event["impact"], event_currency, signed=True), border=True,
               delta=ui.percent(event["impact_pct"], signed=True) if event["impact_pct"] is not None
               else None, delta_color="inverse")
cols[3].metric("Severity", ui.SEVERITY_LABELS.get(event["severity"], event["severity"] or "–"),
               border=True, delta=ui.DIMENSION_LABELS.get(event["dimension"], event["dimension"]),
               delta_color="off", delta_arrow="off")

chart_col, causes_col = st.columns([4, 3], gap="large")
with chart_col:
    band = data.anomaly_band(home, event)
    if band is None:
        st.info("The series of this anomaly is not in the current data (it changed since the "
                "detection run).", icon=":material/info:")
    else:
        st.plotly_chart(ui.anomaly_chart(band.frame, event["start_date"], event["end_date"],
                                         event_currency, band.threshold),
                        config={"displayModeBar": False}, key="anomalies.chart")
with causes_col:
    st.markdown("**Root causes**")
    causes = ui.causes_table(event.get("root_causes"))
    if causes.is_empty():
        st.caption("No single service, account or tenant explains it.")
    else:
        st.dataframe(causes, hide_index=True, column_config=ui.causes_columns(event_currency))

st.markdown("**Feedback**")
if event.get("labelled_by") or event.get("label"):
    who = event.get("labelled_by")
    when = ui.timestamp_label(event.get("labelled_at")) if event.get("labelled_at") else None
    # Who and the comment are typed by people: plain text, never markdown.
    st.text(f"Marked {ui.LABEL_TEXT.get(event['label'], event['label']).lower()}"
            + (f" by {who}" if who else "") + (f" on {when}" if when else "")
            + (f": {event['label_comment']}" if event.get("label_comment") else ""))
if viewer.can_label_anomalies:
    comment = st.text_input("Comment (optional)", key=Keys.ANOMALY_COMMENT, max_chars=500,
                            placeholder="e.g. the migration of the reporting cluster")
    buttons = st.columns(3)
    choices = (("expected", "Expected", "Normal for this series: no alert for it or for "
                "repeats of a similar size."),
               ("planned", "Planned", "A one-off change (a migration, a launch): no alerts on "
                "these series for a while after it."),
               ("real", "Real anomaly", "A true anomaly: it stays open and is marked real."))
    for column, (label, text, help_text) in zip(buttons, choices, strict=True):
        if column.button(text, key=f"anomalies.label.{label}", help=help_text,
                         type="primary" if label == "real" else "secondary", width="stretch"):
            try:
                data.label_anomaly(home, selected, label, comment)
            except (FinopsError, PermissionError) as exc:
                st.error(f"Could not save the feedback: {exc}", icon=":material/error:")
            else:
                st.toast(f"Saved: {text.lower()}", icon=":material/check:")
                st.session_state.pop(Keys.ANOMALY_COMMENT, None)
                st.rerun()
else:
    st.caption(f"{viewer.label} users can read anomalies but not label them.")
