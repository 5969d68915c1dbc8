"""``finops allocate`` and ``finops run``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from finops.context import HomeOption, open_context
from finops.errors import BadInputError
from finops.output import Format, emit
from finops.progress import info


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @app.command("allocate")
    def allocate_cmd(
        period: Annotated[list[str] | None, typer.Option(
            "--period", help="Only these billing periods (YYYY-MM); default all.")] = None,
        config: Annotated[Path | None, typer.Option(
            "--config", help="Allocation rules (YAML or TOML); default FINOPS_ALLOCATION_CONFIG "
            "or <home>/allocation.yaml.")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Attribute every dollar to a tenant, team and cost centre; print the reconciliation."""
        from models.allocation import allocate

        ctx = open_context(home)
        try:
            if not ctx.warehouse.has_data("billing"):
                raise BadInputError(f"no billing data in {ctx.warehouse.home}",
                                    hint="Run `finops collect ...` or `finops demo` first.")
            result = allocate(ctx.warehouse, ctx.state, periods=period,
                              config_path=config or ctx.settings.allocation_config)
        finally:
            ctx.close()
        recon = pl.DataFrame(
            {
                "period": [c.period for c in result.checks],
                "currency": [c.currency for c in result.checks],
                "input_billed_cost": [c.input_billed for c in result.checks],
                "allocated_billed_cost": [c.allocated_billed for c in result.checks],
                "input_effective_cost": [c.input_effective for c in result.checks],
                "allocated_effective_cost": [c.allocated_effective for c in result.checks],
                "reconciled": [c.ok for c in result.checks],
            }
        )
        info(f"run {result.run_id}: {len(result.periods)} periods allocated")
        emit(recon, fmt, title="Reconciliation: allocated = input, per period and currency",
             money=[c for c in recon.columns if c.endswith("_cost")])
        if fmt == Format.table:
            emit(result.coverage, fmt, title="Coverage by allocation method", money=["effective_cost"])

    @app.command("explain")
    def explain_cmd(
        resource: Annotated[str | None, typer.Option("--resource", help="A ResourceId.")] = None,
        rule: Annotated[str | None, typer.Option("--rule", help="A rule or pool id.")] = None,
        period: Annotated[str | None, typer.Option("--period", help="YYYY-MM")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Where a resource's cost went, or what a rule placed, and why."""
        from models.allocation.explain import explain_resource, explain_rule

        if (resource is None) == (rule is None):
            raise BadInputError("give either --resource ID or --rule ID")
        ctx = open_context(home)
        try:
            df = (explain_resource(ctx.warehouse, resource, period=period) if resource is not None
                  else explain_rule(ctx.warehouse, rule or "", period=period))
        finally:
            ctx.close()
        emit(df, fmt, title=f"Allocation of {resource or rule}", money=["billed_cost", "effective_cost"])

    @app.command("run")
    def run_cmd(home: HomeOption = None) -> None:
        """Run every stage once (allocate, and later detect, recommend) on what is collected."""
        from finops.pipeline import run_stages

        ctx = open_context(home)
        try:
            outcomes = run_stages(ctx.warehouse, ctx.state)
        finally:
            ctx.close()
        if not all(o.ok for o in outcomes):
            raise typer.Exit(1)
