"""``finops collect gcp``: the Google Cloud Billing export, from files or BigQuery."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from finops.commands.collect_focus import report_ingest
from finops.context import HomeOption, open_context
from finops.errors import BadInputError
from finops.output import Format
from finops.progress import info


def _since(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInputError(f"--since {text!r} is not a date",
                            hint="Give it as YYYY-MM-DD.") from None


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @collect_app.command("gcp")
    def collect_gcp_cmd(
        path: Annotated[Path | None, typer.Option(
            "--path", help="Billing export files: JSON lines (bq extract), CSV or Parquet, "
            "optionally .gz, or a folder of them.")] = None,
        table: Annotated[str | None, typer.Option(
            "--table", help="The BigQuery export table or view, PROJECT.DATASET.TABLE "
            "(standard, detailed or FOCUS).")] = None,
        since: Annotated[str | None, typer.Option(
            "--since", help="With --table: read invoice months with rows exported since this "
            "date (YYYY-MM-DD) instead of since the last run.")] = None,
        overlap_days: Annotated[int, typer.Option(
            "--overlap-days", min=0, help="With --table: re-read rows exported this many days "
            "before the last run's newest row (late rows).")] = 3,
        project: Annotated[str | None, typer.Option(
            "--project", help="With --table: the project that runs (and pays for) the queries "
            "(default: the table's project).")] = None,
        list_prices: Annotated[bool, typer.Option(
            "--list-prices", help="Fetch list prices from the Cloud Billing Catalog API (cached "
            "under <home>/_cache/gcp_catalog) to fill ListCost where the export has no "
            "cost_at_list. Without it, only prices already cached are used.")] = False,
        bigquery_endpoint: Annotated[str | None, typer.Option(
            "--bigquery-endpoint", hidden=True, help="BigQuery API endpoint (emulators, tests).")] = None,
        catalog_endpoint: Annotated[str | None, typer.Option(
            "--catalog-endpoint", hidden=True, help="Cloud Billing API endpoint (tests).")] = None,
        source: Annotated[str | None, typer.Option(
            "--source", help="Source id for the warehouse (default: the file, folder or table "
            "name). Collecting the same source and period again replaces it.")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Import the Google Cloud Billing export as FOCUS 1.2, from files or BigQuery."""
        if (path is None) == (table is None):
            raise BadInputError("give either --path or --table",
                                hint="--path for exported files, --table PROJECT.DATASET.TABLE "
                                "for BigQuery.")
        if path is not None and since is not None:
            raise BadInputError("--since goes with --table",
                                hint="With --path every row of the files is loaded.")
        since_date = _since(since)
        from collectors import gcp
        from collectors.gcp_catalog import prices_for_ingest

        ctx = open_context(home)
        try:
            prices = prices_for_ingest(ctx.warehouse.home, fetch=list_prices,
                                       endpoint=catalog_endpoint)
            share = ctx.settings.ingest.max_rejected_cost_share
            if path is not None:
                result = gcp.collect_gcp_files(ctx.warehouse, ctx.state, path, source=source,
                                               max_rejected_share=share, prices=prices)
            else:
                assert table is not None
                run = gcp.collect_gcp_table(
                    ctx.warehouse, ctx.state, table, source=source, max_rejected_share=share,
                    since=since_date, overlap=timedelta(days=overlap_days), project=project,
                    endpoint=bigquery_endpoint, prices=prices,
                )
                window = (run.window_start.isoformat() if isinstance(run.window_start, datetime)
                          else "the beginning")
                if run.result is None:
                    info(f"no rows exported since {window}: nothing to load "
                         f"(cursor {run.cursor or 'not set'})")
                    return
                info(f"read invoice months {', '.join(run.months)} (rows exported since {window}); "
                     f"cursor now {run.cursor}")
                result = run.result
        finally:
            ctx.close()
        report_ingest(result, fmt)
