"""Which warehouse this app reads.

Precedence, highest first: ``--home DIR`` after ``--`` on the command line
(``streamlit run app/main.py -- --home DIR``, which is what ``finops app`` runs), then
``FINOPS_HOME`` and ``finops.toml`` through :func:`finops.settings.load_settings`, then the
default ``data/warehouse``. The result is resolved once per session and kept in
``st.session_state[Keys.HOME]``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from app.keys import Keys
from finops.errors import ConfigError
from finops.settings import load_settings


def home_argument(argv: Sequence[str]) -> Path | None:
    """The value of ``--home DIR`` or ``--home=DIR`` in ``argv``, the last one winning."""
    found: Path | None = None
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--home" and i + 1 < len(args):
            found = Path(args[i + 1])
        elif arg.startswith("--home="):
            found = Path(arg.removeprefix("--home="))
    return found


def resolve_home(argv: Sequence[str]) -> Path:
    """The warehouse folder, absolute: the command line, else settings (env, file, default)."""
    return load_settings(home=home_argument(argv)).home.expanduser().resolve()


def warehouse_home() -> Path:
    """This session's warehouse folder; on a settings error, says what is wrong and stops."""
    known = st.session_state.get(Keys.HOME)
    if known:
        return Path(known)
    try:
        home = resolve_home(sys.argv[1:])
    except ConfigError as exc:
        st.error(f"The app cannot read its settings: {exc.message}")
        if exc.hint:
            st.caption(exc.hint)
        st.stop()
    st.session_state[Keys.HOME] = str(home)
    return home
