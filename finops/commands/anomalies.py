"""``finops anomalies``, ``finops anomalies feedback`` and ``finops forecast``.

Anomaly settings come from ``--thresholds FILE``, else the ``anomaly_thresholds`` path
setting when ``finops.settings.Settings`` has one, else ``FINOPS_ANOMALIES__*``; budgets
from ``--budgets FILE``, else ``FINOPS_FORECAST__BUDGETS``, else a ``forecast_budgets``
path setting.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from finops.context import HomeOption, open_context
from finops.errors import BadInputError
from finops.output import Format, emit
from finops.progress import info


def parse_date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadInputError(f"{option} {text!r} is not a date",
                            hint="Write the date as YYYY-MM-DD, for example 2026-05-14.") from None


def causes_json(causes: list[dict[str, object]] | None) -> str:
    return json.dumps([{k: (str(v) if k == "contribution" else v) for k, v in c.items()}
                       for c in causes or []])


def causes_text(causes: list[dict[str, object]] | None) -> str:
    return "; ".join(f"{c['dimension']}={c['value']} ({c['contribution']}, "
                     f"{float(c['share']):.0%})"  # type: ignore[arg-type]
                     for c in causes or [])


def printable(frame: pl.DataFrame, fmt: Format) -> pl.DataFrame:
    """``root_causes`` as nested JSON (json), a JSON string (csv) or a short text (table)."""
    if fmt == Format.json:
        return frame
    convert = causes_json if fmt == Format.csv else causes_text
    return frame.with_columns(
        pl.Series("root_causes", [convert(v) for v in frame["root_causes"].to_list()], pl.String)
    )


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    anomalies_app = typer.Typer(
        help="Cost anomalies: events with impact and root causes; `feedback` labels one.",
        no_args_is_help=False,
    )
    app.add_typer(anomalies_app, name="anomalies")

    @anomalies_app.callback(invoke_without_command=True)
    def anomalies_cmd(
        ctx: typer.Context,
        as_of: Annotated[str | None, typer.Option(
            "--as-of", help="Run as if today were this date (YYYY-MM-DD); data after it is "
            "ignored. Default: the latest data.")] = None,
        since: Annotated[str | None, typer.Option(
            "--since", help="Show events ending on or after this date (default: 30 days "
            "before the last judged day).")] = None,
        thresholds: Annotated[Path | None, typer.Option(
            "--thresholds", help="TOML or YAML file of anomaly settings: min_impact, "
            "min_impact_pct, [tenants.NAME] thresholds, ...")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Detect cost anomalies (causal: each day judged on data up to that day) and list
        the events: anomaly_id, start_date, end_date, dimension, dimension_value,
        actual_cost, expected_cost, impact, severity, root_causes."""
        if ctx.invoked_subcommand is not None:
            return
        from models.anomalies.api import MONEY_COLUMNS, OUTPUT_COLUMNS, run_detection
        from models.anomalies.settings import load_anomaly_settings

        as_of_day = parse_date(as_of, "--as-of")
        since_day = parse_date(since, "--since")
        context = open_context(home)
        try:
            # A path setting, once finops.settings has one (see the module docstring).
            configured: Path | None = getattr(context.settings, "anomaly_thresholds", None)
            settings = load_anomaly_settings(thresholds or configured)
            analysis, frame, run_id = run_detection(context.warehouse, context.state,
                                                    as_of=as_of_day, settings=settings)
        finally:
            context.close()
        judged = analysis.judged_through
        if since_day is None:
            since_day = (judged or analysis.as_of) - dt.timedelta(days=settings.lookback_days)
        shown = frame.filter(pl.col("end_date") >= since_day).select(OUTPUT_COLUMNS)
        info(f"run {run_id}: {analysis.panel.series.height} series from {analysis.panel.source}, "
             f"judged through {judged.isoformat() if judged else 'no day yet'} (the latest "
             f"{settings.incomplete_days} days of data are not judged yet); "
             f"{shown.height} of {frame.height} events end on or after {since_day}")
        emit(printable(shown, fmt), fmt, title=f"Anomalies since {since_day}",
             money=MONEY_COLUMNS)

    @anomalies_app.command("feedback")
    def feedback_cmd(
        anomaly_id: Annotated[str, typer.Argument(help="An anomaly_id from `finops anomalies`.")],
        label: Annotated[str, typer.Option(
            "--label", help="expected (normal here: suppress it and its repeats), planned "
            "(a one-off planned change) or real (a true anomaly).")],
        comment: Annotated[str | None, typer.Option("--comment", help="Why.")] = None,
        who: Annotated[str | None, typer.Option(
            "--who", help="Who says so (default: the login name).")] = None,
        home: HomeOption = None,
    ) -> None:
        """Label an anomaly; expected and planned ones stop being reported, with repeats."""
        from models.anomalies.feedback import record_feedback

        context = open_context(home)
        try:
            fb = record_feedback(context.state, anomaly_id, label.strip().lower(),
                                 who or os.environ.get("USER"), comment)
        finally:
            context.close()
        info(f"{anomaly_id} ({fb.event.dimension} {fb.event.dimension_value}, "
             f"{fb.event.start}..{fb.event.end}) labelled {fb.label}")

    @app.command("forecast")
    def forecast_cmd(
        as_of: Annotated[str | None, typer.Option(
            "--as-of", help="Forecast as if today were this date (YYYY-MM-DD).")] = None,
        budgets: Annotated[Path | None, typer.Option(
            "--budgets", help="TOML or YAML file of monthly budgets per tenant or team "
            "(default: FINOPS_FORECAST__BUDGETS).")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Month-end and next-month spend for the total, each tenant and each service, with
        80% and 95% intervals and the status against budgets."""
        from models.forecast import (
            MONEY_COLUMNS,
            ForecastSettings,
            load_budgets,
            run_forecast,
            unmatched_budgets,
        )

        as_of_day = parse_date(as_of, "--as-of")
        settings = ForecastSettings()
        context = open_context(home)
        try:
            configured: Path | None = getattr(context.settings, "forecast_budgets", None)
            path = budgets or settings.budgets or configured
            budget_file = load_budgets(path) if path is not None else None
            frame = run_forecast(context.warehouse, context.state, as_of=as_of_day,
                                 budgets=budget_file, settings=settings)
        finally:
            context.close()
        if budget_file is not None:
            for b in unmatched_budgets(frame, budget_file):
                info(f"note: the budget for {b.dimension} {b.owner!r} matches no cost in the "
                     "data (check the name)")
        emit(frame, fmt, title="Forecasts", money=MONEY_COLUMNS)
