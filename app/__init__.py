"""The Streamlit app: thin pages over ``models/`` and the warehouse.

``main.py`` is the entry point (``finops app`` or ``streamlit run app/main.py -- --home DIR``);
the page scripts in ``views/`` hold layout only, data comes from :mod:`app.data`,
presentation helpers from :mod:`app.ui`, and every session-state key is named in
:class:`app.keys.Keys`.

The page scripts live in ``views/``, not ``pages/``, on purpose: Streamlit treats a
``pages/`` folder beside the main script as a legacy (v1) multipage app, and then runs a
page opened by its URL without ``main.py``, so without the navigation and page setup.
"""
