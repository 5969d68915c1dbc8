"""``finops collect azure``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from finops.commands.collect_focus import report_ingest
from finops.context import HomeOption, open_context
from finops.output import Format


class ViewOption(StrEnum):
    actual = "actual"
    amortized = "amortized"


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @collect_app.command("azure")
    def collect_azure_cmd(
        path: Annotated[Path, typer.Option(
            "--path", help="An Azure Cost Management cost details export (EA or MCA, actual or "
            "amortized; CSV, CSV.gz or Parquet), or a folder of them. Put both views of a month "
            "in one folder to have BilledCost from the actual view and EffectiveCost from the "
            "amortized one.")],
        source: Annotated[str | None, typer.Option(
            "--source", help="Source id for the warehouse (default: azure). Collecting the same "
            "source and billing period again replaces it.")] = None,
        view: Annotated[ViewOption | None, typer.Option(
            "--view", help="Read every file as this view instead of telling it from the rows "
            "and the file name.")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Import Azure cost exports (EA/MCA, actual/amortized), converted to FOCUS 1.2."""
        from collectors.azure import collect_azure

        ctx = open_context(home)
        try:
            result = collect_azure(
                ctx.warehouse, ctx.state, path, source=source,
                view=None if view is None else ("actual" if view is ViewOption.actual else "amortized"),
                max_rejected_share=ctx.settings.ingest.max_rejected_cost_share,
            )
        finally:
            ctx.close()
        report_ingest(result, fmt)
