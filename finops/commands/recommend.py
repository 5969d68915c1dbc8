"""``finops recommend`` (and ``recommend decide``), ``finops collect cloudwatch|utilization|
inventory|catalog``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from finops.context import HomeOption, open_context
from finops.errors import BadInputError
from finops.output import Format, emit
from finops.progress import info

DECISIONS = ("accepted", "dismissed", "done")


def _parse_time(text: str | None, option: str, *, end_of_day: bool = False) -> dt.datetime | None:
    if text is None:
        return None
    try:
        if len(text.strip()) == 10:
            day = dt.date.fromisoformat(text.strip())
            value = dt.datetime.combine(day, dt.time(), dt.UTC)
            return value + dt.timedelta(days=1) if end_of_day else value
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(f"{option} {text!r} is not a date or time",
                            hint="Write YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ.") from None
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def print_recommendations(frame: pl.DataFrame, fmt: Format) -> None:
    from models.rightsizing.base import COLUMNS

    if fmt == Format.json:
        rows = [{
            "recommendation_id": r["recommendation_id"], "kind": r["kind"], "resource_id": r["resource_id"],
            "current": r["current"], "recommended": r["recommended"],
            "monthly_savings": str(r["monthly_savings"]), "confidence": r["confidence"],
            "evidence": json.loads(r["evidence"]), "status": r["status"],
        } for r in frame.iter_rows(named=True)]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if fmt == Format.csv:
        emit(frame.select(COLUMNS), fmt, money=["monthly_savings"])
        return
    table = frame.select(*[pl.col("summary").alias("evidence") if c == "evidence" else pl.col(c)
                           for c in COLUMNS])
    emit(table, fmt, title="Recommendations", money=["monthly_savings"])
    if frame.height:
        by_currency = frame.filter(pl.col("monthly_savings") > 0).group_by("currency").agg(
            pl.col("monthly_savings").sum()).sort("currency")
        total = ", ".join(f"{s} {c}" for c, s in by_currency.iter_rows())
        info(f"{frame.height} recommendations; savings a month: {total or 'none'}")


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    recommend_app = typer.Typer(help="Right-sizing, idle, warehouse and commitment recommendations.",
                                invoke_without_command=True, no_args_is_help=False)
    app.add_typer(recommend_app, name="recommend")

    @recommend_app.callback(invoke_without_command=True)
    def recommend_cmd(
        ctx: typer.Context,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
        kind: Annotated[list[str] | None, typer.Option(
            "--kind", help="Only this kind (repeatable): rightsize_compute, idle_instance, "
            "unattached_volume, old_snapshot, idle_load_balancer, unused_elastic_ip, "
            "warehouse_size, warehouse_auto_suspend, bigquery_pricing, commitment_purchase.")] = None,
        status: Annotated[list[str] | None, typer.Option(
            "--status", help="Only this status (repeatable): new, accepted, dismissed, done. "
            "Default: new and accepted.")] = None,
        show_all: Annotated[bool, typer.Option("--all", help="Every status.")] = False,
        refresh: Annotated[bool, typer.Option(
            "--refresh/--no-refresh", help="Recompute from the warehouse first (default), or "
            "list what the last run wrote.")] = True,
        as_of: Annotated[str | None, typer.Option(
            "--as-of", help="End of the lookback (YYYY-MM-DD: through that day). Default: the "
            "latest utilisation sample.")] = None,
        percentile: Annotated[float | None, typer.Option(
            "--percentile", help="CPU percentile for the need (default 99).")] = None,
        headroom: Annotated[float | None, typer.Option(
            "--headroom", help="Added to the need, e.g. 0.2 for 20% (default).")] = None,
        lookback_days: Annotated[int | None, typer.Option(
            "--lookback-days", help="Days of history (default 14).")] = None,
        cross_family: Annotated[bool | None, typer.Option(
            "--cross-family/--same-family", help="Allow another instance family.",
            show_default=False)] = None,
        config: Annotated[Path | None, typer.Option(
            "--config", help="TOML or YAML file of right-sizing settings.")] = None,
    ) -> None:
        """Recommendations: what to change, monthly savings at the prices you pay, evidence."""
        if ctx.invoked_subcommand is not None:
            return
        from models.rightsizing.base import KINDS, STATUSES
        from models.rightsizing.run import list_recommendations, run_recommendations
        from models.rightsizing.settings import load_rightsizing_settings

        for k in kind or []:
            if k not in KINDS:
                raise BadInputError(f"--kind {k!r} is not a kind", hint=f"Use one of: {', '.join(KINDS)}.")
        for s in status or []:
            if s not in STATUSES:
                raise BadInputError(f"--status {s!r} is not a status",
                                    hint=f"Use one of: {', '.join(STATUSES)}.")
        settings = load_rightsizing_settings(config, cpu_percentile=percentile, headroom=headroom,
                                             lookback_days=lookback_days, cross_family=cross_family)
        end = _parse_time(as_of, "--as-of", end_of_day=True)
        ctx_ = open_context(home)
        try:
            if refresh:
                outcome, _ = run_recommendations(ctx_.warehouse, ctx_.state, settings, as_of=end)
                for note in outcome.notes:
                    info(f"note: {note}")
            statuses = None if show_all else (status or ["new", "accepted"])
            frame = list_recommendations(ctx_.warehouse, ctx_.state, statuses=statuses, kinds=kind,
                                         settings=settings)
        finally:
            ctx_.close()
        print_recommendations(frame, fmt)

    @recommend_app.command("decide")
    def decide_cmd(
        recommendation_id: Annotated[str, typer.Argument(help="A recommendation_id.")],
        status: Annotated[str, typer.Option("--status", help="accepted, dismissed or done.")],
        who: Annotated[str | None, typer.Option("--who", help="Who decided.")] = None,
        comment: Annotated[str | None, typer.Option("--comment", help="Why.")] = None,
        home: HomeOption = None,
    ) -> None:
        """Accept, dismiss or mark done a recommendation of the latest run."""
        from models.rightsizing.run import decide

        if status not in DECISIONS:
            raise BadInputError(f"--status {status!r} is not one of {', '.join(DECISIONS)}",
                                hint="Use --status accepted, dismissed or done.")
        ctx = open_context(home)
        try:
            d = decide(ctx.warehouse, ctx.state, recommendation_id, status, who=who, comment=comment)
        finally:
            ctx.close()
        info(f"{d.recommendation_id}: {d.status} by {d.who or 'unknown'} at {d.decided_at}")

    @collect_app.command("cloudwatch")
    def collect_cloudwatch_cmd(
        region: Annotated[list[str] | None, typer.Option(
            "--region", help="AWS region (repeatable; default: the session's region).")] = None,
        days: Annotated[int, typer.Option("--days", help="Days back from now.")] = 14,
        start: Annotated[str | None, typer.Option("--start", help="Start (ISO 8601, UTC).")] = None,
        end: Annotated[str | None, typer.Option("--end", help="End, exclusive (ISO 8601, UTC).")] = None,
        period: Annotated[int, typer.Option("--period", help="Seconds per data point.")] = 300,
        cpu_stat: Annotated[str, typer.Option("--cpu-stat", help="Average, Maximum, p99...")] = "Average",
        batch_size: Annotated[int, typer.Option(
            "--batch-size", help="Metric queries per GetMetricData call (at most 500).")] = 500,
        page_size: Annotated[int | None, typer.Option(
            "--page-size", help="MaxDatapoints per response (pages beyond it).")] = None,
        source: Annotated[str | None, typer.Option(
            "--source", help="Source id (default cloudwatch).")] = None,
        profile: Annotated[str | None, typer.Option("--profile", help="AWS profile.")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Utilisation of EC2 and RDS instances from CloudWatch (GetMetricData)."""
        from collectors.cloudwatch import collect_cloudwatch

        ctx = open_context(home)
        try:
            result = collect_cloudwatch(
                ctx.warehouse, ctx.state, regions=region or [], start=_parse_time(start, "--start"),
                end=_parse_time(end, "--end"), days=days, period=period, cpu_stat=cpu_stat,
                batch_size=batch_size, page_size=page_size, source=source, profile=profile)
        finally:
            ctx.close()
        for note in result.store.notes:
            info(note)
        emit(result.frame(), fmt, title="CloudWatch utilisation")

    @collect_app.command("utilization")
    def collect_utilization_cmd(
        path: Annotated[Path, typer.Option(
            "--path", help="CSV/Parquet with timestamp,resource_id,metric,value (or a folder).")],
        source: Annotated[str | None, typer.Option("--source", help="Source id (default import).")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Import utilisation samples (Prometheus, Datadog or any other export)."""
        from collectors.utilization import collect_utilization_path

        ctx = open_context(home)
        try:
            result = collect_utilization_path(ctx.warehouse, ctx.state, path, source=source)
        finally:
            ctx.close()
        emit(result.frame(), fmt, title="Utilisation imported")

    @collect_app.command("inventory")
    def collect_inventory_cmd(
        path: Annotated[Path | None, typer.Option(
            "--path", help="CSV/Parquet with resource_id,provider,region,resource_type,"
            "instance_type,hourly_cost. Without it: AWS describe calls.")] = None,
        region: Annotated[list[str] | None, typer.Option(
            "--region", help="AWS region for describe calls (repeatable).")] = None,
        source: Annotated[str | None, typer.Option(
            "--source", help="Source id (default import, or aws).")] = None,
        profile: Annotated[str | None, typer.Option("--profile", help="AWS profile.")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Import an inventory file, or describe EC2, RDS, EBS, IPs and load balancers."""
        from collectors.aws_inventory import collect_aws_inventory
        from collectors.utilization import collect_inventory_path

        ctx = open_context(home)
        try:
            if path is not None:
                result = collect_inventory_path(ctx.warehouse, ctx.state, path, source=source)
            else:
                result = collect_aws_inventory(ctx.warehouse, ctx.state, regions=region or [],
                                               profile=profile, source=source)
        finally:
            ctx.close()
        for note in result.notes:
            info(note)
        emit(result.frame(), fmt, title="Inventory")

    @collect_app.command("catalog")
    def collect_catalog_cmd(
        region: Annotated[list[str], typer.Option("--region", help="AWS region (repeatable).")],
        service: Annotated[list[str] | None, typer.Option(
            "--service", help="ec2 and/or rds (default both).")] = None,
        profile: Annotated[str | None, typer.Option("--profile", help="AWS profile.")] = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """AWS instance types and on-demand prices from the Price List API."""
        from collectors.aws_pricing import collect_aws_catalog

        ctx = open_context(home)
        try:
            done = collect_aws_catalog(ctx.warehouse, ctx.state, regions=region,
                                       services=service or ["ec2", "rds"], profile=profile)
        finally:
            ctx.close()
        emit(pl.DataFrame(done, schema=["service", "region", "instance_types"], orient="row"), fmt,
             title="Instance catalog")
