"""``finops collect snowflake|bigquery-jobs|databricks`` and ``finops queries``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from finops.context import Context, HomeOption, open_context
from finops.errors import BadInputError
from finops.output import Format, emit
from finops.progress import info

if TYPE_CHECKING:
    from models.query_rules import QueryCostConfig

PathOption = Annotated[Path | None, typer.Option(
    "--path", help="A folder of exported views (CSV, CSV.gz or Parquet, named after the view "
    "in lower case). Without it, the collector reads the live views incrementally.")]
OverlapOption = Annotated[float, typer.Option(
    "--overlap-hours", min=0, help="Live: re-read this many hours before the cursor, for late rows.")]
FormatOption = Annotated[Format, typer.Option("--format")]


def _parse_day(text: str | None, flag: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadInputError(f"{flag} {text!r} is not a date",
                            hint="Write dates as YYYY-MM-DD, for example 2026-05-01.") from None


def _config(ctx: Context) -> QueryCostConfig:
    from models.query_cost import stage_config

    return stage_config(ctx.warehouse)


def _report(result: object, fmt: Format) -> None:
    from models.query_store import CollectResult

    assert isinstance(result, CollectResult)
    info(f"run {result.run_id}: {sum(result.rows.values())} rows collected from {result.source}"
         + (f", {sum(result.rejected.values())} unreadable rows skipped"
            if sum(result.rejected.values()) else ""))
    for name, value in result.cursors.items():
        info(f"  cursor {name}: {value}")
    emit(result.frame(), fmt, title=f"Collected from {result.source}")


def _collect(home: Path | None, fmt: Format, path: Path | None,
             from_files: Callable[..., object], live: Callable[..., object]) -> None:
    """Collect from view exports at ``path``, or live from the service (``live`` takes the
    context and the rejected-rows share)."""
    ctx = open_context(home)
    try:
        share = ctx.settings.ingest.max_rejected_cost_share
        if path is not None:
            result = from_files(ctx.warehouse, ctx.state, path, max_rejected_share=share)
        else:
            result = live(ctx, share)
    finally:
        ctx.close()
    _report(result, fmt)


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @collect_app.command("snowflake")
    def collect_snowflake_cmd(
        path: PathOption = None,
        overlap_hours: OverlapOption = 24.0,
        home: HomeOption = None,
        fmt: FormatOption = Format.table,
    ) -> None:
        """Snowflake QUERY_HISTORY, WAREHOUSE_METERING_HISTORY, QUERY_ATTRIBUTION_HISTORY, rates."""
        from collectors.snowflake import collect_snowflake_files, collect_snowflake_live

        _collect(home, fmt, path, collect_snowflake_files, lambda ctx, share: collect_snowflake_live(
            ctx.warehouse, ctx.state, ctx.settings.snowflake, overlap=timedelta(hours=overlap_hours),
            max_rejected_share=share))

    @collect_app.command("bigquery-jobs")
    def collect_bigquery_cmd(
        path: PathOption = None,
        overlap_hours: OverlapOption = 24.0,
        home: HomeOption = None,
        fmt: FormatOption = Format.table,
    ) -> None:
        """BigQuery INFORMATION_SCHEMA.JOBS (and RESERVATIONS_TIMELINE where readable)."""
        from collectors.bigquery_jobs import collect_bigquery_files, collect_bigquery_live

        _collect(home, fmt, path, collect_bigquery_files, lambda ctx, share: collect_bigquery_live(
            ctx.warehouse, ctx.state, overlap=timedelta(hours=overlap_hours), max_rejected_share=share))

    @collect_app.command("databricks")
    def collect_databricks_cmd(
        path: PathOption = None,
        overlap_hours: OverlapOption = 72.0,
        home: HomeOption = None,
        fmt: FormatOption = Format.table,
    ) -> None:
        """Databricks system.billing.usage and system.billing.list_prices."""
        from collectors.databricks import collect_databricks_files, collect_databricks_live

        _collect(home, fmt, path, collect_databricks_files, lambda ctx, share: collect_databricks_live(
            ctx.warehouse, ctx.state, overlap=timedelta(hours=overlap_hours), max_rejected_share=share))

    @app.command("queries")
    def queries_cmd(
        by: Annotated[str, typer.Option(
            "--by", help="Group by tenant, warehouse, user or query_hash (also source, day, "
            "service).")] = "tenant",
        since: Annotated[str | None, typer.Option("--since", help="From this day (YYYY-MM-DD).")] = None,
        until: Annotated[str | None, typer.Option("--until", help="To this day, included.")] = None,
        source: Annotated[str | None, typer.Option(
            "--source", help="Only snowflake, bigquery or databricks.")] = None,
        recurring: Annotated[int | None, typer.Option(
            "--recurring", min=1, help="Instead: the N most expensive recurring queries "
            "(by parameterised hash) with their weekly trend.")] = None,
        refresh: Annotated[bool, typer.Option(
            "--refresh/--no-refresh", help="Recompute query cost first (default: when a query "
            "history was collected since the last computation).")] = False,
        home: HomeOption = None,
        fmt: FormatOption = Format.table,
    ) -> None:
        """Warehouse cost per group: queries, tb_scanned, credits, cost, cost_per_query, cost_per_tb."""
        from models.query_cost import check_group, cost_by, is_stale, run_query_cost, top_recurring
        from models.query_store import SOURCES

        check_group(by)
        if source is not None and source not in SOURCES:
            raise BadInputError(f"--source {source!r} is not a query source",
                                hint=f"Use one of: {', '.join(SOURCES)}.")
        start, end = _parse_day(since, "--since"), _parse_day(until, "--until")
        ctx = open_context(home)
        try:
            wh = ctx.warehouse
            if refresh or is_stale(wh, ctx.state):
                result = run_query_cost(wh, ctx.state, _config(ctx))
                info(f"query cost computed (run {result.run_id}): "
                     + ", ".join(f"{s} {', '.join(m)}" for s, m in result.months.items()))
                for note in result.notes:
                    info(f"note: {note}")
            if not wh.has_data("query_cost"):
                raise BadInputError(
                    f"no query history in {wh.home}",
                    hint="Collect one first: `finops collect snowflake --path DIR` "
                    "(or bigquery-jobs, databricks).")
            if recurring is not None:
                df = top_recurring(wh, limit=recurring, since=start, source=source)
                emit(df, fmt, title="Most expensive recurring queries", money=["cost"])
                return
            df = cost_by(wh, by, since=start, until=end, source=source)
        finally:
            ctx.close()
        emit(df, fmt, title=f"Warehouse cost by {by}", money=["cost"])
