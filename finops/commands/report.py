"""``finops report weekly`` and ``finops schedule``."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from finops.context import HomeOption, open_context
from finops.output import Format

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Reports config file (TOML or YAML; default: "
                 "FINOPS_REPORTS_CONFIG, then the reports table of finops.toml).", show_default=False),
]


def _logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    for name in ("finops.reports", "finops.schedule"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def register(app: typer.Typer, collect_app: typer.Typer) -> None:
    report_app = typer.Typer(help="Reports sent by e-mail.", no_args_is_help=True)
    app.add_typer(report_app, name="report")

    @report_app.command("weekly")
    def weekly_cmd(
        week: Annotated[str | None, typer.Option(
            "--week", help="ISO week, YYYY-Www (default: the last complete week).")] = None,
        to: Annotated[str | None, typer.Option(
            "--to", help="Only this address: its configured scope, or everything if it has "
            "none.")] = None,
        send: Annotated[bool, typer.Option("--send", help="Send over SMTP.")] = False,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Write each report's .eml and .html here for preview.")] = None,
        force: Annotated[bool, typer.Option(
            "--force", help="Send again to recipients who already have this week's report.")
        ] = False,
        config: ConfigOption = None,
        home: HomeOption = None,
        fmt: Annotated[Format, typer.Option("--format")] = Format.table,
    ) -> None:
        """Build the weekly report for each recipient; send it, or write it with --out.

        Without --send or --out, shows what would be sent. Exit code 1 when any
        recipient's report failed.
        """
        import datetime as dt

        import polars as pl

        from finops.errors import StageError
        from finops.output import emit
        from reports.build import IsoWeek
        from reports.config import load_config
        from reports.weekly import run_weekly

        _logging()
        cfg = load_config(config)
        iso = IsoWeek.parse(week) if week else IsoWeek.last_complete(dt.datetime.now(dt.UTC).date())
        ctx = open_context(home)
        try:
            outcomes = run_weekly(ctx.warehouse, ctx.state, ctx.settings, cfg, week=iso, to=to,
                                  send=send, out_dir=out, force=force)
        finally:
            ctx.close()
        # The table is printed with rich, which would read "[...]" in a server's reply as markup.
        safe = escape if fmt == Format.table else str
        rows = [{"recipient": o.email, "role": o.role, "scope": safe(o.scope), "status": o.status,
                 "detail": safe(o.detail)} for o in outcomes]
        emit(pl.DataFrame(rows, schema=dict.fromkeys(
            ("recipient", "role", "scope", "status", "detail"), pl.String)),
            fmt, title=f"Weekly report {iso.label}")
        failed = [o.email for o in outcomes if o.failed]
        if failed:
            raise StageError(f"the weekly report failed for {len(failed)} of {len(outcomes)} "
                             f"recipient(s): {', '.join(failed)}",
                             hint="See the detail column above; a re-run sends only to those "
                             "who did not get it.")

    @app.command("schedule")
    def schedule_cmd(
        once: Annotated[bool, typer.Option(
            "--once", help="Run what is due now (catching up a missed run), then exit.")] = False,
        now: Annotated[bool, typer.Option(
            "--now", help="Run the jobs immediately, whatever their schedule, then exit.")] = False,
        job: Annotated[list[str] | None, typer.Option(
            "--job", help="Only this job (repeat for several).")] = None,
        config: ConfigOption = None,
        home: HomeOption = None,
    ) -> None:
        """Run the configured jobs on their cron schedules, as a long-running process."""
        from finops.errors import ConfigError, StageError
        from reports.config import load_config
        from reports.schedule import Scheduler, make_runner, single_instance

        _logging()
        cfg = load_config(config)
        unknown = [n for n in job or [] if cfg.job(n) is None]
        if unknown:
            raise ConfigError(f"--job: no job named {', '.join(unknown)}",
                              hint=f"Configured jobs: {', '.join(j.name for j in cfg.jobs) or 'none'}.")
        jobs = [j for j in cfg.jobs if not job or j.name in job]
        if not jobs:
            raise ConfigError("no jobs are configured",
                              hint="Add [[reports.jobs]] with name, cron, timezone and steps.")
        ctx = open_context(home)
        try:
            with single_instance(ctx.warehouse.home):
                scheduler = Scheduler(jobs, ctx.state,
                                      make_runner(ctx.warehouse, ctx.state, ctx.settings, cfg))
                if now or once:
                    runs = scheduler.run_now() if now else scheduler.tick()
                    if not runs:
                        logging.getLogger("finops.schedule").info("nothing due")
                    failed = [r.job for r in runs if not r.ok]
                    if failed:
                        raise StageError(f"job(s) failed: {', '.join(failed)}",
                                         hint="The log above names the step that failed.")
                    return
                stop = threading.Event()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(sig, lambda *_: stop.set())
                scheduler.run(stop)
        finally:
            ctx.close()
