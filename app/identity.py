"""Who is using the app, resolved by ``main.py`` on every run, before any page.

The rules live in :mod:`models.access`; this module only asks Streamlit for what it
knows: the OIDC login (``st.login`` / ``st.user``), the headers of the connection and the
address it came from (for a trusted proxy), and the address the server is bound to (dev
mode is allowed on loopback only). The resolved :class:`~models.access.Principal` is kept
in ``st.session_state[Keys.PRINCIPAL]`` for :mod:`app.data`, which scopes every read by it;
a run that cannot resolve one stops before any page renders.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import streamlit as st

from app.keys import Keys
from finops.errors import ConfigError
from finops.settings import load_settings
from models.access import (
    DEV_IDENTITY,
    AccessConfig,
    Identity,
    Principal,
    access_config_path,
    identity_from_proxy,
    load_access_config,
    resolve_principal,
    serving_mode,
)
from models.allocation import AllocationConfig, load_config
from models.allocation.engine import default_config_path


class NotSignedIn(RuntimeError):
    """A data function ran without a signed-in principal (a page run without main.py)."""


def current() -> Principal:
    """The principal of this run; raises rather than ever reading unscoped."""
    principal = st.session_state.get(Keys.PRINCIPAL)
    if not isinstance(principal, Principal):
        raise NotSignedIn("no signed-in user for this run: pages run through app/main.py")
    return principal


# ---- configuration (cached on the files' modification times) -----------------------------
def _stamp(path: Path | None) -> float | None:
    try:
        return path.stat().st_mtime if path is not None else None
    except OSError:
        return None


@st.cache_resource(show_spinner=False, max_entries=8)
def _access_config(path: str | None, stamp: float | None) -> AccessConfig:
    return load_access_config(Path(path) if path else None)


@st.cache_resource(show_spinner=False, max_entries=8)
def _allocation_config(path: str | None, stamp: float | None) -> AllocationConfig:
    return load_config(Path(path)) if path else AllocationConfig()


def access_config(home: Path) -> AccessConfig:
    # ``[app] access`` / FINOPS_APP__ACCESS through the settings, once they declare it.
    declared = getattr(load_settings(home=home).app, "access", None)
    path = access_config_path(home, Path(declared) if declared else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"{path}: the access config named by FINOPS_APP__ACCESS does not exist",
                          hint="Point FINOPS_APP__ACCESS at the access config file, or unset it.")
    return _access_config(str(path) if path else None, _stamp(path))


def allocation_config(home: Path) -> AllocationConfig:
    """The allocation config the pipeline uses: its owners say who owns which tenant."""
    explicit = load_settings(home=home).allocation_config
    path = explicit if explicit is not None else default_config_path(home)
    if explicit is None and not path.exists():
        return AllocationConfig()
    return _allocation_config(str(path), _stamp(path))


# ---- identity sources ------------------------------------------------------------------
def oidc_configured() -> bool:
    """Whether Streamlit's OIDC login is set up (an ``[auth]`` section in its secrets)."""
    from streamlit.auth_util import get_secrets_auth_section

    try:
        return bool(get_secrets_auth_section())
    except (OSError, ValueError):
        return False


def peer_address() -> str | None:
    """The TCP peer of this session's connection (the proxy, behind one).

    ``st.context.ip_address`` hides loopback peers (it returns None for them), so the
    session's client context is read directly; None when unknown.
    """
    try:
        from streamlit.runtime import get_instance
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        client = get_instance().get_client(ctx.session_id) if ctx is not None else None
        remote = client.client_context.remote_ip if client is not None else None
    except (AttributeError, RuntimeError):
        remote = None
    return str(remote) if remote else None


def _stop(message: str, hint: str | None = None, *, sign_out: bool = False) -> NoReturn:
    st.session_state.pop(Keys.PRINCIPAL, None)
    st.title("FinOps")
    st.error(message, icon=":material/lock:")
    if hint:
        st.caption(hint)
    if sign_out:
        st.button("Sign out", on_click=st.logout, icon=":material/logout:")
    st.stop()


def _oidc_identity() -> Identity:
    if st.user.get("is_logged_in") is not True:
        st.session_state.pop(Keys.PRINCIPAL, None)
        if not oidc_configured():
            _stop("Sign-in is set to OIDC, but Streamlit has no [auth] section.",
                  "Add the identity provider to .streamlit/secrets.toml ([auth] with redirect_uri, "
                  "cookie_secret, client_id, client_secret, server_metadata_url).")
        from streamlit.auth_util import is_authlib_installed

        st.title("FinOps")
        st.write("Cloud cost showback, forecasts, anomalies and savings. Sign in with your "
                 "company account to continue.")
        if not is_authlib_installed():
            st.error("Sign-in needs the Authlib package: `pip install 'Authlib>=1.3.2'`.",
                     icon=":material/error:")
        else:
            st.button("Sign in", type="primary", on_click=st.login, icon=":material/login:")
        st.stop()
    email = st.user.get("email")
    if not isinstance(email, str) or not email:
        _stop("Your identity provider did not say your e-mail address.",
              "Ask for the `email` scope (server_metadata_url with `openid email profile`).",
              sign_out=True)
    if st.user.get("email_verified") is False:
        _stop(f"Your e-mail address {email} is not verified by your identity provider.",
              sign_out=True)
    name = st.user.get("name")
    return Identity(email, name if isinstance(name, str) else None, "oidc")


def sign_in(home: Path) -> Principal:
    """Resolve who is at the keyboard, or explain why not and stop the run."""
    try:
        config = access_config(home)
        mode = serving_mode(config, oidc_configured=oidc_configured(),
                            address=st.get_option("server.address"))
        allocation = allocation_config(home)
    except ConfigError as exc:
        _stop(f"The app cannot start: {exc.message}", exc.hint)
    if mode == "oidc":
        identity = _oidc_identity()
    elif mode == "proxy":
        assert config.proxy is not None  # serving_mode chose proxy: it is configured
        peer = peer_address()
        found = identity_from_proxy(dict(st.context.headers), peer, config.proxy)
        if found is None:
            _stop("Open this app through the company sign-in, not directly.",
                  f"The app believes the {config.proxy.header} header only from its "
                  f"authenticating proxy; this connection came from {peer or 'an unknown address'}"
                  ". (Operators: a proxy on this host needs FORWARDED_ALLOW_IPS=\"\" in the app's "
                  "environment, so the server does not replace its address with the browser's.)")
        identity = found
    else:
        identity = DEV_IDENTITY
    principal = resolve_principal(identity, config, allocation)
    if principal is None:
        _stop(f"You are signed in as {identity.email}, but no access is set up for this address.",
              "Ask the FinOps team to add you to the app's access config, or to list you as an "
              "owner of your tenant in the allocation config.",
              sign_out=identity.source == "oidc")
    st.session_state[Keys.PRINCIPAL] = principal
    return principal
