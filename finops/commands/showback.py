"""``finops showback``."""

from __future__ import annotations

from typing import Annotated

import typer

from finops.context import HomeOption, open_context
from finops.output import Format, emit


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    @app.command("showback")
    def showback_cmd(
        period: Annotated[str, typer.Option("--period", help="Billing period, YYYY-MM.")],
        by: Annotated[list[str], typer.Option(
            "--by", help="Group by tenant, team, cost_center, service, account, provider, "
            "region, charge_category, method or currency; repeat for several.")],
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Allocated cost per group for a month: billed_cost and effective_cost."""
        from models.showback import check_groups, parse_period, showback

        check_groups(by)
        ctx = open_context(home)
        try:
            df = showback(ctx.warehouse, parse_period(period), by)
        finally:
            ctx.close()
        emit(df, fmt, title=f"Showback {period}", money=["billed_cost", "effective_cost"])
