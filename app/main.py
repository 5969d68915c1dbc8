"""The FinOps app: ``finops app``, or ``streamlit run app/main.py -- --home DIR``.

This script sets up the page, signs the user in (:func:`app.identity.sign_in`: OIDC, a
trusted proxy, or the local developer on loopback) and runs the navigation; each page is
a thin script in ``views/`` (not ``pages/``: see :mod:`app`) that reads its data through
:mod:`app.data`, scoped to the signed-in user.
"""

from __future__ import annotations

import streamlit as st

from app.context import warehouse_home
from app.identity import sign_in

st.set_page_config(page_title="FinOps", page_icon=":material/account_balance:", layout="wide")

home = warehouse_home()
principal = sign_in(home)

showback = st.Page("views/showback.py", title="Showback", icon=":material/bar_chart:",
                   url_path="showback")


def home_page() -> None:
    """The root URL opens Showback at its own address (``/showback``, where the weekly
    report's links point), keeping any query parameters of the link."""
    st.switch_page(showback, query_params=st.query_params.to_dict())


cost_pages = [
    st.Page(home_page, title="Home", url_path="home", default=True, visibility="hidden"),
    showback,
    st.Page("views/trends.py", title="Trends and forecast", icon=":material/trending_up:",
            url_path="forecast"),
    st.Page("views/anomalies.py", title="Anomalies", icon=":material/crisis_alert:",
            url_path="anomalies"),
]
save_pages = [
    st.Page("views/unit_economics.py", title="Unit economics", icon=":material/query_stats:",
            url_path="unit-economics"),
]
if principal.view.sees_recommendations:
    save_pages.insert(0, st.Page("views/recommendations.py", title="Recommendations",
                                 icon=":material/savings:", url_path="recommendations"))
navigation = st.navigation(
    {
        "Cost": cost_pages,
        "Savings": save_pages,
        "Pipeline": [
            st.Page("views/data_health.py", title="Data health", icon=":material/monitor_heart:",
                    url_path="data-health"),
        ],
    }
)
with st.sidebar:
    with st.container(border=True):
        # Names and addresses come from the identity provider: plain text, never markdown.
        if principal.source == "dev":
            st.text(f"{principal.name or principal.email} · {principal.label}")
            st.caption("Local development: no sign-in is configured, so the app serves "
                       "127.0.0.1 only and you see everything.")
        else:
            st.text(principal.name or principal.email)
            st.text((f"{principal.email}\n" if principal.name else "")
                    + f"{principal.label} · {principal.scope_label}")
            if principal.source == "oidc":
                st.button("Sign out", on_click=st.logout, icon=":material/logout:",
                          type="tertiary")
    if principal.view.sees_pipeline:
        st.caption("Warehouse")
        st.code(str(home), language=None, wrap_lines=True)
navigation.run()
