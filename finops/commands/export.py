"""``finops export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finops.context import HomeOption, open_context
from finops.progress import info
from models.export import Dataset, ExportFormat


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        dataset: Annotated[Dataset, typer.Option("--dataset")],
        out: Annotated[Path, typer.Option("--out", help="File to write, or a folder.")],
        fmt: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.parquet,
        home: HomeOption = None,
    ) -> None:
        """Write the normalised billing or allocated data for any FOCUS tool."""
        from models.export import export

        ctx = open_context(home)
        try:
            rows = export(ctx.warehouse, dataset, fmt, out)
        finally:
            ctx.close()
        info(f"wrote {rows} rows of {dataset.value} to {out}")
