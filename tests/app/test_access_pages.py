"""Access control through the app: a tenant owner never reads another tenant's rows.

The owner of acme signs in (OIDC, as AppTest seeds ``st.user``) and goes through every
page, every grouping, period, filter and drill-down level; the test reads everything the
pages hold (every element's text, every table's cells, every chart's data, every CSV and
Excel download) and finds no other tenant's name and none of their amounts, nor the
organisation's totals. Then: who is refused, and what each role may do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.keys import Keys
from tests.app.apptest import (
    Download,
    assert_no_exception,
    capture_downloads,
    element_text,
    every_element,
    metric,
    run_app,
)
from tests.app.conftest import bind_to, dollars
from tests.app.orgdata import (
    OIDC_ACCESS,
    OTHER_TENANTS,
    OWNER,
    build_org,
    forbidden_amounts,
    write_access,
)

PAGES = ("views/showback.py", "views/trends.py", "views/anomalies.py", "views/recommendations.py",
         "views/unit_economics.py", "views/data_health.py")
OTHER_NAMES = tuple(t for t in OTHER_TENANTS if t != "unallocated")


@pytest.fixture
def org(tmp_path: Path) -> Path:
    home = build_org(tmp_path / "warehouse")
    write_access(home, OIDC_ACCESS)
    return home


def leaks(texts: Iterator[tuple[str, str]]) -> list[str]:
    amounts = forbidden_amounts()
    found = []
    for where, text in texts:
        for name in OTHER_NAMES:
            if name in text.lower():
                found.append(f"{where}: names {name}")
        if "unallocated" in text and where.startswith(("dataframe", "plotly_chart", "download")):
            found.append(f"{where}: shows unallocated cost")
        found += [f"{where}: shows {a}" for a in amounts if a in text]
    return found


def everything_shown(at: AppTest, downloads: list[Download]) -> Iterator[tuple[str, str]]:
    for element in every_element(at):
        yield element.type, element_text(element)
    for download in downloads:
        yield f"download {download.file_name}", download.text()


def assert_nothing_of_others(at: AppTest, downloads: list[Download], step: str) -> None:
    assert_no_exception(at)
    found = leaks(everything_shown(at, downloads))
    assert not found, f"{step}: " + "; ".join(found[:10])


def select_row(at: AppTest, key: str, row: int) -> None:
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}


def test_the_tenant_owner_sees_their_own_figures(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    at = run_app(monkeypatch, org, user=OWNER)
    assert metric(at, "Effective cost, April 2026").value == dollars(
        Decimal("1122.22") + Decimal("333.33"))
    assert metric(at, "Your tenants").value == "acme"
    assert not [m for m in at.metric if m.label == "Unallocated share"]
    assert any(OWNER in t.value and "Tenant owner · acme" in t.value for t in at.sidebar.text)


def test_no_page_shows_another_tenant(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    downloads = capture_downloads(monkeypatch)
    at = run_app(monkeypatch, org, user=OWNER)
    for page in PAGES:
        downloads.clear()
        at.switch_page(page).run()
        assert at.title, page
        assert_nothing_of_others(at, downloads, page)


def test_no_showback_view_shows_another_tenant(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    downloads = capture_downloads(monkeypatch)
    at = run_app(monkeypatch, org, user=OWNER)
    for group in ("tenant", "team", "service", "account", "provider"):
        at.selectbox(key=Keys.GROUP).set_value(group).run()
        assert_nothing_of_others(at, downloads, f"group by {group}")
    at.selectbox(key=Keys.GROUP).set_value("tag").run()
    for key in at.selectbox(key=Keys.TAG_KEY).options:
        at.selectbox(key=Keys.TAG_KEY).set_value(key).run()
        assert_nothing_of_others(at, downloads, f"group by tag {key}")
    at.selectbox(key=Keys.GROUP).set_value("tenant").run()
    for cost in ("billed_cost", "effective_cost"):
        at.segmented_control(key=Keys.COST).set_value(cost).run()
        at.selectbox(key=Keys.PERIOD).set_value("2026-03").run()
        assert_nothing_of_others(at, downloads, f"March, {cost}")
    at.segmented_control(key=Keys.PERIOD_KIND).set_value("quarter").run()
    assert_nothing_of_others(at, downloads, "quarter")
    at.segmented_control(key=Keys.PERIOD_KIND).set_value("range").run()
    at.date_input(key=Keys.RANGE).set_value((dt.date(2026, 3, 1), dt.date(2026, 4, 30))).run()
    assert_nothing_of_others(at, downloads, "custom range")

    # The drill-down, every level, down to the line items and their downloads.
    at.segmented_control(key=Keys.PERIOD_KIND).set_value("month").run()
    select_row(at, Keys.DRILL_GROUP, 0)
    at.run()
    for service_row in (0, 1):
        select_row(at, Keys.DRILL_SECOND, service_row)
        at.run()
        select_row(at, Keys.DRILL_RESOURCE, 0)
        at.run()
        assert any(d.type == "dataframe" and "ChargePeriodStart" in d.value.columns
                   for d in at.dataframe), "the line items are shown"
        assert_nothing_of_others(at, downloads, f"drill-down, service row {service_row}")


def test_no_filter_elsewhere_shows_another_tenant(monkeypatch: pytest.MonkeyPatch,
                                                  org: Path) -> None:
    downloads = capture_downloads(monkeypatch)
    at = run_app(monkeypatch, org, "views/trends.py", user=OWNER)
    assert at.selectbox(key=Keys.TREND_FOCUS).options == ["Tenant: acme"]
    for stack in at.selectbox(key=Keys.TREND_STACK).options:
        at.selectbox(key=Keys.TREND_STACK).set_value(
            {"Tenant": "tenant", "Service": "service", "Provider": "provider",
             "Account": "account"}[stack]).run()
        for window in ("month", "30", "182"):
            at.segmented_control(key=Keys.TREND_WINDOW).set_value(window).run()
            assert_nothing_of_others(at, downloads, f"trends {stack} {window}")

    at.switch_page("views/anomalies.py").run()
    at.segmented_control(key=Keys.ANOMALY_STATUS).set_value("all").run()
    assert at.selectbox(key=Keys.ANOMALY_SELECTED).options == [
        at.selectbox(key=Keys.ANOMALY_SELECTED).options[0]]  # one: acme's own
    assert_nothing_of_others(at, downloads, "anomalies, all")

    at.switch_page("views/recommendations.py").run()
    at.pills(key=Keys.REC_STATUS).set_value(["new", "accepted", "done", "dismissed"]).run()
    assert len(at.selectbox(key=Keys.REC_SELECTED).options) == 1
    assert at.selectbox(key=Keys.REC_TENANT).options == ["acme"]
    assert_nothing_of_others(at, downloads, "recommendations, every status")

    at.switch_page("views/unit_economics.py").run()
    at.selectbox(key=Keys.UE_PERIOD).set_value("all").run()
    assert_nothing_of_others(at, downloads, "unit economics, all months")

    at.switch_page("views/data_health.py").run()
    at.selectbox(key=Keys.HEALTH_COVERAGE_PERIOD).set_value("2026-03").run()
    assert_nothing_of_others(at, downloads, "data health, March")
    # Organisation-wide run totals, validation and rows set aside are not shown.
    assert not [s for s in at.subheader if s.value in ("Totals per billing period", "Reconciliation",
                                                        "FOCUS 1.2 validation", "Rows set aside")]


def test_a_tenant_owner_cannot_decide_or_label_others(monkeypatch: pytest.MonkeyPatch,
                                                      org: Path) -> None:
    at = run_app(monkeypatch, org, "views/recommendations.py", user=OWNER)
    assert not [b for b in at.button if b.key and b.key.startswith("recs.decide.")]
    at.switch_page("views/anomalies.py").run()
    # They may label their own tenant's anomaly, the only one they see.
    at.button(key="anomalies.label.planned").click().run()
    assert_no_exception(at)
    from finops.state import open_state
    from models.anomalies import load_feedback

    state = open_state(org)
    try:
        assert [(f.event.anomaly_id, f.who) for f in load_feedback(state)] == [
            ("an-acme000001", OWNER)]
    finally:
        state.close()


# ---- who is refused --------------------------------------------------------------------------
def test_a_stranger_is_refused(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    at = run_app(monkeypatch, org, user="mallory@example.com", errors_expected=True)
    assert "no access is set up" in at.error[0].value
    assert not at.dataframe and not at.metric and not at.get("plotly_chart")


def test_not_signed_in_shows_nothing(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    monkeypatch.setenv("FINOPS_HOME", str(org))
    from tests.app.conftest import APP_MAIN

    at = AppTest.from_file(str(APP_MAIN), default_timeout=60)
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert at.error and "no [auth] section" in at.error[0].value
    assert not at.dataframe and not at.metric


def test_without_sign_in_the_app_refuses_all_interfaces(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    home = build_org(tmp_path / "w")  # no access config: dev mode, if on loopback
    bind_to(monkeypatch, "0.0.0.0")
    at = run_app(monkeypatch, home, errors_expected=True)
    assert "refusing to serve the app on 0.0.0.0 without authentication" in at.error[0].value
    assert not at.dataframe and not at.metric
    bind_to(monkeypatch, None)  # streamlit's default: every interface
    at = run_app(monkeypatch, home, errors_expected=True)
    assert "without authentication" in at.error[0].value


def test_proxy_mode_without_the_proxy_shows_nothing(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    home = build_org(tmp_path / "w")
    write_access(home, 'identity = "proxy"\n[proxy]\ntrusted = ["10.9.9.9"]\n')
    at = run_app(monkeypatch, home, errors_expected=True)  # AppTest has no connection at all
    assert "through the company sign-in" in at.error[0].value
    assert not at.dataframe and not at.metric


def test_a_bad_access_config_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = build_org(tmp_path / "w")
    write_access(home, '[[users]]\nemail = "a@b.example"\nrole = "owner"\n')
    at = run_app(monkeypatch, home, errors_expected=True)
    assert "cannot start" in at.error[0].value and "access.toml" in at.error[0].value


def test_the_check_sees_what_finance_sees(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    """The same check on finance's view finds the other tenants everywhere it looks."""
    downloads = capture_downloads(monkeypatch)
    at = run_app(monkeypatch, org, user="cfo@example.com")
    found = leaks(everything_shown(at, downloads))
    assert any(f.startswith("dataframe") and "globex" in f for f in found)
    assert any(f.startswith("plotly_chart") and "initech" in f for f in found)
    assert any(f.startswith("download") and "9,292.92" not in f and "9292.92" in f for f in found)
    assert any(f.startswith("metric") and dollars(Decimal("26607.04"))[1:] in f
               for f in found)
    at.switch_page("views/unit_economics.py").run()
    assert any("8282.82" in f for f in leaks(everything_shown(at, downloads)))
