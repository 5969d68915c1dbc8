"""The Showback page in AppTest: exact totals, the cost basis, months, empty warehouse, XSS.

Every expected figure is computed here from the fixture's ``LINES`` with ``Decimal``,
independently of the app and of ``models/``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from app.keys import Keys
from tests.app.apptest import assert_no_exception, metric, non_table_elements, run_app
from tests.app.conftest import LINES, XSS, Line, build_warehouse, dollars, expected_total

APRIL, MARCH = "2026-04", "2026-03"


def by_tenant(period: str, cost: str) -> dict[str, float]:
    """Tenant -> cost to the cent, as the tenant table should show it."""
    out: dict[str, Decimal] = {}
    for x in LINES:
        if x.period == period:
            name = x.tenant if x.tenant is not None else "unallocated"
            out[name] = out.get(name, Decimal(0)) + Decimal(getattr(x, cost))
    return {k: float(v.quantize(Decimal("0.01"))) for k, v in out.items()}


def test_renders_latest_month_effective_total_to_the_cent(
        monkeypatch: pytest.MonkeyPatch, warehouse: Path) -> None:
    at = run_app(monkeypatch, warehouse)

    assert [t.value for t in at.title] == ["Showback"]
    assert at.selectbox(key=Keys.PERIOD).value == APRIL  # the latest month is the default
    assert at.segmented_control(key=Keys.COST).value == "effective_cost"
    april = expected_total(APRIL, "effective")
    march = expected_total(MARCH, "effective")
    assert april == Decimal("2871.855")  # the fixture is what this test thinks it is
    total = metric(at, "Effective cost, April 2026")
    assert total.value == dollars(april) == "$2,871.86"
    assert metric(at, "Effective cost, March 2026").value == dollars(march) == "$2,411.35"
    # The change is the difference of the two amounts shown: $2,871.86 - $2,411.35.
    assert total.delta == "+$460.51 (+19.1%)"
    unallocated = sum((Decimal(x.effective) for x in LINES if x.period == APRIL and x.tenant is None),
                      Decimal(0))
    share = metric(at, "Unallocated share")
    assert share.value == f"{unallocated / april:.1%}" == "3.5%"
    assert share.delta == f"{dollars(unallocated)} not attributed" == "$101.22 not attributed"
    assert metric(at, "Tenants with cost").value == "4"


def test_tenant_and_service_tables(monkeypatch: pytest.MonkeyPatch, warehouse: Path) -> None:
    at = run_app(monkeypatch, warehouse)
    tenants = at.dataframe[0].value
    assert list(tenants.columns) == ["tenant", "cost", "previous_cost", "change", "change_pct"]
    assert dict(zip(tenants["tenant"], tenants["cost"], strict=True)) == by_tenant(APRIL, "effective")
    previous = by_tenant(MARCH, "effective")
    assert dict(zip(tenants["tenant"], tenants["previous_cost"], strict=True)) == {
        t: previous.get(t, 0.0) for t in tenants["tenant"]}
    assert list(tenants["cost"]) == sorted(tenants["cost"], reverse=True)
    row = tenants.set_index("tenant")
    assert row.loc["globex", "change"] == pytest.approx(580.00 - 845.10)
    assert row.loc["globex", "change_pct"] == pytest.approx((580 - 845.10) / 845.10 * 100)
    assert row.loc["initech", "previous_cost"] == 0.0
    assert bool(row["change_pct"].isna()["initech"])  # no March cost to compare with

    services = at.dataframe[1].value.set_index("service")
    assert services.loc["Amazon EC2", "cost"] == 1780.50  # 1350.10 + 255.404 + 175.00
    assert services.loc["AWS Support", "cost"] == 12.34  # 12.345, half to even
    assert services["cost"].sum() == pytest.approx(float(expected_total(APRIL, "effective")),
                                                   abs=0.011)

    unallocated = at.dataframe[2].value
    assert list(unallocated["ResourceId"]) == ["vol-0abc", "support"]
    assert list(unallocated["cost"]) == [88.88, 12.34]


def test_billed_toggle_shows_the_billed_total(monkeypatch: pytest.MonkeyPatch, warehouse: Path) -> None:
    at = run_app(monkeypatch, warehouse)
    at.segmented_control(key=Keys.COST).set_value("billed_cost").run()
    assert_no_exception(at)
    billed = expected_total(APRIL, "billed")
    assert billed != expected_total(APRIL, "effective")
    assert metric(at, "Billed cost, April 2026").value == dollars(billed) == "$2,992.50"
    assert metric(at, "Billed cost, March 2026").value == dollars(expected_total(MARCH, "billed"))
    assert not [m for m in at.metric if m.label.startswith("Effective")]
    tenants = at.dataframe[0].value
    assert dict(zip(tenants["tenant"], tenants["cost"], strict=True)) == by_tenant(APRIL, "billed")

    at.segmented_control(key=Keys.COST).set_value("effective_cost").run()
    assert metric(at, "Effective cost, April 2026").value == "$2,871.86"


def test_previous_month(monkeypatch: pytest.MonkeyPatch, warehouse: Path) -> None:
    at = run_app(monkeypatch, warehouse)
    at.selectbox(key=Keys.PERIOD).set_value(MARCH).run()
    assert_no_exception(at)
    total = metric(at, "Effective cost, March 2026")
    assert total.value == dollars(expected_total(MARCH, "effective"))
    assert not total.delta  # no February data: no change to show
    assert metric(at, "Effective cost, February 2026").value == "No data"
    tenants = at.dataframe[0].value
    assert dict(zip(tenants["tenant"], tenants["cost"], strict=True)) == by_tenant(MARCH, "effective")


def test_empty_warehouse_says_what_to_run(monkeypatch: pytest.MonkeyPatch, empty_home: Path) -> None:
    at = run_app(monkeypatch, empty_home)
    assert len(at.info) == 1
    text = at.info[0].value
    assert "no allocated cost" in text
    assert "make demo" in text and "finops collect" in text and "finops allocate" in text
    assert not at.metric and not at.dataframe


def test_missing_warehouse_folder_is_not_created(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "nowhere"
    at = run_app(monkeypatch, home)
    assert "no allocated cost" in at.info[0].value
    assert not home.exists()


def test_untrusted_tenant_name_is_text_never_markup(
        monkeypatch: pytest.MonkeyPatch, warehouse: Path) -> None:
    at = run_app(monkeypatch, warehouse)
    # It is there, as a plain value of the tenant table...
    assert XSS in list(at.dataframe[0].value["tenant"])
    # ...and nowhere else raw: no st.html, no markdown allowed to carry HTML, and the chart
    # (Plotly reads a subset of HTML in labels) gets it escaped, so it shows literally.
    assert not at.get("html")
    raw = XSS.encode()
    for element in non_table_elements(at):
        assert raw not in element.proto.SerializeToString(), f"{element.type} carries it raw"
        assert not getattr(element.proto, "allow_html", False), f"{element.type} allows HTML"
    (chart,) = at.get("plotly_chart")
    labels = json.loads(chart.proto.spec)["data"][0]["y"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in labels


def test_a_new_run_invalidates_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "wh"
    build_warehouse(home)
    at = run_app(monkeypatch, home)
    assert metric(at, "Effective cost, April 2026").value == "$2,871.86"

    extra = Line(APRIL, 20, "1000.00", "1000.00", "acme", "Amazon EC2", "i-acme-2")
    build_warehouse(home, [*LINES, extra])  # collect + allocate again: new run ids
    at.run()
    assert_no_exception(at)
    assert metric(at, "Effective cost, April 2026").value == dollars(
        expected_total(APRIL, "effective", lines=[*LINES, extra])) == "$3,871.86"


def test_two_currencies_are_shown_apart(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "wh"
    euros = [Line(APRIL, 3, "99.995", "99.995", "acme", "Amazon EC2", "i-eu-1", currency="EUR"),
             Line(APRIL, 4, "0.01", "0.01", None, "Amazon S3", "eu-bucket", currency="EUR")]
    # More untagged dollar resources than the list shows, each dwarfing the euro bucket.
    untagged = [Line(APRIL, 15, "5.00", "5.00", None, "Amazon EC2", f"i-untagged-{n:02d}")
                for n in range(25)]
    lines = [*LINES, *euros, *untagged]
    build_warehouse(home, lines)
    at = run_app(monkeypatch, home)
    # One currency at a time, the main one (largest cost) first, never added together.
    assert at.selectbox(key=Keys.CURRENCY).options == ["USD", "EUR"]
    assert metric(at, "Effective cost, April 2026").value == dollars(
        expected_total(APRIL, "effective", lines=lines)) == "$2,996.86"
    assert len(at.dataframe[2].value) == 20  # the top 20 dollar resources
    at.selectbox(key=Keys.CURRENCY).set_value("EUR").run()
    assert_no_exception(at)
    assert metric(at, "Effective cost, April 2026").value == "€100.00"  # 100.005, half to even
    assert metric(at, "Effective cost, March 2026").value == "€0.00"
    assert list(at.dataframe[0].value["tenant"]) == ["acme", "unallocated"]
    # The euro account's untagged bucket has its own list, though dollars fill theirs.
    assert list(at.dataframe[2].value["ResourceId"]) == ["eu-bucket"]
    assert list(at.dataframe[2].value["cost"]) == [0.01]


def test_bad_settings_are_reported_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "finops.toml"
    config.write_text("home = [not toml\n")
    monkeypatch.setenv("FINOPS_CONFIG", str(config))
    at = run_app(monkeypatch, tmp_path, errors_expected=True)
    assert len(at.error) == 1 and "cannot read its settings" in at.error[0].value
