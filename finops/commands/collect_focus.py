"""``finops collect focus``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from finops.context import HomeOption, open_context
from finops.ingest import IngestResult
from finops.output import Format, emit
from finops.progress import info


def reconciliation_frame(result: IngestResult) -> pl.DataFrame:
    money = pl.Decimal(38, 12)
    return pl.DataFrame(
        {
            "period": [r.period for r in result.reconciliation],
            "currency": [r.currency for r in result.reconciliation],
            "rows": [r.rows for r in result.reconciliation],
            "source_billed_cost": [r.source_billed for r in result.reconciliation],
            "billed_cost": [r.stored_billed for r in result.reconciliation],
            "set_aside_billed_cost": [r.set_aside_billed for r in result.reconciliation],
            "source_effective_cost": [r.source_effective for r in result.reconciliation],
            "effective_cost": [r.stored_effective for r in result.reconciliation],
            "reconciled": [r.reconciled for r in result.reconciliation],
        },
        schema_overrides=dict.fromkeys(
            ("source_billed_cost", "billed_cost", "set_aside_billed_cost", "source_effective_cost",
             "effective_cost"),
            money,
        ),
    )


def report_ingest(result: IngestResult, fmt: Format) -> None:
    """Print what a collect loaded, reconciled to the source per period and currency."""
    info(f"run {result.run_id}: {result.rows_out} rows loaded into source '{result.source}', "
         f"{result.rows_rejected} set aside, periods {', '.join(result.periods) or 'none'}")
    for reason, count in result.reject_summary:
        info(f"  set aside: {reason}: {count} rows")
    emit(reconciliation_frame(result), fmt, title="Totals reconciled to the source",
         money=["source_billed_cost", "billed_cost", "set_aside_billed_cost",
                "source_effective_cost", "effective_cost"])
    if not all(r.reconciled for r in result.reconciliation):
        raise typer.Exit(1)


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @collect_app.command("focus")
    def collect_focus_cmd(
        path: Annotated[Path, typer.Option("--path", help="A FOCUS CSV, CSV.gz or Parquet file, "
                                           "or a folder of them.")],
        source: Annotated[str | None, typer.Option(
            "--source", help="Source id for the warehouse (default: the file or folder name). "
            "Collecting the same source and period again replaces it.")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Import FOCUS 1.0–1.2 files, upgraded to FOCUS 1.2."""
        from collectors.focus import collect_focus

        ctx = open_context(home)
        try:
            result = collect_focus(
                ctx.warehouse, ctx.state, path, source=source,
                max_rejected_share=ctx.settings.ingest.max_rejected_cost_share,
            )
        finally:
            ctx.close()
        report_ingest(result, fmt)
