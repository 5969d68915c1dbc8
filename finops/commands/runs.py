"""``finops runs``: the run log from state.db, newest first."""

from __future__ import annotations

from typing import Annotated

import polars as pl
import typer

from finops.context import HomeOption, open_context
from finops.output import Format, emit


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @app.command("runs")
    def runs_cmd(
        stage: Annotated[str | None, typer.Option("--stage", help="Only this stage (collect, "
                                                  "allocate, ...).")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
        totals: Annotated[bool, typer.Option("--totals", help="Per-period totals of each run.")] = False,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Recent runs: stage, source, status, rows in/out/set aside, start and end."""
        ctx = open_context(home)
        try:
            runs = ctx.state.runs(stage=stage, limit=limit)
            if totals:
                rows = [
                    {"run_id": r["run_id"], "source": r["source"], "status": r["status"],
                     "period": t.period, "currency": t.currency, "rows": t.rows,
                     "billed_cost": t.billed_cost, "effective_cost": t.effective_cost,
                     "rejected_rows": t.rejected_rows, "checksum": t.checksum}
                    for r in runs for t in ctx.state.run_totals(r["run_id"])
                ]
                df = pl.DataFrame(rows, schema_overrides={"billed_cost": pl.Decimal(38, 12),
                                                          "effective_cost": pl.Decimal(38, 12)})
                emit(df, fmt, title="Run totals", money=["billed_cost", "effective_cost"])
                return
        finally:
            ctx.close()
        cols = ["run_id", "stage", "source", "status", "rows_in", "rows_out", "rows_rejected",
                "started_at", "ended_at", "message"]
        emit(pl.DataFrame([{c: r[c] for c in cols} for r in runs],
                          schema={c: pl.Int64 if c.startswith("rows") else pl.String for c in cols}),
             fmt, title="Runs")
