"""The report's figures and scoping, computed in-process on the fixture warehouse."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from finops.errors import BadInputError
from finops.settings import load_settings
from finops.state import open_state
from finops.warehouse import Warehouse
from reports.build import IsoWeek, WeeklyReport, build_report, clean, load_inputs
from reports.config import Recipient, ReportsConfig, load_config
from reports.render import render_text
from tests.reports import data

WEEK = dt.timedelta(days=7)
NOW = dt.datetime(2026, 5, 11, 6, 0, tzinfo=dt.UTC)


def reports(home: Path, config: ReportsConfig, *recipients: Recipient | None) -> list[WeeklyReport]:
    state = open_state(home)
    try:
        inputs = load_inputs(Warehouse(home), state, IsoWeek.parse(data.WEEK), config, now=NOW)
    finally:
        state.close()
    return [build_report(inputs, config, r, r.email if r else "adhoc@example.com",
                         "https://finops.example.com/") for r in recipients]


@pytest.fixture
def config(config_file: Path) -> ReportsConfig:
    return load_config(config_file)


def owner(*tenants: str) -> Recipient:
    return Recipient(email="owner@example.com", role="tenant_owner", tenants=tenants)


def test_week_totals_average_and_movers(built_home: Path, config: ReportsConfig) -> None:
    (everything,) = reports(built_home, config, config.recipient("cfo@example.com"))
    h = everything.headline
    assert h is not None and h.currency == "USD"
    assert h.week == data.expected(None, data.MONDAY, data.SUNDAY)
    assert h.previous == data.expected(None, data.MONDAY - WEEK, data.SUNDAY - WEEK)
    four = sum((data.expected(None, data.MONDAY - n * WEEK, data.SUNDAY - n * WEEK)
                for n in range(1, 5)), Decimal(0))
    assert h.average == four / 4 and h.average_weeks == 4
    assert [label for label, _ in everything.trend] == [f"W{w}" for w in range(12, 20)]

    tenants = {m.label: m.change for m in everything.movers_tenant or []}
    for tenant in ("acme", "globex", "initech"):
        assert tenants[tenant] == (data.expected([tenant], data.MONDAY, data.SUNDAY)
                                   - data.expected([tenant], data.MONDAY - WEEK, data.SUNDAY - WEEK))
    assert data.XSS not in tenants  # its spend did not change
    assert next(m.label for m in everything.movers_tenant or []) == "acme"  # largest change first
    services = {m.label for m in everything.movers_service}
    assert services == {"Amazon EC2", "Amazon RDS"}


def test_tenant_owner_sees_only_their_tenant(built_home: Path, config: ReportsConfig) -> None:
    (acme,) = reports(built_home, config, owner("acme"))
    assert acme.headline is not None
    assert acme.headline.week == data.expected(["acme"], data.MONDAY, data.SUNDAY)
    assert acme.movers_tenant is None  # one tenant: nothing to rank
    assert {m.label for m in acme.movers_service} == {"Amazon EC2"}
    assert [(a.dimension, a.value) for a in acme.anomalies or []] == [("tenant", "acme")]
    assert [r.resource for r in acme.recommendations or []] == ["i-acme-1"]  # shared vol-shared hidden
    assert acme.recommendations_total == Decimal("412.34")
    month = acme.month
    assert month is not None and month.budget == Decimal(3000)
    assert month.mtd == data.expected(["acme"], dt.date(2026, 5, 1), data.SUNDAY)
    # Collect failures are shown without their message, which may name anything.
    assert any("azure-ea" in c and "access denied" not in c for c in acme.caveats)

    (two,) = reports(built_home, config, owner("acme", "initech"))
    assert {m.label for m in two.movers_tenant or []} == {"acme", "initech"}
    assert two.month is not None and two.month.budget is None  # initech has no budget


def test_anomalies_recommendations_and_caveats(built_home: Path, config: ReportsConfig) -> None:
    (everything,) = reports(built_home, config, None)
    anomalies = everything.anomalies or []
    assert [a.severity for a in anomalies] == ["critical", "high", "medium"]  # a-old is outside
    rds = anomalies[2]
    assert [c.value for c in rds.causes] == ["globex", data.XSS]
    recs = everything.recommendations or []
    assert [r.savings for r in recs] == sorted((r.savings for r in recs), reverse=True)
    assert len(recs) == 5 and recs[0].resource == "db-globex"
    assert "i-acme-2" not in {r.resource for r in recs}  # dismissed
    assert everything.recommendations_count == 7
    late = [c for c in everything.caveats if "gcp-main" in c]
    assert late and "7 May 2026" in late[0] and "last 3 days" in late[0]
    assert not any("aws-main" in c for c in everything.caveats)
    assert any("access denied to bucket" in c for c in everything.caveats)


def test_month_forecast_from_the_forecasts_dataset(tmp_path: Path, config: ReportsConfig) -> None:
    home = data.build(tmp_path / "wh", forecasts=True)
    everything, acme = reports(home, config, None, owner("acme"))
    remaining = 21  # 11-31 May
    assert everything.month is not None and acme.month is not None
    assert everything.month.method == "the forecast model"
    assert everything.month.forecast == everything.month.mtd + Decimal(300 * remaining)
    assert acme.month.forecast == acme.month.mtd + Decimal(125 * remaining)
    assert everything.month.forecast_vs_budget == everything.month.forecast - Decimal(6000)


def test_missing_datasets_say_no_data_yet(tmp_path: Path, config: ReportsConfig) -> None:
    home = data.build(tmp_path / "wh", anomalies=False, recommendations=False)
    (report,) = reports(home, config, None)
    assert report.anomalies is None and report.recommendations is None
    assert report.month is not None and report.month.method.startswith("the usage run rate")
    text = render_text(report)
    assert "No data yet: anomaly detection has not run" in text
    assert "No data yet: right-sizing has not run" in text


def test_empty_warehouse_still_renders(tmp_path: Path, config: ReportsConfig) -> None:
    home = tmp_path / "empty"
    home.mkdir()
    (report,) = reports(home, config, None)
    assert not report.has_cost and report.headline is None
    assert "No allocated cost" in render_text(report)


def test_settings_base_url_makes_the_links(built_home: Path, config: ReportsConfig,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINOPS_APP__BASE_URL", "https://finops.example.com/app/")
    base = load_settings().app.base_url
    state = open_state(built_home)
    try:
        inputs = load_inputs(Warehouse(built_home), state, IsoWeek.parse(data.WEEK), config, now=NOW)
    finally:
        state.close()
    report = build_report(inputs, config, owner("acme"), "owner@example.com", base)
    urls = {s.key: s.url for s in report.sections}
    assert urls["spend"] == ("https://finops.example.com/app/showback?period=2026-05&week=2026-W19"
                             "&tenant=acme")
    assert urls["anomalies"].startswith("https://finops.example.com/app/anomalies?")
    assert set(urls) == {"spend", "movers", "anomalies", "month", "recommendations", "freshness"}


def test_week_parsing() -> None:
    assert IsoWeek.parse("2026-W19").monday == data.MONDAY
    assert IsoWeek.parse("2026w19").sunday == data.SUNDAY
    assert IsoWeek.last_complete(dt.date(2026, 5, 11)).label == "2026-W19"
    assert IsoWeek.last_complete(dt.date(2026, 5, 10)).label == "2026-W18"
    assert IsoWeek.parse("2021-W01").shift(-1).label == "2020-W53"
    for bad in ("2026-19", "2026-W54", "W19", "2025-W53"):
        with pytest.raises(BadInputError, match="YYYY-Www"):
            IsoWeek.parse(bad)


def test_clean_caps_and_strips() -> None:
    assert clean("a\nb\tc\u202e\x00d", 60) == "a b c d"
    assert clean("x" * 100, 10) == "x" * 9 + "…"
    assert clean(None, 5) == ""
