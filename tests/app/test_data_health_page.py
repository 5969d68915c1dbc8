"""The Data health page in AppTest: the runs of state.db with their status and totals."""

from __future__ import annotations

from pathlib import Path

import pytest

from finops.state import open_state
from tests.app.apptest import metric, run_app
from tests.app.conftest import LINES, dollars, expected_total, runs_of

PAGE = "views/data_health.py"


def test_lists_runs_with_status_and_period_totals(
        monkeypatch: pytest.MonkeyPatch, warehouse: Path) -> None:
    at = run_app(monkeypatch, warehouse, PAGE)
    assert [t.value for t in at.title] == ["Data health"]
    runs = runs_of(warehouse)
    assert [r["stage"] for r in runs] == ["allocate", "collect"]

    shown = at.dataframe[0].value
    assert list(shown["run_id"]) == [r["run_id"] for r in runs]
    assert list(shown["status"]) == ["Succeeded", "Succeeded"]
    assert list(shown["rows_in"])[1] == len(LINES)

    totals = at.dataframe[1].value
    assert set(totals["run_id"]) == {r["run_id"] for r in runs}
    for run in runs:
        mine = totals[totals["run_id"] == run["run_id"]].set_index("period")
        for period in ("2026-03", "2026-04"):
            assert mine.loc[period, "billed_cost"] == dollars(expected_total(period, "billed"))
            assert mine.loc[period, "effective_cost"] == dollars(expected_total(period, "effective"))
    assert metric(at, "Failed runs").value == "0"
    assert metric(at, "Months with allocated cost").value == "2"


def test_failed_run_is_shown(monkeypatch: pytest.MonkeyPatch, warehouse: Path) -> None:
    state = open_state(warehouse)
    try:
        run_id = state.start_run("collect", "aws", ["bad.csv"])
        state.finish_run(run_id, status="failed", message="bad.csv: cannot be read")
    finally:
        state.close()
    at = run_app(monkeypatch, warehouse, PAGE, errors_expected=True)
    shown = at.dataframe[0].value
    assert shown["status"].iloc[0] == "Failed"
    assert shown["message"].iloc[0] == "bad.csv: cannot be read"
    assert metric(at, "Failed runs").value == "1"
    assert len(at.error) == 1 and "latest run failed" in at.error[0].value


def test_no_runs_says_what_to_run(monkeypatch: pytest.MonkeyPatch, empty_home: Path) -> None:
    at = run_app(monkeypatch, empty_home, PAGE)
    assert "No runs" in at.info[0].value and "make demo" in at.info[0].value
    assert not (empty_home / "state.db").exists()
