"""The report's charts as PNG bytes, drawn offline with Matplotlib's Agg backend.

Charts show amounts and dates only, never a tenant or resource name, so no untrusted text
ends up inside an image where it could not be escaped.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from reports.build import MonthOutlook, WeeklyReport
from reports.fmt import compact

NAVY = "#1f4e79"
GREY = "#c9d3df"
AMBER = "#c2410c"
RED = "#b42318"
INK = "#344054"
MUTED = "#667085"
WIDTH_IN, HEIGHT_IN, DPI = 6.0, 2.3, 200  # shown at 600 px wide: sharp on high-DPI screens


def _figure() -> Figure:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    fig.set_facecolor("white")
    return fig


def _style(ax: object, currency: str) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color(GREY)
    ax.tick_params(colors=MUTED, labelsize=7, length=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: compact(v, currency)))
    ax.grid(axis="y", color="#eaecf0", linewidth=0.6)
    ax.set_axisbelow(True)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def trend_png(trend: list[tuple[str, Decimal]], average: Decimal | None, currency: str) -> bytes:
    """Weekly spend, the report's week last and dark, the 4-week average dashed."""
    fig = _figure()
    ax = fig.add_subplot()
    _style(ax, currency)
    labels = [label for label, _ in trend]
    values = [float(v) for _, v in trend]
    colours = [GREY] * (len(values) - 1) + [NAVY]
    ax.bar(labels, values, color=colours, width=0.62)
    if average is not None:
        ax.axhline(float(average), color=AMBER, linewidth=1.1, linestyle=(0, (4, 3)))
        ax.annotate("4-week average", xy=(0, float(average)), xytext=(2, 3),
                    textcoords="offset points", color=AMBER, fontsize=7)
    if values:
        ax.annotate(compact(values[-1], currency), xy=(len(values) - 1, values[-1]),
                    xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7,
                    color=NAVY, fontweight="bold")
    ax.set_ylim(bottom=min(0.0, *values) if values else 0.0)
    fig.tight_layout(pad=0.6)
    return _png(fig)


def month_png(cumulative: list[tuple[dt.date, Decimal]], month: MonthOutlook) -> bytes:
    """Cumulative spend this month, the forecast to month end, the budget."""
    fig = _figure()
    ax = fig.add_subplot()
    _style(ax, month.currency)
    days = [d.day for d, _ in cumulative]
    values = [float(v) for _, v in cumulative]
    ax.plot(days, values, color=NAVY, linewidth=1.8)
    ax.fill_between(days, values, color=NAVY, alpha=0.08, linewidth=0)
    end = month.days_in_month
    if month.forecast is not None and days and days[-1] < end:
        ax.plot([days[-1], end], [values[-1], float(month.forecast)], color=NAVY, linewidth=1.4,
                linestyle=(0, (3, 2)))
        ax.annotate(f"forecast {compact(month.forecast, month.currency)}",
                    xy=(end, float(month.forecast)), xytext=(-2, 4), textcoords="offset points",
                    ha="right", fontsize=7, color=NAVY)
    if month.budget is not None:
        ax.axhline(float(month.budget), color=RED, linewidth=1.0, linestyle=(0, (5, 3)))
        ax.annotate(f"budget {compact(month.budget, month.currency)}", xy=(1, float(month.budget)),
                    xytext=(2, 3), textcoords="offset points", fontsize=7, color=RED)
    ax.set_xlim(1, end)
    ax.set_ylim(bottom=0)
    ax.set_xticks([d for d in (1, 8, 15, 22, end) if d <= end])
    ax.set_xlabel(month.label, fontsize=7, color=MUTED)
    fig.tight_layout(pad=0.6)
    return _png(fig)


def render_charts(report: WeeklyReport) -> dict[str, bytes]:
    charts = {}
    if report.has_cost and report.trend:
        charts["trend"] = trend_png(report.trend, report.trend_average, report.currency)
    month = report.month
    if month is not None and report.month_cumulative:
        charts["month"] = month_png(report.month_cumulative, month)
    report.charts = charts
    return charts
