"""The Streamlit app: thin pages over ``models/`` and the warehouse.

``main.py`` is the entry point (``finops app`` or ``streamlit run app/main.py -- --home DIR``):
it signs the user in (:mod:`app.identity`) and runs the navigation. The page scripts in
``views/`` hold layout only: their data comes from :mod:`app.data`, which reads through the
signed-in user's scoped warehouse (:mod:`models.access`), so no page can show a row its
viewer may not read; presentation helpers are in :mod:`app.ui`, and every session-state
key is named in :class:`app.keys.Keys`.

Pages (URL path): Showback (``/showback``, also the root), Trends and forecast
(``/forecast``), Anomalies (``/anomalies``), Recommendations (``/recommendations``; not
for viewers), Unit economics (``/unit-economics``) and Data health (``/data-health``): the
paths the weekly report links to.

The page scripts live in ``views/``, not ``pages/``, on purpose: Streamlit treats a
``pages/`` folder beside the main script as a legacy (v1) multipage app, and then runs a
page opened by its URL without ``main.py``, so without the navigation and page setup.
"""
