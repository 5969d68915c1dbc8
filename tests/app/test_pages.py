"""Every page in AppTest on a warehouse with every dataset: it renders, its widgets work,
and anomaly feedback and recommendation decisions persist in state.db with who and when.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from app.keys import Keys
from finops.state import open_state
from tests.app.apptest import assert_no_exception, capture_downloads, metric, run_app
from tests.app.conftest import dollars
from tests.app.orgdata import OIDC_ACCESS, build_org, write_access

SHOWBACK, TRENDS, ANOMALIES = "views/showback.py", "views/trends.py", "views/anomalies.py"
RECS, UNITS, HEALTH = "views/recommendations.py", "views/unit_economics.py", "views/data_health.py"
PAGES = (SHOWBACK, TRENDS, ANOMALIES, RECS, UNITS, HEALTH)


@pytest.fixture
def org(tmp_path: Path) -> Path:
    return build_org(tmp_path / "warehouse")


def select_row(at: AppTest, key: str, row: int) -> None:
    at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}


def table(at: AppTest, first_column: str, *, last: bool = False) -> pl.DataFrame:
    """The one table whose first column is ``first_column`` (``last``: the last of them)."""
    found = [d.value for d in at.dataframe if list(d.value.columns)[:1] == [first_column]]
    assert len(found) == 1 or (last and found), [list(d.value.columns) for d in at.dataframe]
    return pl.from_pandas(found[-1])


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(monkeypatch: pytest.MonkeyPatch, org: Path, page: str) -> None:
    at = run_app(monkeypatch, org, page)
    assert at.title, page
    # The local developer (no sign-in configured, bound to 127.0.0.1) is shown in the sidebar.
    assert any("Local developer · Finance" in t.value for t in at.sidebar.text)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_on_an_empty_warehouse(monkeypatch: pytest.MonkeyPatch, empty_home: Path,
                                          page: str) -> None:
    at = run_app(monkeypatch, empty_home, page)
    assert at.info or at.title
    assert not (empty_home / "state.db").exists()


# ---- showback -------------------------------------------------------------------------------
def test_showback_quarter_and_custom_range(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    at = run_app(monkeypatch, org)
    at.segmented_control(key=Keys.PERIOD_KIND).set_value("quarter").run()
    assert_no_exception(at)
    q1 = sum(Decimal(x) for x in ("1011.11", "9191.91", "8282.82", "7373.73"))
    q2 = sum(Decimal(x) for x in ("1122.22", "333.33", "9292.92", "8383.83", "7474.74"))
    assert at.selectbox(key=Keys.QUARTER).value == "2026-Q2"
    assert metric(at, "Effective cost, Q2 2026").value == dollars(q2)
    assert metric(at, "Effective cost, Q1 2026").value == dollars(q1)

    at.segmented_control(key=Keys.PERIOD_KIND).set_value("range").run()
    at.date_input(key=Keys.RANGE).set_value((dt.date(2026, 3, 3), dt.date(2026, 4, 2))).run()
    assert_no_exception(at)
    # Charge days 3 Mar – 2 Apr: globex, initech and support in March, both acme lines in April.
    in_range = sum(Decimal(x) for x in ("9191.91", "8282.82", "7373.73", "1122.22", "333.33"))
    total = metric(at, "Effective cost, 3 Mar 2026 – 2 Apr 2026")
    assert total.value == dollars(in_range)
    # The 31 days before: 31 Jan – 2 Mar, of which only acme's line of 2 March has data.
    assert metric(at, "Effective cost, 31 Jan 2026 – 2 Mar 2026").value == dollars(Decimal("1011.11"))


@pytest.mark.parametrize(("group", "first_column", "expected"), [
    ("service", "service", {"Amazon RDS": 9292.92, "Amazon EC2": 9506.05, "AWS Support": 7474.74,
                            "Amazon S3": 333.33}),
    ("team", "team", {"platform": 26607.04}),  # every line has the team tag
    ("account", "account", {"prod (000111222333)": 26607.04}),
    ("provider", "provider", {"AWS": 26607.04}),
])
def test_showback_group_by(monkeypatch: pytest.MonkeyPatch, org: Path, group: str,
                           first_column: str, expected: dict[str, float]) -> None:
    at = run_app(monkeypatch, org)
    at.selectbox(key=Keys.GROUP).set_value(group).run()
    assert_no_exception(at)
    shown = table(at, first_column)
    assert dict(zip(shown[first_column], shown["cost"], strict=True)) == pytest.approx(expected)


def test_showback_group_by_a_tag(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    at = run_app(monkeypatch, org)
    at.selectbox(key=Keys.GROUP).set_value("tag").run()
    assert at.selectbox(key=Keys.TAG_KEY).options == ["team", "tenant"]
    at.selectbox(key=Keys.TAG_KEY).set_value("tenant").run()
    assert_no_exception(at)
    shown = table(at, "tag")
    assert dict(zip(shown["tag"], shown["cost"], strict=True)) == pytest.approx(
        {"acme": 1455.55, "globex": 9292.92, "initech": 8383.83, "(none)": 7474.74})


def test_tags_after_billing_is_collected_again_say_to_allocate(monkeypatch: pytest.MonkeyPatch,
                                                               org: Path) -> None:
    from finops.ingest import BILLING, PERIOD
    from finops.warehouse import Warehouse
    from tests.app.conftest import SOURCE

    wh = Warehouse(org)
    keys = {"source": SOURCE, PERIOD: "2026-04"}
    again = wh.scan(BILLING, where=keys).collect().drop(list(keys))
    wh.replace_partition(BILLING, keys, again.reverse(), run_id="again")
    wh.drop_staging("again")
    at = run_app(monkeypatch, org)
    at.selectbox(key=Keys.GROUP).set_value("tag").run()
    assert_no_exception(at)
    warned = " ".join(w.value for w in at.warning)
    assert "2026-04" in warned and "finops allocate" in warned
    at = run_app(monkeypatch, org, HEALTH)
    assert "finops allocate" in " ".join(w.value for w in at.warning)
    assert any(m.label for m in at.metric)  # the rest of the page is there


def test_showback_budgets(monkeypatch: pytest.MonkeyPatch, org: Path, tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[[budgets]]\ntenant = "acme"\namount = 2000\n'
                       '[[budgets]]\ntenant = "globex"\namount = 9000\nperiod = "2026-04"\n')
    monkeypatch.setenv("FINOPS_FORECAST__BUDGETS", str(budgets))
    at = run_app(monkeypatch, org)
    shown = table(at, "tenant").to_pandas().set_index("tenant")
    assert shown.loc["acme", "budget"] == 2000.0
    assert shown.loc["acme", "budget_used"] == pytest.approx(1455.55 / 2000 * 100)
    assert shown.loc["globex", "budget"] == 9000.0
    against = metric(at, "Against budget")
    assert against.value == f"{(1455.55 + 9292.92) / 11000:.0%} used"
    assert against.delta == dollars(Decimal("11000") - Decimal("1455.55") - Decimal("9292.92")) + " left"
    at.segmented_control(key=Keys.PERIOD_KIND).set_value("quarter").run()
    shown = table(at, "tenant").to_pandas().set_index("tenant")
    assert shown.loc["acme", "budget"] == 6000.0  # three months of the every-month budget
    assert shown.loc["globex", "budget"] == 9000.0  # April only


def test_showback_drills_from_tenant_to_line_items(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    downloads = capture_downloads(monkeypatch)
    at = run_app(monkeypatch, org)
    tenants = table(at, "tenant")
    row = tenants["tenant"].to_list().index("acme")
    select_row(at, Keys.DRILL_GROUP, row)
    at.run()
    assert_no_exception(at)
    services = table(at, "service", last=True)  # the drill table, after "By service"
    assert dict(zip(services["service"], services["cost"], strict=True)) == {
        "Amazon EC2": 1122.22, "Amazon S3": 333.33}
    assert any(t.value == "Tenant: acme" for t in at.text)

    select_row(at, Keys.DRILL_SECOND, 0)  # Amazon EC2, the larger
    at.run()
    resources = table(at, "resource")
    assert resources.select("resource", "cost", "methods", "rules").rows() == [
        ("i-acme-1", 1122.22, "tag", "tag:tenant")]

    downloads.clear()
    select_row(at, Keys.DRILL_RESOURCE, 0)
    at.run()
    assert_no_exception(at)
    lines = table(at, "ChargePeriodStart")
    assert lines.select("BilledCost", "EffectiveCost", "x_AllocationMethod",
                        "x_AllocationRule").rows() == [(1222.22, 1122.22, "tag", "tag:tenant")]
    assert any("Tenant: acme › Service: Amazon EC2 › Resource: i-acme-1" in t.value for t in at.text)
    # The line items' CSV is exactly the table shown, with its column labels.
    csv = next(d for d in downloads if d.file_name and d.file_name.startswith("line-items")
               and d.file_name.endswith(".csv"))
    exported = pl.read_csv(io.BytesIO(csv.data))
    assert exported["Billed"].to_list() == [1222.22] and exported["Rule"].to_list() == ["tag:tenant"]
    xlsx = next(d for d in downloads if d.file_name and d.file_name.startswith("line-items")
                and d.file_name.endswith(".xlsx"))
    assert xlsx.data.startswith(b"PK") and "tag:tenant" in xlsx.text()


def test_showback_download_is_the_table_shown(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    downloads = capture_downloads(monkeypatch)
    at = run_app(monkeypatch, org)
    shown = table(at, "tenant")
    csv = next(d for d in downloads if d.file_name == "showback-Tenant-April_2026-USD.csv")
    exported = pl.read_csv(io.BytesIO(csv.data))
    assert exported.columns == ["Tenant", "April 2026", "March 2026", "Change", "Change %"]
    assert exported["Tenant"].to_list() == shown["tenant"].to_list()
    assert exported["April 2026"].to_list() == shown["cost"].to_list()


# ---- trends and forecast -----------------------------------------------------------------------
def test_trends_shows_month_to_date_and_the_forecast(monkeypatch: pytest.MonkeyPatch, org: Path,
                                                      tmp_path: Path) -> None:
    budgets = tmp_path / "budgets.toml"
    budgets.write_text('[[budgets]]\ntenant = "acme"\namount = 1400\n')
    monkeypatch.setenv("FINOPS_FORECAST__BUDGETS", str(budgets))
    at = run_app(monkeypatch, org, TRENDS)
    april = Decimal("26607.04")
    assert metric(at, "Month to date, April 2026").value == dollars(april)
    assert metric(at, "Forecast, month end").value == "$26,000.00"
    assert metric(at, "Forecast, month end").delta == "80%: $25,950.00 – $26,050.00"
    assert metric(at, "Forecast, May 2026").value == "$26,000.00"
    assert metric(at, "Sum of tenant budgets").value == "$1,400.00"
    assert len(at.get("plotly_chart")) == 2

    at.selectbox(key=Keys.TREND_FOCUS).set_value(("tenant", "acme")).run()
    assert_no_exception(at)
    assert metric(at, "Month to date, April 2026").value == dollars(Decimal("1455.55"))
    assert metric(at, "Forecast, month end").value == "$1,500.00"
    budget = metric(at, "Budget")
    assert budget.value == "$1,400.00" and budget.delta == "$100.00 over forecast"

    for window in ("30", "90", "182"):
        at.segmented_control(key=Keys.TREND_WINDOW).set_value(window).run()
        assert_no_exception(at)
    for stack in ("service", "provider", "team", "account"):
        at.selectbox(key=Keys.TREND_STACK).set_value(stack).run()
        assert_no_exception(at)
    at.segmented_control(key=Keys.TREND_COST).set_value("billed_cost").run()
    assert metric(at, "Month to date, April 2026").value == dollars(Decimal("1555.55"))


# ---- anomalies ------------------------------------------------------------------------------
def test_anomalies_list_detail_and_feedback_persists(monkeypatch: pytest.MonkeyPatch,
                                                      org: Path) -> None:
    write_access(org, OIDC_ACCESS)
    at = run_app(monkeypatch, org, ANOMALIES, user="cfo@example.com")
    assert metric(at, "Open anomalies").value == "4"
    assert metric(at, "High or critical, open").value == "2"
    events = table(at, "severity")
    assert events["severity"].to_list() == ["Critical", "High", "Medium", "Low"]
    assert events["impact"].to_list()[0] == "+$3,838.38"

    at.pills(key=Keys.ANOMALY_SEVERITY).set_value(["high"]).run()
    assert table(at, "severity")["dimension_value"].to_list() == ["acme"]
    assert at.selectbox(key=Keys.ANOMALY_SELECTED).value == "an-acme000001"
    assert metric(at, "Impact").value == "+$500.00"
    causes = table(at, "dimension")
    assert causes["value"].to_list() == ["Amazon EC2", "acme"]

    at.text_input(key=Keys.ANOMALY_COMMENT).input("Quarter-end batch, as every quarter")
    at.button(key="anomalies.label.expected").click().run()
    assert_no_exception(at)
    from models.anomalies import load_feedback

    state = open_state(org)
    try:
        (saved,) = load_feedback(state)
    finally:
        state.close()
    assert (saved.event.anomaly_id, saved.label, saved.who, saved.comment) == (
        "an-acme000001", "expected", "cfo@example.com", "Quarter-end batch, as every quarter")
    # It no longer counts as open; under Expected it shows who said so.
    assert metric(at, "Open anomalies").value == "3"
    at.segmented_control(key=Keys.ANOMALY_STATUS).set_value("expected").run()
    at.pills(key=Keys.ANOMALY_SEVERITY).set_value(["high"]).run()
    assert table(at, "severity")["label"].to_list() == ["Expected"]
    assert any(t.value.startswith("Marked expected by cfo@example.com on ")
               and t.value.endswith(": Quarter-end batch, as every quarter") for t in at.text)

    # A fresh session reads it back from state.db.
    again = run_app(monkeypatch, org, ANOMALIES, user="cfo@example.com")
    assert metric(again, "With feedback").value == "1"


def test_viewers_cannot_label_anomalies(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    write_access(org, OIDC_ACCESS)
    at = run_app(monkeypatch, org, ANOMALIES, user="viewer@example.com")
    assert not [b for b in at.button if b.key and b.key.startswith("anomalies.label.")]
    assert any("but not label them" in c.value for c in at.caption)


# ---- recommendations -------------------------------------------------------------------------
def test_recommendations_filters_sort_and_totals(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    at = run_app(monkeypatch, org, RECS)
    assert metric(at, "Savings identified").value == dollars(Decimal("11634.21"))
    assert metric(at, "Realised").value == "$0.00"
    recs = table(at, "monthly_savings")
    assert recs["monthly_savings"].to_list() == [6161.61, 5151.51, 321.09]
    assert recs["tenant"].to_list() == ["globex", None, "acme"]

    at.selectbox(key="recs.sort").set_value("savings_asc").run()
    assert table(at, "monthly_savings")["monthly_savings"].to_list() == [321.09, 5151.51, 6161.61]
    at.multiselect(key=Keys.REC_KIND).set_value(["rightsize_compute", "idle_instance"]).run()
    assert table(at, "monthly_savings")["resource_id"].to_list() == ["i-acme-1", "db-globex"]
    at.selectbox(key=Keys.REC_TENANT).set_value("acme").run()
    assert table(at, "monthly_savings")["resource_id"].to_list() == ["i-acme-1"]
    at.selectbox(key=Keys.REC_TENANT).set_value(None).run()
    at.selectbox(key=Keys.REC_ACCOUNT).set_value("000111222333").run()
    assert len(table(at, "monthly_savings")) == 2
    assert_no_exception(at)
    # Finance reads but does not decide.
    assert not [b for b in at.button if b.key and b.key.startswith("recs.decide.")]


def test_platform_decisions_persist_with_who_and_when(monkeypatch: pytest.MonkeyPatch,
                                                      org: Path) -> None:
    write_access(org, OIDC_ACCESS)
    at = run_app(monkeypatch, org, RECS, user="sre@example.com")
    at.selectbox(key=Keys.REC_SELECTED).set_value("rec-acme00000001").run()
    at.text_input(key=Keys.REC_COMMENT).input("OPS-42")
    at.button(key="recs.decide.accepted").click().run()
    assert_no_exception(at)
    at.pills(key=Keys.REC_STATUS).set_value(["new", "accepted", "done"]).run()
    at.selectbox(key=Keys.REC_SELECTED).set_value("rec-acme00000001").run()
    at.button(key="recs.decide.done").click().run()
    assert_no_exception(at)

    from models.rightsizing.lifecycle import decision_log, load_decisions

    state = open_state(org)
    try:
        decision = load_decisions(state)["rec-acme00000001"]
        log = decision_log(state, "rec-acme00000001")
    finally:
        state.close()
    assert (decision.status, decision.who) == ("done", "sre@example.com")
    assert [(h["status"], h["who"], h["comment"]) for h in log] == [
        ("accepted", "sre@example.com", "OPS-42"), ("done", "sre@example.com", None)]
    assert metric(at, "Realised").value == "$321.09"
    at.pills(key=Keys.REC_STATUS).set_value(["done"]).run()
    done = table(at, "monthly_savings")
    assert done.select("resource_id", "status", "decided_by").rows() == [
        ("i-acme-1", "Done", "sre@example.com")]
    assert done["decided_at"][0].endswith("UTC")
    history = table(at, "decided_at")
    assert history["who"].to_list() == ["sre@example.com", "sre@example.com"]


def test_viewers_have_no_recommendations_page(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    write_access(org, OIDC_ACCESS)
    at = run_app(monkeypatch, org, user="viewer@example.com")
    pages = [p.get("page_name") for p in at._registered_pages.values()]
    assert "Recommendations" not in pages and "Unit economics" in pages


# ---- unit economics --------------------------------------------------------------------------
def test_unit_economics(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    at = run_app(monkeypatch, org, UNITS)
    total = sum(Decimal(x) for x in ("12.34", "23.45", "34.56", "4141.41", "3131.31", "8282.82",
                                     "7373.73"))
    assert metric(at, "Warehouse cost").value == dollars(total)
    assert metric(at, "Warehouse cost").delta == "$7,373.73 idle"
    assert metric(at, "Queries").value == "6"
    assert metric(at, "Cost per query").value == dollars(total / 6)
    assert metric(at, "TB scanned").value == "28.00"
    assert metric(at, "Cost per TB scanned").value == dollars(total / 28)
    tenants = table(at, "tenant").to_pandas().set_index("tenant")
    assert tenants.loc["acme", "queries"] == 3
    assert tenants.loc["acme", "cost_per_query"] == pytest.approx((12.34 + 23.45 + 34.56) / 3, abs=1e-4)
    top = table(at, "query_id")
    assert top["query_id"].to_list()[:2] == ["q-initech-1", "q-globex-1"]
    recurring = table(at, "query_hash")
    assert recurring["query_hash"].to_list() == ["h-globex", "h-acme"]


# ---- data health -----------------------------------------------------------------------------
def test_data_health_sections(monkeypatch: pytest.MonkeyPatch, org: Path) -> None:
    at = run_app(monkeypatch, org, HEALTH)
    assert metric(at, "t").value == "5 Apr 2026"  # source "t": its latest charge day
    recon = table(at, "period")
    assert set(recon["status"]) == {"Reconciled"}
    assert recon.filter(pl.col("period") == "2026-04")["collected_billed"].to_list() == [
        dollars(Decimal("26707.04"))]
    coverage = table(at, "key").to_pandas().set_index("key")
    tagged = (1122.22 + 333.33 + 9292.92 + 8383.83) / 26607.04 * 100
    assert coverage.loc["tenant", "share"] == pytest.approx(tagged)
    assert coverage.loc["team", "share"] == pytest.approx(100.0)
    assert any("No FOCUS 1.2 violations" in s.value for s in at.success) or table(at, "source") is not None
    assert any("No rows were set aside" in s.value for s in at.success)


def test_drilling_into_an_untrusted_name_keeps_it_plain_text(
        monkeypatch: pytest.MonkeyPatch, warehouse: Path) -> None:
    from tests.app.apptest import non_table_elements
    from tests.app.conftest import XSS

    at = run_app(monkeypatch, warehouse)
    select_row(at, Keys.DRILL_GROUP, table(at, "tenant")["tenant"].to_list().index(XSS))
    at.run()
    assert_no_exception(at)
    assert any(t.value == f"Tenant: {XSS}" for t in at.text)  # st.text: no markdown, no HTML
    for element in non_table_elements(at):
        if element.type != "text":
            assert XSS.encode() not in element.proto.SerializeToString(), element.type
        assert not getattr(element.proto, "allow_html", False)


def test_data_health_shows_violations_and_rows_set_aside(monkeypatch: pytest.MonkeyPatch,
                                                         org: Path) -> None:
    from finops.ingest import BILLING, PERIOD, REJECT, REJECTED
    from finops.warehouse import Warehouse
    from tests.app.conftest import SOURCE, billing_frame
    from tests.app.orgdata import ORG_LINES

    wh = Warehouse(org)
    bad = (billing_frame([x for x in ORG_LINES if x.period == "2026-04"])
           .with_columns(pl.lit("Bogus").alias("ChargeCategory")))
    wh.replace_partition(BILLING, {"source": "bad", PERIOD: "2026-04"}, bad, run_id="t")
    aside = (billing_frame(list(ORG_LINES[:2]))
             .with_columns(pl.lit("BilledCost 'abc' is not a number").alias(REJECT)))
    wh.replace_partition(REJECTED, {"source": SOURCE, "run": "r1"}, aside, run_id="t")
    wh.drop_staging("t")

    def with_columns(*names: str) -> pl.DataFrame:
        return pl.from_pandas(next(d.value for d in at.dataframe
                                   if set(names) <= set(d.value.columns)))

    at = run_app(monkeypatch, org, HEALTH)
    issues = with_columns("column", "detail", "checked_rows")
    assert issues.filter(pl.col("source") == "bad").select("column", "rows").rows() == [
        ("ChargeCategory", 5)]
    assert set(issues["checked_rows"]) == {5}
    assert with_columns("reason").rows() == [(SOURCE, "BilledCost", 2)]
    aside_rows = with_columns("x_RejectReason")
    assert aside_rows["x_RejectReason"].to_list() == ["BilledCost 'abc' is not a number"] * 2
    at.button(key=Keys.HEALTH_FULL_VALIDATION + ".button").click().run()
    assert_no_exception(at)
    assert not [b for b in at.button if b.key == Keys.HEALTH_FULL_VALIDATION + ".button"]
    assert any("every row" in c.value for c in at.caption)
