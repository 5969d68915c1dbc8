"""Forecasts: intervals, accuracy on a clean series, budgets, the CLI."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from finops.errors import ConfigError
from finops.warehouse import Warehouse
from models.anomalies.synthetic import Cell, daily_series, write_cells
from models.forecast import Budget, BudgetFile, budget_status, forecast, load_budgets

START = dt.date(2025, 1, 1)
N = 166  # through 2025-06-15
ACME = Cell("AWS", "Amazon EC2", "111111111111", "acme")
GLOBEX = Cell("AWS", "Amazon S3", "111111111111", "globex")
SUPPORT = Cell("AWS", "AWS Support (Business)", "111111111111", "acme")


def days(n: int) -> list[dt.date]:
    return [START + dt.timedelta(days=i) for i in range(n)]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = days(212)  # the truth through July; the warehouse holds days up to 2025-06-15
    series = {
        ACME: daily_series(d, 500, weekend=0.6, growth=0.03, noise=0.04, seed=1),
        GLOBEX: daily_series(d, 250, weekend=1.0, growth=0.01, noise=0.03, seed=2),
        SUPPORT: daily_series(d, 0.0, noise=0.0, fee=900, seed=3),
    }
    root = tmp_path_factory.mktemp("forecast") / "home"
    write_cells(Warehouse(root), d[:N], {c: v[:N] for c, v in series.items()})
    june = [i for i, day in enumerate(d) if day.month == 6]
    july = [i for i, day in enumerate(d) if day.month == 7]
    truth = {"june": sum(float(v[june].sum()) for v in series.values()),
             "july": sum(float(v[july].sum()) for v in series.values())}
    (root / "truth.json").write_text(json.dumps(truth))
    return root


@pytest.fixture(scope="module")
def frame(home: Path) -> pl.DataFrame:
    budgets = BudgetFile(budgets=[Budget(tenant="acme", amount=Decimal(1)),
                                  Budget(tenant="globex", amount=Decimal(10**7))])
    return forecast(Warehouse(home), budgets=budgets)


def test_rows_for_total_tenants_and_services(frame: pl.DataFrame) -> None:
    got = set(frame.select("dimension", "dimension_value", "horizon").iter_rows())
    for dim, value in [("total", "total"), ("tenant", "acme"), ("tenant", "globex"),
                       ("service", "Amazon EC2"), ("service", "Amazon S3")]:
        assert (dim, value, "month_end") in got
        assert (dim, value, "next_month") in got
    assert set(frame["period"]) == {"2025-06", "2025-07"}
    assert frame["data_through"].unique().to_list() == [dt.date(2025, 6, 13)]


def test_intervals_hold_the_point_and_nest(frame: pl.DataFrame) -> None:
    for r in frame.iter_rows(named=True):
        assert r["lower_95"] <= r["lower_80"] <= r["forecast"] <= r["upper_80"] <= r["upper_95"]
        if r["horizon"] == "month_end":
            assert r["lower_95"] >= r["actual_to_date"]
    total = frame.filter(pl.col("dimension") == "total").sort("horizon")
    month_end, next_month = total.row(0, named=True), total.row(1, named=True)
    # A whole month ahead is less certain than half a month.
    assert (next_month["upper_95"] - next_month["lower_95"]
            > month_end["upper_95"] - month_end["lower_95"])


def test_month_end_and_next_month_are_close_to_the_truth(frame: pl.DataFrame,
                                                         home: Path) -> None:
    truth = json.loads((home / "truth.json").read_text())
    total = {r["horizon"]: r for r in frame.filter(pl.col("dimension") == "total")
             .iter_rows(named=True)}
    assert float(total["month_end"]["forecast"]) == pytest.approx(truth["june"], rel=0.03)
    # Next month includes the support fee on July 1st.
    assert float(total["next_month"]["forecast"]) == pytest.approx(truth["july"], rel=0.06)
    assert total["next_month"]["lower_95"] <= Decimal(str(truth["july"])) <= \
        total["next_month"]["upper_95"]


def test_budget_status(frame: pl.DataFrame) -> None:
    status = {(r["dimension_value"], r["horizon"]): r["budget_status"]
              for r in frame.filter(pl.col("dimension") == "tenant").iter_rows(named=True)}
    assert status[("acme", "month_end")] == "exceeded"
    assert status[("acme", "next_month")] == "over"
    assert status[("globex", "month_end")] == "on_track"
    assert frame.filter(pl.col("dimension") == "service")["budget"].is_null().all()
    d = Decimal
    assert budget_status(d(50), d(90), d(110), d(100), "month_end") == "at_risk"
    assert budget_status(d(50), d(90), d(95), d(100), "month_end") == "on_track"
    assert budget_status(d(50), d(120), d(130), d(100), "month_end") == "over"
    assert budget_status(d(150), d(160), d(170), d(100), "month_end") == "exceeded"


def test_budget_files_toml_and_yaml(tmp_path: Path) -> None:
    toml = tmp_path / "budgets.toml"
    toml.write_text('[[budgets]]\ntenant = "acme"\namount = "1200.50"\n'
                    '[[budgets]]\nteam = "data"\namount = 900\nperiod = "2025-06"\n')
    yaml = tmp_path / "budgets.yaml"
    yaml.write_text("budgets:\n  - tenant: acme\n    amount: 1200.50\n"
                    "  - team: data\n    amount: 900\n    period: '2025-06'\n")
    for path in (toml, yaml):
        got = load_budgets(path).budgets
        assert [(b.dimension, b.owner, b.amount, b.period) for b in got] == [
            ("tenant", "acme", Decimal("1200.50"), None), ("team", "data", 900, "2025-06")]
    bad = tmp_path / "bad.toml"
    bad.write_text('[[budgets]]\ntenant = "acme"\nteam = "x"\namount = -1\n')
    with pytest.raises(ConfigError, match=r"budgets\.0"):
        load_budgets(bad)


def test_cli_forecast_json_with_budgets(home: Path, tmp_path: Path) -> None:
    from finops.cli import app

    budgets = tmp_path / "b.yaml"
    budgets.write_text("budgets:\n  - tenant: globex\n    amount: 100000\n")
    res = CliRunner().invoke(app, ["forecast", "--home", str(home), "--budgets", str(budgets),
                                   "--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    globex = [r for r in rows if r["dimension_value"] == "globex"]
    assert {r["budget_status"] for r in globex} == {"on_track"}
    assert all(len(r["forecast"].split(".")[1]) == 2 for r in rows)
    assert Warehouse(home).partitions("forecasts") == [{"as_of": "2025-06-15"}]
    assert np.isfinite([float(r["upper_95"]) for r in rows]).all()
