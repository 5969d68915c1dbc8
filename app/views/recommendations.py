"""Recommendations: right-size, delete, suspend or commit, each with its monthly savings and
evidence; the platform team accepts, dismisses or marks them done, with who and when."""

from __future__ import annotations

import polars as pl
import streamlit as st

from app import data, ui
from app.context import warehouse_home
from app.keys import Keys
from finops.errors import FinopsError

st.title("Recommendations")
st.caption("Savings the data supports: idle and oversized resources, warehouse settings and "
           "commitments, with the evidence for each. Decisions are kept with who made them "
           "and when.")

home = warehouse_home()
viewer = data.viewer()
if not data.recommendations_available():
    st.info("Recommendations are not installed in this version of the toolkit "
            "(models/rightsizing).", icon=":material/info:")
    st.stop()
recs = data.recommendations(home)
if recs.is_empty():
    if viewer.everything:
        st.info("No recommendations yet. They come from `finops recommend`, which needs "
                "utilisation and inventory (`finops collect utilization`, `finops collect "
                "inventory`) or a warehouse's query history.", icon=":material/info:")
    else:
        st.info("No recommendations on your tenants' resources: nothing they run is idle or "
                "oversized by the latest analysis.", icon=":material/check_circle:")
    st.stop()

# ---- savings identified vs realised --------------------------------------------------------
currency = ui.main_currency(recs, amount="monthly_savings")
mine = recs.filter(pl.col("currency") == currency)
identified = mine.filter(pl.col("status") != "dismissed")["monthly_savings"].sum()
realised = mine.filter(pl.col("status") == "done")["monthly_savings"].sum()
accepted = mine.filter(pl.col("status") == "accepted")["monthly_savings"].sum()
open_count = mine.filter(pl.col("status") == "new").height
cols = st.columns(4)
cols[0].metric("Savings identified, a month", ui.money(identified, currency), border=True,
               delta=f"{mine.filter(pl.col('status') != 'dismissed').height} recommendations",
               delta_color="off", delta_arrow="off",
               help="Every recommendation not dismissed: new, accepted and done.")
cols[1].metric("Realised, a month", ui.money(realised, currency), border=True,
               delta=ui.percent(float(realised / identified) if identified else 0.0) + " of identified",
               delta_color="off", delta_arrow="off", help="Recommendations marked done.")
cols[2].metric("Accepted, in progress", ui.money(accepted, currency), border=True)
cols[3].metric("Awaiting a decision", open_count, border=True)
others = sorted(set(recs["currency"].drop_nulls().to_list()) - {currency})
if others:
    open_recs = recs.filter(pl.col("status") != "dismissed")
    st.caption("Other currencies: " + "; ".join(
        f"{ui.money(open_recs.filter(pl.col('currency') == c)['monthly_savings'].sum(), c)} "
        "identified" for c in others) + ". Amounts are never added across currencies.")

# ---- filters ------------------------------------------------------------------------------
kind_col, status_col, account_col, tenant_col = st.columns([3, 4, 2, 2], vertical_alignment="bottom")
kinds = sorted(set(recs["kind"].drop_nulls().to_list()), key=ui.kind_text)
chosen_kinds: list[str] = kind_col.multiselect("Kind", kinds, format_func=ui.kind_text,
                                               key=Keys.REC_KIND, placeholder="All kinds")
statuses = ["new", "accepted", "done", "dismissed"]
chosen_status: list[str] = status_col.pills(
    "Status", statuses, selection_mode="multi", default=["new", "accepted"],
    format_func=ui.STATUS_TEXT.__getitem__, key=Keys.REC_STATUS) or []
accounts = sorted({a for v in recs["account"].to_list() if v for a in v.split(", ")})
account: str | None = account_col.selectbox("Account", accounts, index=None, key=Keys.REC_ACCOUNT,
                                            placeholder="All accounts")
tenant_names = sorted({t for v in recs["tenant"].to_list() if v for t in v.split(", ")})
tenant: str | None = tenant_col.selectbox("Tenant", tenant_names, index=None, key=Keys.REC_TENANT,
                                          placeholder="All tenants")

SORTS = {"savings": "Savings, largest first", "savings_asc": "Savings, smallest first",
         "confidence": "Confidence, highest first"}
