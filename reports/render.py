"""Rendering a report: HTML and plain text from Jinja2 templates, then one MIME message.

The HTML template autoescapes every value; the message is ``multipart/alternative``
(plain text, then ``multipart/related`` holding the HTML and its PNG charts, each with a
Content-ID the HTML refers to as ``cid:``), the structure Gmail and Outlook both show.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid, parseaddr

from jinja2 import Environment, PackageLoader, StrictUndefined

from reports.build import WeeklyReport, clean
from reports.fmt import compact, money, pct

CHART_ALT = {"trend": "Weekly spend, last weeks", "month": "Cumulative spend this month"}
CHART_SIZE = (592, 227)  # display size in the HTML (the PNG has 2x the pixels)


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html.j2", ".html"))


def _ljust(value: object, width: int) -> str:
    text = str(value)
    return text if len(text) >= width else text + " " * (width - len(text))


def _rjust(value: object, width: int) -> str:
    text = str(value)
    return text if len(text) >= width else " " * (width - len(text)) + text


def _day(value: dt.date) -> str:
    return f"{value.day} {value:%b}"


def _tone(value: Decimal | float | None) -> str:
    """Colour of a change in cost: more spend is red, less is green."""
    if value is None or value == 0:
        return "#475467"
    return "#b42318" if value > 0 else "#067647"


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=_autoescape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(money=money, pct=pct, compact=compact, day=_day, ljust=_ljust,
                       rjust=_rjust, tone=_tone)
    return env


ENV = environment()


def render_html(report: WeeklyReport, images: dict[str, str]) -> str:
    """The HTML body; ``images`` maps a chart name to its ``src`` (``cid:...`` or a file)."""
    return ENV.get_template("weekly.html.j2").render(
        r=report, images=images, alt=CHART_ALT, chart_size=CHART_SIZE)


def render_text(report: WeeklyReport) -> str:
    return ENV.get_template("weekly.txt.j2").render(r=report)


def subject(report: WeeklyReport, prefix: str) -> str:
    parts = [f"{prefix} {report.week.label}"]
    headline = report.headline
    if headline is not None:
        change = f" ({pct(headline.change_pct)} vs previous week)" if headline.change_pct is not None \
            else ""
        parts.append(f"{money(headline.week, headline.currency)}{change}")
    if not report.scope.everything:
        parts.append(clean(report.scope_label, 60))
    return clean(" · ".join(parts), 200)


def compose(report: WeeklyReport, *, sender: str, prefix: str) -> EmailMessage:
    """The complete message for ``report.email``, charts embedded inline."""
    address = parseaddr(sender)[1]
    domain = address.rsplit("@", 1)[-1] if "@" in address else "localhost"
    cids = {name: make_msgid(idstring=f"chart-{name}", domain=domain) for name in report.charts}
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject(report, prefix)
    msg["From"] = sender
    msg["To"] = formataddr((report.name or "", report.email)) if report.name else report.email
    msg["Date"] = format_datetime(report.generated_at.astimezone(dt.UTC))
    msg["Message-ID"] = make_msgid(idstring=f"weekly-{report.week.label}", domain=domain)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-FinOps-Report"] = f"weekly; week={report.week.label}"
    msg.set_content(render_text(report), subtype="plain", charset="utf-8")
    html = render_html(report, {name: "cid:" + cid[1:-1] for name, cid in cids.items()})
    msg.add_alternative(html, subtype="html", charset="utf-8")
    if cids:
        html_part = list(msg.iter_parts())[1]
        assert isinstance(html_part, EmailMessage)
        for name, cid in cids.items():
            html_part.add_related(report.charts[name], maintype="image", subtype="png", cid=cid,
                                  filename=f"{name}.png", disposition="inline")
    return msg
