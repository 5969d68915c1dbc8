"""One run of the weekly report: build, render and send (or write) one message per recipient.

What ``finops report weekly`` and the scheduler's report step call. A recipient whose
report fails to build or send is reported and the others still get theirs.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from finops.errors import ConfigError
from finops.settings import Settings
from finops.state import State
from finops.warehouse import Warehouse
from reports.build import IsoWeek, WeeklyReport, build_report, load_inputs
from reports.charts import render_charts
from reports.config import Recipient, ReportsConfig, normalise_email
from reports.deliver import DeliveryError, SmtpSender
from reports.render import compose, render_html
from reports.sendlog import SendLog

log = logging.getLogger("finops.reports")
REPORT = "weekly"


@dataclass(frozen=True)
class Outcome:
    email: str
    role: str
    scope: str
    status: str  # sent, skipped, failed, written, dry-run
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def slug(email: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "_", email.lower())


def write_preview(report: WeeklyReport, eml: bytes, out_dir: Path) -> list[Path]:
    """``DIR/<week>/<recipient>.eml`` and ``.html`` (charts beside it as PNG files)."""
    folder = out_dir / report.week.label
    folder.mkdir(parents=True, exist_ok=True)
    base = slug(report.email)
    images = {}
    written = []
    for name, png in report.charts.items():
        path = folder / f"{base}-{name}.png"
        path.write_bytes(png)
        images[name] = path.name
        written.append(path)
    html_path = folder / f"{base}.html"
    html_path.write_text(render_html(report, images), encoding="utf-8")
    eml_path = folder / f"{base}.eml"
    eml_path.write_bytes(eml)
    return [eml_path, html_path, *written]


def targets(config: ReportsConfig, to: str | None) -> list[tuple[Recipient | None, str]]:
    if to is not None:
        try:
            email = normalise_email(to)
        except ValueError as exc:
            raise ConfigError(f"--to: {exc}") from None
        return [(config.recipient(email), email)]
    if not config.recipients:
        raise ConfigError(
            "no report recipients are configured",
            hint="Add [[reports.recipients]] to the reports config (see --config and "
            "FINOPS_REPORTS_CONFIG), or send one report with --to EMAIL.")
    return [(r, r.email) for r in config.recipients]


def run_weekly(wh: Warehouse, state: State, settings: Settings, config: ReportsConfig, *,
               week: IsoWeek, to: str | None = None, send: bool = False,
               out_dir: Path | None = None, force: bool = False,
               now: dt.datetime | None = None,
               sleep: Callable[[float], None] = time.sleep) -> list[Outcome]:
    people = targets(config, to)
    inputs = load_inputs(wh, state, week, config, now=now)
    sender = SmtpSender(settings.smtp, attempts=config.delivery.attempts,
                        backoff_seconds=config.delivery.backoff_seconds, sleep=sleep)
    sendlog = SendLog(state) if send else None
    if send:
        log.info("sending the %s report for %s to %d recipient(s) via %s", REPORT, week.label,
                 len(people), sender.describe)
    outcomes = []
    for recipient, email in people:
        role = recipient.role if recipient else "finance"
        try:
            report = build_report(inputs, config, recipient, email, settings.app.base_url)
            render_charts(report)
            msg = compose(report, sender=settings.smtp.sender, prefix=config.delivery.subject_prefix)
        except Exception as exc:
            log.exception("the report for %s could not be built", email)
            outcomes.append(Outcome(email, role, "?", "failed", f"build failed: {exc}"))
            continue
        scope = report.scope_label
        details = []
        if out_dir is not None:
            paths = write_preview(report, msg.as_bytes(), out_dir)
            details.append(f"wrote {paths[0].parent}/{slug(email)}.eml/.html")
        if sendlog is not None:
            busy = sendlog.claim(REPORT, week.label, email, force=force)
            if busy is not None:
                log.info("%s: not sent again (%s; --force sends anyway)", email, busy)
                outcomes.append(Outcome(email, role, scope, "skipped", busy))
                continue
            try:
                attempts = sender.send(msg)
            except DeliveryError as exc:
                sendlog.mark_failed(REPORT, week.label, email, error=exc.message,
                                    attempts=exc.attempts)
                log.error("%s: not delivered: %s", email, exc.message)
                outcomes.append(Outcome(email, role, scope, "failed", exc.message))
                continue
            sendlog.mark_sent(REPORT, week.label, email, message_id=str(msg["Message-ID"]),
                              attempts=attempts)
            log.info("%s: sent (%s)", email, msg["Subject"])
            outcomes.append(Outcome(email, role, scope, "sent",
                                    "; ".join([*details, f"attempts: {attempts}"])))
        elif out_dir is not None:
            outcomes.append(Outcome(email, role, scope, "written", "; ".join(details)))
        else:
            outcomes.append(Outcome(email, role, scope, "dry-run", str(msg["Subject"])))
    return outcomes