shown = ui.filter_recommendations(recs, chosen_kinds, chosen_status, account, tenant)
title_col, sort_col = st.columns([3, 2], vertical_alignment="bottom")
title_col.subheader(f"{shown.height} recommendations")
order: str = sort_col.selectbox("Sort by", list(SORTS), format_func=SORTS.__getitem__,
                                key="recs.sort") or "savings"
shown = ui.sort_recommendations(shown, order)
if shown.is_empty():
    st.info("None match the filters.", icon=":material/filter_alt:")
    st.stop()
table = ui.recommendations_table(shown)
mixed = not ui.single_currency(shown)
columns = ui.recommendations_columns(currency, mixed=mixed)
st.dataframe(ui.paginate(table, Keys.REC_PAGE), hide_index=True, placeholder=ui.MISSING,
             column_config=columns)
ui.download_buttons(table, ui.column_labels(columns), "recommendations", "recs.list",
                    currency=currency, money=[] if mixed else ["monthly_savings"])

# ---- one recommendation ----------------------------------------------------------------------
st.subheader("Decide")
ids = shown["recommendation_id"].to_list()
if st.session_state.get(Keys.REC_SELECTED) not in ids:
    st.session_state.pop(Keys.REC_SELECTED, None)
by_id = {r["recommendation_id"]: r for r in shown.iter_rows(named=True)}
selected: str = st.selectbox("Recommendation", ids, key=Keys.REC_SELECTED,
                             format_func=lambda i: ui.recommendation_title(by_id[i])) or ids[0]
rec = by_id[selected]
rec_currency = rec.get("currency") or currency

cols = st.columns(4)
cols[0].metric("Savings a month", ui.money(rec["monthly_savings"], rec_currency), border=True)
cols[1].metric("Confidence", ui.percent(rec["confidence"]) if rec["confidence"] is not None
               else "–", border=True)
cols[2].metric("Status", ui.STATUS_TEXT.get(rec["status"], rec["status"]), border=True)
cols[3].metric("Decided", ui.timestamp_label(rec["decided_at"], zone=False)
               if rec.get("decided_at") else "Not yet", border=True,
               delta=(f"by {rec['decided_by']}" if rec.get("decided_by") else None),
               delta_color="off", delta_arrow="off")
left, right = st.columns([3, 2], gap="large")
with left:
    # Resource ids and evidence come from the data: plain text, never markdown.
    st.text(f"{ui.kind_text(rec['kind'])} of {rec['resource_id']}: {rec['current']} → "
            f"{rec['recommended']}")
    if rec.get("summary"):
        st.text(rec["summary"])
    evidence = pl.DataFrame(data.json_items(rec.get("evidence")), schema=["what", "value"],
                            orient="row")
    st.dataframe(evidence, hide_index=True, column_config={
        "what": st.column_config.TextColumn("Evidence"),
        "value": st.column_config.TextColumn("Value", width="large")})
with right:
    history = data.decision_history(home, selected)
    st.markdown("**Decisions**")
    if history:
        st.dataframe(ui.history_table(history), hide_index=True,
                     column_config=ui.HISTORY_COLUMNS)
    else:
        st.caption("No decision yet.")
    if viewer.can_decide_recommendations:
        comment = st.text_input("Comment", key=Keys.REC_COMMENT, max_chars=500,
                                placeholder="e.g. ticket OPS-1234, resized on Tuesday")
        actions = st.columns(3)
        for column, (status, text, kind) in zip(actions, (
                ("accepted", "Accept", "primary"), ("dismissed", "Dismiss", "secondary"),
                ("done", "Mark done", "secondary")), strict=True):
            if column.button(text, key=f"recs.decide.{status}", type=kind, width="stretch",
                             disabled=rec["status"] == status):
                try:
                    data.decide(home, selected, status, comment)
                except (FinopsError, PermissionError) as exc:
                    st.error(f"Could not save the decision: {exc}", icon=":material/error:")
                else:
                    st.toast(f"Saved: {text.lower()}", icon=":material/check:")
                    st.session_state.pop(Keys.REC_COMMENT, None)
                    st.rerun()
    else:
        st.caption("Only the platform team accepts, dismisses or marks recommendations done.")
