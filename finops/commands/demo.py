"""``finops demo``: generate the demo organisation, run every stage, serve the app."""

from __future__ import annotations

from importlib import resources
from typing import Annotated

import typer

from finops.context import HomeOption, open_context
from finops.progress import info
from models.allocation.engine import default_config_path

DEMO_RULES = resources.files("models.allocation").joinpath("demo.yaml")


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives the "
                                          "same organisation.")] = 42,
        scale: Annotated[int | None, typer.Option(
            "--scale", min=1, help="Generate about this many billing rows (for benchmarks).")] = None,
        serve: Annotated[bool, typer.Option("--serve/--no-serve",
                                            help="Serve the app when done.")] = True,
        port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8501,
        home: HomeOption = None,
    ) -> None:
        """Generate a realistic multi-cloud organisation, run every stage, serve the app."""
        from collectors.demo import generate_demo
        from finops.pipeline import run_stages

        ctx = open_context(home)
        try:
            summary = generate_demo(ctx.warehouse, ctx.state, seed=seed, scale=scale)
            rules = default_config_path(ctx.warehouse.home)
            if not rules.exists():
                # The demo's allocation rules, as a starting point the user can edit.
                rules.write_text(DEMO_RULES.read_text(encoding="utf-8"), encoding="utf-8")
                info(f"allocation rules: {rules} (edit it, then `finops allocate`)")
            # The demo's other inputs, collected as a user would collect their own: the
            # shared Snowflake warehouse's query history, utilisation and inventory.
            from collectors.demo import inputs_dir
            from collectors.snowflake import collect_snowflake_files
            from collectors.utilization import collect_inventory_path, collect_utilization_path

            inputs = inputs_dir(ctx.warehouse)
            collect_snowflake_files(ctx.warehouse, ctx.state, inputs / "snowflake")
            collect_utilization_path(ctx.warehouse, ctx.state, inputs / "utilization.csv", source="demo")
            collect_inventory_path(ctx.warehouse, ctx.state, inputs / "inventory.csv", source="demo")
            info(f"demo organisation written to {ctx.warehouse.home}: "
                 f"{sum(summary.rows.values()):,} billing rows")
            outcomes = run_stages(ctx.warehouse, ctx.state)
        finally:
            ctx.close()
        if not all(o.ok for o in outcomes):
            raise typer.Exit(1)
        if serve:
            from finops.commands.app import serve as serve_app

            serve_app(ctx.warehouse.home, port)
