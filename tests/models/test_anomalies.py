"""Anomaly detection on small synthetic warehouses built in tmp_path."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import sys
import warnings
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from finops.state import open_state
from finops.warehouse import Warehouse
from models.anomalies import OUTPUT_COLUMNS, detect, record_feedback
from models.anomalies.api import analyse, events_frame
from models.anomalies.detect import hw_predictions
from models.anomalies.settings import AnomalySettings, ModelParams, Thresholds
from models.anomalies.synthetic import Cell, daily_series, write_cells

START = dt.date(2025, 1, 1)
EC2 = Cell("AWS", "Amazon EC2", "111111111111", "acme")
S3 = Cell("AWS", "Amazon S3", "111111111111", "globex")
EC2_B = Cell("AWS", "Amazon EC2", "222222222222", "globex")
SUPPORT = Cell("AWS", "AWS Support (Business)", "111111111111", "acme")


def days(n: int) -> list[dt.date]:
    return [START + dt.timedelta(days=i) for i in range(n)]


def background(n: int) -> dict[Cell, np.ndarray]:
    d = days(n)
    return {
        EC2: daily_series(d, 400, weekend=0.6, growth=0.02, seed=1),
        S3: daily_series(d, 250, weekend=1.0, growth=0.01, seed=2),
        EC2_B: daily_series(d, 300, weekend=0.7, seed=3),
    }


def build(tmp_path: Path, series: dict[Cell, np.ndarray], n: int) -> Warehouse:
    wh = Warehouse(tmp_path / "home")
    write_cells(wh, days(n), series)
    return wh


def test_spike_is_one_event_with_its_root_causes(tmp_path: Path) -> None:
    n = 160
    series = background(n)
    series[EC2][120:123] += 900.0  # three days of a runaway workload in one account
    wh = build(tmp_path, series, n)
    state = open_state(wh.home)
    events = detect(wh, state)
    assert events.height == 1, events
    ev = events.row(0, named=True)
    assert (ev["start_date"], ev["end_date"]) == (days(n)[120], days(n)[122])
    assert (ev["dimension"], ev["dimension_value"]) == ("service_account",
                                                        "Amazon EC2 | 111111111111")
    assert 2400 < ev["impact"] < 3000
    assert ev["actual_cost"] - ev["expected_cost"] == ev["impact"]
    causes = {(c["dimension"], c["value"]) for c in ev["root_causes"]}
    assert ("service_account", "Amazon EC2 | 111111111111") in causes
    assert ("tenant", "acme") in causes
    assert ("service", "Amazon EC2") in causes
    top = ev["root_causes"][0]
    assert float(top["contribution"]) == pytest.approx(float(ev["impact"]), rel=0.05)


def test_weekly_seasonality_growth_and_month_start_fees_raise_nothing(tmp_path: Path) -> None:
    n = 300
    d = days(n)
    series = {
        EC2: daily_series(d, 500, weekend=0.3, growth=0.04, seed=4),
        S3: daily_series(d, 200, weekend=1.0, growth=0.02, fee=1500, seed=5),
        EC2_B: daily_series(d, 300, weekend=0.5, seed=6),
        SUPPORT: daily_series(d, 0.0, noise=0.0, fee=2500, seed=7),
    }
    wh = build(tmp_path, series, n)
    analysis = analyse(wh, None)
    assert events_frame(analysis).is_empty()
    assert not analysis.result.flag.any()


def test_level_shift_alerts_then_stops(tmp_path: Path) -> None:
    n = 200
    series = background(n)
    series[EC2_B][100:] *= 1.8
    wh = build(tmp_path, series, n)
    settings = AnomalySettings()
    analysis = analyse(wh, None, settings=settings)
    events = events_frame(analysis)
    assert events.height == 1, events
    ev = events.row(0, named=True)
    assert ev["start_date"] == days(n)[100]
    assert ev["end_date"] <= days(n)[100 + settings.confirm_days - 1]
    # After the shift is confirmed nothing is flagged on any series any more.
    assert not analysis.result.flag[:, 100 + settings.confirm_days:].any()


def test_new_series_waits_for_its_minimum_history(tmp_path: Path) -> None:
    n = 140
    d = days(n)
    settings = AnomalySettings()
    fresh = daily_series(d, 300, weekend=0.7, seed=8)
    fresh[:60] = 0.0  # a new account's first cost on day 60
    fresh[60 + 10] += 2000.0  # a spike on its tenth day: too early to judge
    fresh[60 + 40] += 2000.0  # the same spike once it has history
    wh = build(tmp_path, {EC2_B: fresh}, n)
    analysis = analyse(wh, None, settings=settings)
    assert analysis.panel.days[0] == d[60]  # days before the first cost hold no rows
    assert (analysis.result.judged_from == settings.min_history_days).all()
    assert not analysis.result.flag[:, :settings.min_history_days].any()
    events = events_frame(analysis)
    assert events["start_date"].to_list() == [d[100]]


def test_latest_incomplete_days_do_not_alarm(tmp_path: Path) -> None:
    n = 150
    series = background(n)
    for values in series.values():
        values[-2:] *= np.array([0.35, 0.1])  # an export still being filled in
    series[EC2][-1] += 5000.0  # and something odd on the very last day
    wh = build(tmp_path, series, n)
    settings = AnomalySettings(direction="both")
    analysis = analyse(wh, None, settings=settings)
    assert analysis.judged_through == days(n)[n - 1 - settings.incomplete_days]
    assert events_frame(analysis).is_empty()
    assert not analysis.result.flag[:, -settings.incomplete_days:].any()


def test_decisions_do_not_change_when_later_data_arrives(tmp_path: Path) -> None:
    n = 220
    series = background(n)
    series[EC2][90] += 1500.0
    series[S3][130:134] += 700.0
    series[EC2_B][170:] *= 1.7
    wh_full = build(tmp_path / "full", series, n)
    early = analyse(wh_full, None, as_of=days(n)[150])
    full = analyse(wh_full, None)
    assert early.judged_through is not None
    j = early.result.judged_through
    keys = full.panel.series.select("currency", "level", "value").rows()
    rows = [keys.index(k) for k in early.panel.series.select("currency", "level", "value").rows()]
    np.testing.assert_array_equal(early.result.flag[:, :j + 1], full.result.flag[rows, :j + 1])
    np.testing.assert_allclose(early.result.expected[:, :j + 1],
                               full.result.expected[rows, :j + 1], equal_nan=True)
    closed = events_frame(early).filter(pl.col("end_date") < early.judged_through)
    later = events_frame(full).filter(pl.col("anomaly_id").is_in(closed["anomaly_id"].to_list()))
    assert closed.height == 2
    assert closed.sort("anomaly_id").equals(later.sort("anomaly_id"))
    # The same through the warehouse: a second warehouse holding only the first 151 days.
    truncated = {c: v[:151] for c, v in series.items()}
    wh_part = build(tmp_path / "part", truncated, 151)
    assert events_frame(analyse(wh_part, None)).equals(events_frame(early))


def test_feedback_suppresses_repeats_and_persists(tmp_path: Path) -> None:
    n = 200
    series = background(n)
    series[EC2][100] += 1500.0  # a monthly batch job, say
    series[EC2][150] += 1500.0  # the same again
    series[EC2][185] += 6000.0  # four times bigger: not a repeat
    wh = build(tmp_path, series, n)
    state = open_state(wh.home)
    first = detect(wh, state)
    assert first["start_date"].to_list() == [days(n)[185], days(n)[150], days(n)[100]]
    target = first.filter(pl.col("start_date") == days(n)[100])["anomaly_id"][0]
    record_feedback(state, target, "expected", "ana", "the monthly batch")
    state.close()

    with sqlite3.connect(wh.home / "state.db") as db:
        stored = db.execute("SELECT anomaly_id, label, who, comment FROM anomaly_feedback"
                            ).fetchall()
    assert stored == [(target, "expected", "ana", "the monthly batch")]

    state = open_state(wh.home)
    after = detect(wh, state)
    assert after["start_date"].to_list() == [days(n)[185]]
    state.close()


def test_planned_label_covers_the_whole_change(tmp_path: Path) -> None:
    n = 200
    series = background(n)
    series[EC2_B][100:112] += 800.0  # a migration: double running for twelve days
    wh = build(tmp_path, series, n)
    state = open_state(wh.home)
    events = detect(wh, state)
    assert events.height >= 1
    record_feedback(state, events["anomaly_id"][-1], "planned", None, "migration to EKS")
    assert detect(wh, state).is_empty()
    state.close()


def test_unknown_feedback_id_is_bad_input(tmp_path: Path) -> None:
    from finops.errors import BadInputError

    state = open_state(tmp_path)
    with pytest.raises(BadInputError, match="not known"):
        record_feedback(state, "an-000000000000", "real")
    with pytest.raises(BadInputError, match="label"):
        record_feedback(state, "an-000000000000", "fine")
    state.close()


def test_tenant_thresholds_override_global_ones(tmp_path: Path) -> None:
    n = 160
    series = background(n)
    series[EC2][120] += 400.0  # tenant acme
    series[EC2_B][130] += 400.0  # tenant globex
    wh = build(tmp_path, series, n)
    default = detect(wh, None)
    assert sorted(default["start_date"].to_list()) == [days(n)[120], days(n)[130]]
    strict = AnomalySettings(tenants={"acme": Thresholds(min_impact=Decimal(1000))})
    assert detect(wh, None, settings=strict)["start_date"].to_list() == [days(n)[130]]
    loose = AnomalySettings(min_impact=Decimal(5000),
                            tenants={"globex": Thresholds(min_impact=Decimal(100))})
    assert detect(wh, None, settings=loose)["start_date"].to_list() == [days(n)[130]]


def test_billing_only_warehouse_is_enough(tmp_path: Path) -> None:
    n = 120
    series = background(n)
    series[S3][100] += 2000.0
    d = days(n)
    rows = [
        {"ChargePeriodStart": dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC),
         "ServiceName": cell.service, "SubAccountId": cell.account,
         "ProviderName": cell.provider, "BillingCurrency": "USD",
         "BilledCost": round(float(v[i]), 2), "EffectiveCost": round(float(v[i]), 2),
         "Tags": [{"key": "tenant", "value": cell.tenant}],
         "billing_period": day.strftime("%Y-%m")}
        for cell, v in series.items() for i, day in enumerate(d)
    ]
    frame = pl.DataFrame(rows).with_columns(
        pl.col("ChargePeriodStart").cast(pl.Datetime("us", "UTC")),
        pl.col("BilledCost", "EffectiveCost").cast(pl.Decimal(38, 12)),
    )
    wh = Warehouse(tmp_path / "home")
    for period in sorted(frame["billing_period"].unique()):
        wh.replace_partition("billing", {"source": "focus", "billing_period": period},
                             frame.filter(pl.col("billing_period") == period), run_id="test")
    events = detect(wh, None)
    assert events.height == 1
    ev = events.row(0, named=True)
    assert ev["start_date"] == d[100]
    assert ("tenant", "unknown") in {(c["dimension"], c["value"]) for c in ev["root_causes"]}


def test_filter_equals_statsmodels_holt_winters_without_robustness() -> None:
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = daily_series(days(120), 200, weekend=0.6, growth=0.03, noise=0.05, seed=9)
    p = ModelParams(alpha=0.3, beta=0.05, gamma=0.2, phi=0.9)
    seasons = np.array([1.1, 1.05, 1.0, 1.1, 1.05, 0.85, 0.85])
    ours = hw_predictions(y, 180.0, 1.0, seasons, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ExponentialSmoothing(
            y, trend="add", damped_trend=True, seasonal="mul", seasonal_periods=7,
            initialization_method="known", initial_level=180.0, initial_trend=1.0,
            initial_seasonal=seasons,
        ).fit(smoothing_level=0.3, smoothing_trend=0.05, smoothing_seasonal=0.2,
              damping_trend=0.9, optimized=False)
    np.testing.assert_allclose(ours, np.asarray(model.fittedvalues), rtol=1e-9)


def _cli_warehouse(tmp_path: Path) -> Path:
    n = 160
    series = background(n)
    series[EC2][120:122] += 900.0
    series[S3][140] += 1200.0
    build(tmp_path, series, n)
    return tmp_path / "home"


def test_cli_json_and_csv_have_exactly_the_design_columns(tmp_path: Path) -> None:
    from finops.cli import app

    home = _cli_warehouse(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["anomalies", "--home", str(home), "--format", "json",
                              "--since", "2025-01-01"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert len(data) == 2
    for item in data:
        assert list(item) == list(OUTPUT_COLUMNS)
        assert isinstance(item["root_causes"], list)
        assert item["impact"].count(".") == 1 and len(item["impact"].split(".")[1]) == 2
    assert {c["dimension"] for c in data[0]["root_causes"]} >= {"service", "account", "tenant"}

    res = runner.invoke(app, ["anomalies", "--home", str(home), "--format", "csv",
                              "--since", "2025-01-01"])
    assert res.exit_code == 0, res.output
    table = pl.read_csv(res.stdout.encode())
    assert table.columns == list(OUTPUT_COLUMNS)
    assert json.loads(table["root_causes"][0])[0]["dimension"] == "service"

    # The anomalies dataset was written for the app and the report.
    assert Warehouse(home).partitions("anomalies") == [{"as_of": "2025-06-09"}]

    # Feedback through the CLI, then the event is gone.
    target = data[-1]["anomaly_id"]
    res = runner.invoke(app, ["anomalies", "feedback", target, "--label", "planned",
                              "--home", str(home), "--who", "ops"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["anomalies", "--home", str(home), "--format", "json",
                              "--since", "2025-01-01"])
    assert [e["anomaly_id"] for e in json.loads(res.stdout)] == [data[0]["anomaly_id"]]


@pytest.mark.parametrize("args", [
    ["anomalies", "--as-of", "2025-13-45"],
    ["anomalies", "feedback", "an-unknown", "--label", "real"],
    ["anomalies", "feedback", "an-unknown", "--label", "fine"],
])
def test_cli_bad_input_exits_2_without_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: list[str],
) -> None:
    from finops.cli import main

    home = _cli_warehouse(tmp_path)
    monkeypatch.setattr(sys, "argv", ["finops", *args, "--home", str(home)])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
