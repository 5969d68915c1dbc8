"""The FinOps app: ``finops app``, or ``streamlit run app/main.py -- --home DIR``.

This script only sets up the page and the navigation; each page is a thin script in
``views/`` (not ``pages/``: see :mod:`app`) that reads its data through :mod:`app.data`.
"""

from __future__ import annotations

import streamlit as st

from app.context import warehouse_home

st.set_page_config(page_title="FinOps", page_icon=":material/account_balance:", layout="wide")

navigation = st.navigation(
    {
        "Cost": [
            st.Page("views/showback.py", title="Showback", icon=":material/bar_chart:",
                    default=True),
        ],
        "Pipeline": [
            st.Page("views/data_health.py", title="Data health", icon=":material/monitor_heart:",
                    url_path="data-health"),
        ],
    }
)
with st.sidebar:
    st.caption("Warehouse")
    st.code(str(warehouse_home()), language=None, wrap_lines=True)
navigation.run()
