"""Presentation helpers shared by the pages: money text, display tables, charts.

Money arrives as ``Decimal`` from :mod:`app.data` and is rounded to the cent here, half
to even, once. Text (metrics) is built from the ``Decimal`` itself, so it is exact at any
size. Table cells are numbers so that finance can sort them: each is the cent-rounded
``Decimal`` converted to float, which shows the same cents for any amount below about
$90 trillion (2**53 cents), and is formatted by the column with its currency.

Tenant, service and resource names come from billing tags and are untrusted: they are
only ever shown as table cells (plain text) or, in charts, HTML-escaped, never through
``unsafe_allow_html``.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, TypeVar

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from finops.errors import FinopsError
from models.allocation import UNALLOCATED

CENT: Final = Decimal("0.01")
SYMBOLS: Final[dict[str, str]] = {
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "CN¥", "INR": "₹", "CAD": "CA$",
    "AUD": "A$", "NZD": "NZ$", "BRL": "R$", "KRW": "₩", "MXN": "MX$", "HKD": "HK$", "SGD": "S$",
}
# Named formats of st.column_config.NumberColumn; other currencies get a printf format.
_NAMED_COLUMN_FORMATS: Final = {"USD": "dollar", "EUR": "euro"}
COST_LABELS: Final = {"effective_cost": "Effective", "billed_cost": "Billed"}
COST_HELP: Final = (
    "Effective cost spreads commitments (reserved instances, savings plans, committed use "
    "discounts) over the usage they cover: the default for showback. Billed cost is what "
    "the invoice says."
)
UNALLOCATED_COLOR: Final = "#9aa0a6"
BAR_COLOR: Final = "#2f6fde"


# ---- text ----------------------------------------------------------------------------
def cents(value: Decimal | None) -> Decimal:
    return (value if value is not None else Decimal(0)).quantize(CENT, rounding=ROUND_HALF_EVEN)


def money(value: Decimal | None, currency: str, *, signed: bool = False) -> str:
    """``$12,345.67``, ``-€3.20``, ``+$1.00`` (signed), ``1,234.00 CHF`` (no symbol known)."""
    amount = cents(value)
    sign = "-" if amount < 0 else "+" if signed and amount > 0 else ""
    digits = f"{abs(amount):,.2f}"
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {currency}"


def percent(share: float | None, *, signed: bool = False) -> str:
    if share is None:
        return "n/a"
    return f"{share:+.1%}" if signed else f"{share:.1%}"


def month_label(period: str, *, short: bool = False) -> str:
    """``2026-04`` → ``April 2026`` (``short``: ``Apr 2026``)."""
    return dt.datetime.strptime(period, "%Y-%m").strftime("%b %Y" if short else "%B %Y")


def timestamp_label(iso: str | None, *, zone: bool = True) -> str:
    """An ISO timestamp from state.db as ``2026-05-01 14:03 UTC`` (``zone=False``: no ``UTC``)."""
    if not iso:
        return ""
    moment = dt.datetime.fromisoformat(iso)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC" if zone else "%Y-%m-%d %H:%M")


def chart_text(name: str | None) -> str:
    """A name as Plotly shows it literally: Plotly reads a subset of HTML in its labels."""
    return html.escape(name if name is not None else "(none)", quote=True)


# ---- tables --------------------------------------------------------------------------
def money_column_format(currency: str) -> str:
    named = _NAMED_COLUMN_FORMATS.get(currency)
    if named:
        return named
    symbol = SYMBOLS.get(currency)
    return f"{symbol}%,.2f" if symbol else f"%,.2f {currency}"


def money_column(label: str, currency: str, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(label, format=money_column_format(currency), help=help)


def _cents(column: str) -> pl.Expr:
    return pl.col(column).round(2, mode="half_to_even")


def _cents_float(column: str) -> pl.Expr:
    return _cents(column).cast(pl.Float64)


def comparison_table(table: pl.DataFrame, key: str, currency: str) -> pl.DataFrame:
    """One currency's rows of a comparison (``app.data._compare``), for display; with
    ``budget`` and ``budget_used`` (percent) when the table has budgets."""
    rows = table.filter(pl.col("currency") == currency).sort(
        "cost", key, descending=[True, False], nulls_last=True)
    columns = [
        pl.col(key).fill_null("(none)"),
        _cents_float("cost"),
        _cents_float("previous_cost"),
        # The change shown is the difference of the amounts shown, so each row adds up.
        (_cents("cost") - _cents("previous_cost")).cast(pl.Float64).alias("change"),
        (pl.col("change_pct") * 100).alias("change_pct"),  # in percent
    ]
    if "budget" in rows.columns and rows["budget"].is_not_null().any():
        columns += [
            _cents_float("budget"),
            pl.when(pl.col("budget") > 0)
            .then(pl.col("cost").cast(pl.Float64) / pl.col("budget").cast(pl.Float64) * 100)
            .alias("budget_used"),
        ]
    return rows.select(columns)


def comparison_columns(key: str, key_label: str, currency: str, label: str,
                       previous_label: str) -> dict[str, Any]:
    """Column settings of :func:`comparison_table`: ``label`` names the window shown,
    ``previous_label`` the one before (``April 2026``, ``Q1 2026``, ``1 Apr – 14 Apr 2026``)."""
    return {
        key: st.column_config.TextColumn(key_label),
        "cost": money_column(label, currency),
        "previous_cost": money_column(previous_label, currency),
        "change": money_column("Change", currency, help=f"{label} minus {previous_label}"),
        "change_pct": st.column_config.NumberColumn(
            "Change %", format="%+.1f%%", help=f"{MISSING} when the previous period was zero."),
        "budget": money_column("Budget", currency, help="The budget for the period (monthly "
                               "budgets, prorated by days for a custom range)."),
        "budget_used": st.column_config.ProgressColumn(
            "Budget used", format="%.0f%%", min_value=0, max_value=100,
            help="Cost as a share of the budget; a full bar is at or over budget."),
    }


def unallocated_table(top: pl.DataFrame, currency: str) -> pl.DataFrame:
    return (
        top.filter(pl.col("BillingCurrency") == currency)
        .select("ResourceId", "ServiceName", "ProviderName", _cents_float("cost"))
        .with_columns(pl.col("ResourceId").fill_null("(no resource id)"))
    )


def unallocated_columns(currency: str, label: str) -> dict[str, Any]:
    return {
        "ResourceId": st.column_config.TextColumn("Resource", width="large"),
        "ServiceName": st.column_config.TextColumn("Service"),
        "ProviderName": st.column_config.TextColumn("Provider"),
        "cost": money_column(label, currency),
    }


# ---- charts --------------------------------------------------------------------------
def group_bar_chart(table: pl.DataFrame, key: str, currency: str, cost_label: str, *,
                    limit: int = 15) -> go.Figure:
    """Cost by group, largest on top; beyond ``limit`` groups the rest are one bar; the
    unallocated bar in grey so it is seen, not hidden."""
    rows = comparison_table(table, key, currency).filter(pl.col("cost") != 0)
    exact = {r[key]: r["cost"] for r in
             table.filter(pl.col("currency") == currency).iter_rows(named=True)}
    names: list[str] = rows[key].to_list()
    values: list[float] = rows["cost"].to_list()
    labels = [money(exact.get(n), currency) for n in names]
    if len(names) > limit:
        rest = sum((cents(exact.get(n)) for n in names[limit - 1:]), Decimal(0))
        count = len(names) - limit + 1
        names = [*names[:limit - 1], f"Other ({count} more)"]
        values = [*values[:limit - 1], float(rest)]
        labels = [*labels[:limit - 1], money(rest, currency)]
    names, values, labels = names[::-1], values[::-1], labels[::-1]
    fig = go.Figure(
        go.Bar(
            x=values,
            y=[chart_text(n) for n in names],
            orientation="h",
            marker_color=[UNALLOCATED_COLOR if n == UNALLOCATED else BAR_COLOR for n in names],
            text=labels,
            textposition="outside",
            cliponaxis=False,
            customdata=labels,
            hovertemplate="%{y}: %{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        height=max(170, 70 + 40 * len(names)),
        margin={"l": 8, "r": 96, "t": 8, "b": 8},
        xaxis={"title": {"text": f"{cost_label} cost ({currency})"},
               "tickprefix": SYMBOLS.get(currency, ""), "tickformat": ",.0f",
               "rangemode": "tozero", "automargin": True},
        yaxis={"type": "category", "automargin": True},
        showlegend=False,
        bargap=0.3,
    )
    return fig


def tenant_bar_chart(table: pl.DataFrame, currency: str, cost_label: str) -> go.Figure:
    """Cost by tenant (see :func:`group_bar_chart`)."""
    return group_bar_chart(table, "tenant", currency, cost_label)


# ---- run log -------------------------------------------------------------------------
STATUS_LABELS: Final = {"succeeded": "Succeeded", "failed": "Failed", "running": "Running"}
# What st.dataframe shows for a missing value (a change % against zero, a run's source).
MISSING: Final = "—"


def runs_table(runs: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "started": timestamp_label(r["started_at"]),
                "stage": r["stage"],
                "source": r["source"],
                "status": STATUS_LABELS.get(r["status"], r["status"]),
                "rows_in": r["rows_in"],
                "rows_out": r["rows_out"],
                "rows_rejected": r["rows_rejected"],
                "ended": timestamp_label(r["ended_at"]),
                "message": r["message"],
                "run_id": r["run_id"],
            }
            for r in runs
        ],
        schema={"started": pl.String, "stage": pl.String, "source": pl.String, "status": pl.String,
                "rows_in": pl.Int64, "rows_out": pl.Int64, "rows_rejected": pl.Int64,
                "ended": pl.String, "message": pl.String, "run_id": pl.String},
    )


RUNS_COLUMNS: Final = {
    "started": st.column_config.TextColumn("Started"),
    "stage": st.column_config.TextColumn("Stage"),
    "source": st.column_config.TextColumn("Source"),
    "status": st.column_config.TextColumn("Status"),
    "rows_in": st.column_config.NumberColumn("Rows in", format="localized"),
    "rows_out": st.column_config.NumberColumn("Rows out", format="localized"),
    "rows_rejected": st.column_config.NumberColumn("Set aside", format="localized",
                                                   help="Rows that could not be read, kept in "
                                                   "rejected/ with their reason."),
    "ended": st.column_config.TextColumn("Ended"),
    "message": st.column_config.TextColumn("Message", width="large"),
    "run_id": st.column_config.TextColumn("Run id"),
}


def run_totals_table(runs: list[dict[str, Any]], totals: dict[str, list[Any]]) -> pl.DataFrame:
    """Per-period totals of each run; money as text with its currency, exact to the cent."""
    return pl.DataFrame(
        [
            {
                "run_id": r["run_id"],
                "stage": r["stage"],
                "source": r["source"],
                "period": t.period,
                "currency": t.currency,
                "rows": t.rows,
                "billed_cost": money(t.billed_cost, t.currency),
                "effective_cost": money(t.effective_cost, t.currency),
                "rejected_rows": t.rejected_rows,
                "rejected_billed_cost": money(t.rejected_billed_cost, t.currency),
            }
            for r in runs
            for t in totals.get(r["run_id"], [])
        ],
        schema={"run_id": pl.String, "stage": pl.String, "source": pl.String, "period": pl.String,
                "currency": pl.String, "rows": pl.Int64, "billed_cost": pl.String,
                "effective_cost": pl.String, "rejected_rows": pl.Int64,
                "rejected_billed_cost": pl.String},
    )


RUN_TOTALS_COLUMNS: Final = {
    "run_id": st.column_config.TextColumn("Run id"),
    "stage": st.column_config.TextColumn("Stage"),
    "source": st.column_config.TextColumn("Source"),
    "period": st.column_config.TextColumn("Period"),
    "currency": st.column_config.TextColumn("Currency"),
    "rows": st.column_config.NumberColumn("Rows", format="localized"),
    "billed_cost": st.column_config.TextColumn("Billed cost", alignment="right"),
    "effective_cost": st.column_config.TextColumn("Effective cost", alignment="right"),
    "rejected_rows": st.column_config.NumberColumn("Set aside rows", format="localized"),
    "rejected_billed_cost": st.column_config.TextColumn("Set aside billed", alignment="right"),
}


# ---- metrics -------------------------------------------------------------------------
def change_text(cost: Decimal, previous_cost: Decimal, currency: str) -> str:
    """``+$1,234.56 (+5.2%)``; without the percentage when the previous month was zero.

    The amount is the difference of the two amounts shown (each rounded to the cent), so
    the figures on screen add up; the percentage is from the exact amounts.
    """
    text = money(cents(cost) - cents(previous_cost), currency, signed=True)
    if previous_cost:
        text += f" ({percent(float((cost - previous_cost) / previous_cost), signed=True)})"
    return text


def tenants_with_cost(tenants: pl.DataFrame) -> int:
    """Tenants other than ``unallocated`` with a non-zero cost in a display table."""
    return tenants.filter((pl.col("tenant") != UNALLOCATED) & (pl.col("cost") != 0)).height


# ---- text from the data ------------------------------------------------------------
_MARKDOWN_SPECIAL: Final = set("\\`*_{}[]()<>#+-.!|~:$&\"'@/=%")


def md_text(text: object) -> str:
    """Untrusted text (a tenant, a resource, an e-mail) made literal in Streamlit markdown:
    every markdown and HTML character is backslash-escaped, so it can never become a link,
    an image or a tag."""
    escaped = "".join(f"\\{c}" if c in _MARKDOWN_SPECIAL else c for c in str(text))
    # GFM turns an address or a domain into a link even when escaped: "@" and "." are
    # written as character references, which it does not.
    return escaped.replace("\\@", "&#64;").replace("\\.", "&#46;").replace("\n", " ")


def safe_file_name(*parts: str) -> str:
    """A download's file name from untrusted parts: letters, digits, ``-`` and ``_`` only."""
    cleaned = "-".join(re.sub(r"[^A-Za-z0-9_-]+", "_", p).strip("_") for p in parts if p)
    return (cleaned or "finops")[:120]


GROUP_LABELS: Final = {
    "tenant": "Tenant", "team": "Team", "cost_center": "Cost centre", "service": "Service",
    "account": "Account", "provider": "Provider", "tag": "Tag",
}


def group_label(group: str) -> str:
    if group.startswith("tag:"):
        return f"Tag {group.removeprefix('tag:')}"
    return GROUP_LABELS.get(group, group.replace("_", " ").capitalize())


# ---- large tables ----------------------------------------------------------------------
PAGE_SIZE: Final = 100


def paginate(table: pl.DataFrame, key: str, *, size: int = PAGE_SIZE) -> pl.DataFrame:
    """One page of ``table`` with a page picker when it has more than ``size`` rows: only
    the page shown is sent to the browser."""
    pages = max(1, math.ceil(table.height / size))
    if pages == 1:
        st.session_state.pop(key, None)
        return table
    current = st.session_state.get(key)
    if not isinstance(current, int) or not 1 <= current <= pages:
        st.session_state[key] = 1
    left, right = st.columns([1, 4], vertical_alignment="center")
    page = int(left.number_input(f"Page (of {pages:,})", min_value=1, max_value=pages, step=1,
                                 key=key))
    start = (page - 1) * size
    end = min(start + size, table.height)
    right.caption(f"Rows {start + 1:,}–{end:,} of {table.height:,}")
    return table.slice(start, size)


# ---- downloads -------------------------------------------------------------------------
XLSX_MIME: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def export_frame(table: pl.DataFrame, labels: Mapping[str, str]) -> pl.DataFrame:
    """The table as shown: its columns in order, named by their labels."""
    return table.select([pl.col(c).alias(labels.get(c, c)) for c in table.columns])


def to_csv(frame: pl.DataFrame) -> bytes:
    return frame.write_csv().encode("utf-8")


def to_xlsx(frame: pl.DataFrame, *, money: Sequence[str] = (), currency: str | None = None,
            percent: Sequence[str] = ()) -> bytes:
    """An Excel workbook of ``frame``; money columns formatted with the currency, percent
    columns (values in percent) with a % sign."""
    symbol = SYMBOLS.get(currency or "", "")
    money_format = f'"{symbol}"#,##0.00' if symbol else (
        f'#,##0.00" {currency}"' if currency else "#,##0.00")
    formats: dict[str, str] = {c: money_format for c in money if c in frame.columns}
    formats |= {c: '0.0"%"' for c in percent if c in frame.columns}
    out = io.BytesIO()
    frame.write_excel(out, worksheet="FinOps", column_formats=formats or None, autofit=True,
                      freeze_panes=(1, 0))
    return out.getvalue()


def download_buttons(table: pl.DataFrame, labels: Mapping[str, str], name: str, key: str, *,
                     currency: str | None = None, money: Sequence[str] = (),
                     percent: Sequence[str] = ()) -> None:
    """CSV and Excel of exactly ``table`` (the rows and columns shown, with their labels),
    generated when clicked."""
    frame = export_frame(table, labels)
    money_labels = [labels.get(c, c) for c in money]
    percent_labels = [labels.get(c, c) for c in percent]
    file = safe_file_name(name)
    with st.container(horizontal=True, gap="small"):
        st.download_button("CSV", data=lambda: to_csv(frame), file_name=f"{file}.csv",
                           mime="text/csv", key=f"{key}.csv", on_click="ignore",
                           icon=":material/download:", help=f"{frame.height:,} rows as CSV")
        st.download_button("Excel", data=lambda: to_xlsx(frame, money=money_labels,
                                                          currency=currency, percent=percent_labels),
                           file_name=f"{file}.xlsx", mime=XLSX_MIME, key=f"{key}.xlsx",
                           on_click="ignore", icon=":material/table_view:",
                           help=f"{frame.height:,} rows as an Excel workbook")


def column_labels(config: Mapping[str, Any]) -> dict[str, str]:
    """Column name -> the label its column config shows."""
    out = {}
    for name, column in config.items():
        label = column.get("label") if isinstance(column, Mapping) else None
        out[name] = str(label) if label else name
    return out


# ---- charts: palette and axes ------------------------------------------------------
PALETTE: Final = ("#2f6fde", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
                  "#ff9da7", "#9c755f", "#4e79a7")
OTHER_COLOR: Final = "#c4c8cf"
FORECAST_COLOR: Final = "#7b4fd6"
BUDGET_COLOR: Final = "#d43f3a"


def money_axis(currency: str, title: str | None = None) -> dict[str, Any]:
    axis: dict[str, Any] = {"tickprefix": SYMBOLS.get(currency, ""), "tickformat": ",.0f",
                            "rangemode": "tozero", "automargin": True}
    if title:
        axis["title"] = {"text": title}
    return axis


def _layout(fig: go.Figure, *, height: int = 380, legend: bool = True) -> go.Figure:
    fig.update_layout(
        height=height, margin={"l": 8, "r": 8, "t": 24, "b": 8}, hovermode="x unified",
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
    )
    return fig


def top_keys(frame: pl.DataFrame, *, limit: int = 8) -> list[str | None]:
    """The ``limit`` largest keys of a ``key, cost`` frame (the rest become "Other")."""
    ranked = frame.group_by("key").agg(pl.col("cost").sum()).sort("cost", descending=True)
    return ranked["key"].head(limit).to_list()


def daily_stack_chart(daily: pl.DataFrame, currency: str, cost_label: str, *, limit: int = 8,
                      forecast: Mapping[str, Any] | None = None,
                      budget_per_day: Decimal | None = None) -> go.Figure:
    """Daily cost stacked by group (the ``limit`` largest, then Other); with a month-end
    ``forecast`` row: the average daily cost still expected and its 80% range on the days
    left; with ``budget_per_day``: the budget's daily pace."""
    rows = daily.filter(pl.col("currency") == currency)
    keep = top_keys(rows, limit=limit)
    named = rows.with_columns(
        pl.when(pl.col("key").is_in([k for k in keep if k is not None])).then(pl.col("key"))
        .when(pl.col("key").is_null() & pl.lit(None in keep)).then(pl.lit("(none)"))
        .otherwise(pl.lit("Other")).alias("key"))
    grouped = (named.group_by("day", "key").agg(pl.col("cost").sum().cast(pl.Float64))
               .sort("day"))
    fig = go.Figure()
    order = [("(none)" if k is None else k) for k in keep]
    if grouped.filter(pl.col("key") == "Other").height:
        order.append("Other")
    for i, key in enumerate(order):
        part = grouped.filter(pl.col("key") == key)
        color = (OTHER_COLOR if key == "Other" else UNALLOCATED_COLOR if key == UNALLOCATED
                 else PALETTE[i % len(PALETTE)])
        fig.add_bar(x=part["day"].to_list(), y=part["cost"].to_list(), name=chart_text(key),
                    marker_color=color,
                    hovertemplate=f"{chart_text(key)}: %{{y:,.2f}} {currency}<extra></extra>")
    if forecast is not None and forecast.get("days_left"):
        days = forecast["future_days"]
        left = Decimal(forecast["days_left"])
        mtd = forecast["actual_to_date"]
        point = float((forecast["forecast"] - mtd) / left)
        lower = float(max(forecast["lower_80"] - mtd, Decimal(0)) / left)
        upper = float(max(forecast["upper_80"] - mtd, Decimal(0)) / left)
        fig.add_scatter(x=days + days[::-1], y=[upper] * len(days) + [lower] * len(days),
                        fill="toself", fillcolor="rgba(123,79,214,0.15)", line={"width": 0},
                        name="Forecast, 80% range", hoverinfo="skip")
        fig.add_scatter(x=days, y=[point] * len(days), mode="lines",
                        line={"color": FORECAST_COLOR, "dash": "dash"},
                        name="Forecast per day left",
                        hovertemplate=f"forecast: %{{y:,.2f}} {currency}<extra></extra>")
    if budget_per_day is not None:
        fig.add_hline(y=float(budget_per_day), line={"color": BUDGET_COLOR, "dash": "dot"},
                      annotation_text="Budget pace", annotation_position="top left")
    fig.update_layout(barmode="stack", bargap=0.15,
                      yaxis=money_axis(currency, f"{cost_label} cost per day ({currency})"),
                      xaxis={"type": "date", "automargin": True})
    return _layout(fig, height=420)


def cumulative_chart(mtd: pl.DataFrame, currency: str, month_start: dt.date, month_end: dt.date,
                     forecast: Mapping[str, Any] | None, budget: Decimal | None) -> go.Figure:
    """Month to date, cumulative, and where the month will land: the forecast with its 80%
    and 95% ranges from the last complete day to month end, and the budget."""
    days = mtd["day"].to_list()
    running = mtd["cost"].cast(pl.Float64).cum_sum().to_list()
    fig = go.Figure()
    if forecast is not None:
        through = forecast["data_through"]
        start_value = float(forecast["actual_to_date"])
        for low, high, name, alpha in (("lower_95", "upper_95", "95% range", 0.12),
                                       ("lower_80", "upper_80", "80% range", 0.22)):
            fig.add_scatter(
                x=[through, month_end, month_end, through],
                y=[start_value, float(forecast[high]), float(forecast[low]), start_value],
                fill="toself", fillcolor=f"rgba(123,79,214,{alpha})", line={"width": 0},
                name=f"Forecast, {name}", hoverinfo="skip")
        fig.add_scatter(x=[through, month_end], y=[start_value, float(forecast["forecast"])],
                        mode="lines+markers", line={"color": FORECAST_COLOR, "dash": "dash"},
                        name="Forecast",
                        hovertemplate=f"%{{x|%d %b}}: %{{y:,.2f}} {currency}<extra>forecast</extra>")
    through = forecast["data_through"] if forecast is not None else None
    complete = [i for i, d in enumerate(days) if through is None or d <= through]
    recent = [i for i, d in enumerate(days) if through is not None and d >= through]
    fig.add_scatter(x=[days[i] for i in complete], y=[running[i] for i in complete], mode="lines",
                    line={"color": BAR_COLOR, "width": 3}, name="Month to date",
                    hovertemplate=f"%{{x|%d %b}}: %{{y:,.2f}} {currency}<extra>actual</extra>")
    if len(recent) > 1:
        fig.add_scatter(x=[days[i] for i in recent], y=[running[i] for i in recent],
                        mode="lines", line={"color": BAR_COLOR, "width": 2, "dash": "dot"},
                        name="Latest days (may be incomplete)",
                        hovertemplate=f"%{{x|%d %b}}: %{{y:,.2f}} {currency}<extra>so far</extra>")
    if budget is not None:
        fig.add_hline(y=float(budget), line={"color": BUDGET_COLOR, "dash": "dot"},
                      annotation_text=f"Budget {money(budget, currency)}",
                      annotation_position="top left")
    fig.update_layout(yaxis=money_axis(currency, f"Cumulative cost ({currency})"),
                      xaxis={"type": "date", "range": [month_start - dt.timedelta(hours=12),
                                                       month_end + dt.timedelta(hours=12)]})
    return _layout(fig, height=380)


def anomaly_chart(band: pl.DataFrame, start: dt.date, end: dt.date, currency: str,
                  threshold: float) -> go.Figure:
    """The series around an anomaly: actual cost, the model's expectation and the normal
    range outside which it alerts; the anomaly's days shaded."""
    lo, hi = start - dt.timedelta(days=60), end + dt.timedelta(days=14)
    part = band.filter(pl.col("day").is_between(lo, hi))
    days = part["day"].to_list()
    fig = go.Figure()
    fig.add_scatter(x=days + days[::-1],
                    y=part["upper"].to_list() + part["lower"].to_list()[::-1],
                    fill="toself", fillcolor="rgba(47,111,222,0.12)", line={"width": 0},
                    name=f"Normal range (±{threshold:g} σ)", hoverinfo="skip", connectgaps=False)
    fig.add_scatter(x=days, y=part["expected"].to_list(), mode="lines", name="Expected",
                    line={"color": "#5f6368", "dash": "dash"},
                    hovertemplate=f"expected: %{{y:,.2f}} {currency}<extra></extra>")
    fig.add_scatter(x=days, y=part["actual"].to_list(), mode="lines+markers", name="Actual",
                    line={"color": BAR_COLOR}, marker={"size": 4},
                    hovertemplate=f"actual: %{{y:,.2f}} {currency}<extra></extra>")
    fig.add_vrect(x0=start - dt.timedelta(hours=12), x1=end + dt.timedelta(hours=12),
                  fillcolor="rgba(217,48,37,0.12)", line_width=0,
                  annotation_text="Anomaly", annotation_position="top left")
    fig.update_layout(yaxis=money_axis(currency, f"Cost per day ({currency})"),
                      xaxis={"type": "date"})
    return _layout(fig, height=360)


def unit_cost_chart(by_tenant: pl.DataFrame, currency: str) -> go.Figure:
    """Cost per query by tenant, largest first, with the number of queries on hover."""
    rows = (by_tenant.filter((pl.col("currency") == currency) & pl.col("cost_per_query").is_not_null())
            .sort("cost_per_query", descending=True).head(20).reverse())
    names = [chart_text(n) for n in rows["tenant"].to_list()]
    values = rows["cost_per_query"].cast(pl.Float64).to_list()
    queries = rows["queries"].to_list()
    fig = go.Figure(go.Bar(
        x=values, y=names, orientation="h", marker_color=BAR_COLOR,
        text=[money(Decimal(str(v)), currency) for v in values], textposition="outside",
        cliponaxis=False, customdata=queries,
        hovertemplate="%{y}: %{x:,.4f} " + currency + " per query, %{customdata:,} queries"
                      "<extra></extra>"))
    fig.update_layout(height=max(220, 56 + 36 * len(names)),
                      margin={"l": 8, "r": 96, "t": 8, "b": 8}, showlegend=False,
                      xaxis={"title": {"text": f"Cost per query ({currency})"},
                             "tickprefix": SYMBOLS.get(currency, ""), "rangemode": "tozero"},
                      yaxis={"type": "category", "automargin": True}, bargap=0.3)
    return fig


def unit_trend_chart(daily: pl.DataFrame, currency: str) -> go.Figure:
    """Queries per day (bars) and cost per query (line, right axis)."""
    rows = daily.filter(pl.col("currency") == currency).sort("day")
    fig = go.Figure()
    fig.add_bar(x=rows["day"].to_list(), y=rows["queries"].to_list(), name="Queries",
                marker_color="#c9d7f5", hovertemplate="%{y:,} queries<extra></extra>")
    fig.add_scatter(x=rows["day"].to_list(), y=rows["cost_per_query"].cast(pl.Float64).to_list(),
                    mode="lines", name="Cost per query", yaxis="y2",
                    line={"color": BAR_COLOR, "width": 2},
                    hovertemplate=f"%{{y:,.4f}} {currency} per query<extra></extra>")
    fig.update_layout(
        yaxis={"title": {"text": "Queries per day"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": f"Cost per query ({currency})"}, "overlaying": "y",
                "side": "right", "tickprefix": SYMBOLS.get(currency, ""), "tickformat": ",.2f",
                "rangemode": "tozero", "showgrid": False},
        xaxis={"type": "date"})
    return _layout(fig, height=340)


SEVERITY_ORDER: Final = {"critical": 0, "high": 1, "medium": 2, "low": 3}
SEVERITY_LABELS: Final = {"critical": "Critical", "high": "High", "medium": "Medium", "low": "Low"}
LABEL_TEXT: Final = {"expected": "Expected", "planned": "Planned", "real": "Real"}
DIMENSION_LABELS: Final = {
    "total": "Total", "provider": "Provider", "service": "Service", "account": "Account",
    "tenant": "Tenant", "service_account": "Service × account", "team": "Team",
}
STATUS_TEXT: Final = {"new": "New", "accepted": "Accepted", "dismissed": "Dismissed", "done": "Done"}
KIND_TEXT: Final = {
    "rightsize_compute": "Right-size instance", "upsize_compute": "Upsize instance",
    "idle_instance": "Idle instance", "unattached_volume": "Unattached volume",
    "old_snapshot": "Old snapshot", "idle_load_balancer": "Idle load balancer",
    "unused_elastic_ip": "Unused elastic IP", "warehouse_size": "Warehouse size",
    "warehouse_auto_suspend": "Warehouse auto-suspend", "bigquery_pricing": "BigQuery pricing",
    "commitment_purchase": "Commitment purchase",
}


def kind_text(kind: str | None) -> str:
    return KIND_TEXT.get(kind or "", (kind or "").replace("_", " ").capitalize())


def causes_text(causes: Sequence[Mapping[str, Any]] | None, currency: str) -> str:
    """Root causes as one line: ``Service Amazon EC2 +$1,234.00 (82%); Account …``."""
    parts = []
    for cause in causes or []:
        dimension = DIMENSION_LABELS.get(str(cause.get("dimension")), str(cause.get("dimension")))
        share = cause.get("share")
        parts.append(f"{dimension} {cause.get('value')} "
                     f"{money(cause.get('contribution'), currency, signed=True)}"
                     + (f" ({share:.0%})" if isinstance(share, float) else ""))
    return "; ".join(parts)


# ---- drill down ------------------------------------------------------------------------
def sorted_keys(table: pl.DataFrame, key: str, currency: str) -> list[Any]:
    """The raw key values of :func:`comparison_table`'s rows, in its order (nulls kept)."""
    return (table.filter(pl.col("currency") == currency)
            .sort("cost", key, descending=[True, False], nulls_last=True)[key].to_list())


def drill_table(level: pl.DataFrame, key: str) -> pl.DataFrame:
    return level.select(pl.col(key).fill_null("(none)"), _cents_float("cost"))


def drill_columns(key: str, key_label: str, currency: str, label: str) -> dict[str, Any]:
    return {key: st.column_config.TextColumn(key_label), "cost": money_column(label, currency)}


def resources_table(found: pl.DataFrame) -> pl.DataFrame:
    return found.select("resource", "name", _cents_float("cost"), "rows", "methods", "rules")


def resources_columns(currency: str, label: str) -> dict[str, Any]:
    return {
        "resource": st.column_config.TextColumn("Resource", width="large"),
        "name": st.column_config.TextColumn("Name"),
        "cost": money_column(label, currency),
        "rows": st.column_config.NumberColumn("Line items", format="localized"),
        "methods": st.column_config.TextColumn(
            "Allocation method", help="x_AllocationMethod: tag, rule, shared, usage or "
            "unallocated"),
        "rules": st.column_config.TextColumn(
            "Allocation rule", help="x_AllocationRule: the tag key, rule or pool that placed the "
            "cost (finops explain --rule ID)"),
    }


def lines_table(lines: pl.DataFrame) -> pl.DataFrame:
    money_cols = [c for c in ("BilledCost", "EffectiveCost") if c in lines.columns]
    out = lines.with_columns(*[_cents_float(c) for c in money_cols])
    if "ChargePeriodStart" in out.columns:
        out = out.with_columns(pl.col("ChargePeriodStart").dt.strftime("%Y-%m-%d %H:%M"))
    return out.drop([c for c in ("BillingCurrency",) if c in out.columns])


def lines_columns(currency: str) -> dict[str, Any]:
    return {
        "ChargePeriodStart": st.column_config.TextColumn("Charged (UTC)"),
        "ChargeCategory": st.column_config.TextColumn("Category"),
        "ChargeDescription": st.column_config.TextColumn("Description", width="large"),
        "SkuId": st.column_config.TextColumn("SKU"),
        "ConsumedQuantity": st.column_config.NumberColumn("Quantity", format="localized"),
        "ConsumedUnit": st.column_config.TextColumn("Unit"),
        "BilledCost": money_column("Billed", currency),
        "EffectiveCost": money_column("Effective", currency),
        "x_Tenant": st.column_config.TextColumn("Tenant"),
        "x_AllocationMethod": st.column_config.TextColumn("Method"),
        "x_AllocationRule": st.column_config.TextColumn("Rule"),
        "x_AllocationShare": st.column_config.NumberColumn(
            "Share", format="%.4f", help="The share of the billing row placed here (1: all of it)"),
        "x_SourceFile": st.column_config.TextColumn("Source file"),
        "x_SourceRow": st.column_config.NumberColumn("Source row", format="plain"),
    }


def crumb(label: str, value: object) -> str:
    """``Tenant: acme`` for a breadcrumb (shown with ``st.text``: plain text)."""
    return f"{label}: {value if value is not None else '(none)'}"


# ---- forecasts -------------------------------------------------------------------------
BUDGET_STATUS: Final = {"on_track": "On track", "at_risk": "At risk", "over": "Over",
                        "exceeded": "Exceeded"}


def forecast_table(forecasts: pl.DataFrame) -> pl.DataFrame:
    money_cols = ["actual_to_date", "forecast", "lower_80", "upper_80", "lower_95", "upper_95",
                  "budget"]
    order = {"total": 0, "team": 1, "tenant": 2, "service": 3}
    return (
        forecasts.with_columns(
            pl.col("dimension").replace_strict(order, default=9, return_dtype=pl.Int64).alias("__o"),
            pl.when(pl.col("horizon") == "next_month").then(None).otherwise(pl.col("actual_to_date"))
            .alias("actual_to_date"))
        .sort("__o", "horizon", "forecast", descending=[False, False, True])
        .select(
            pl.col("dimension").replace_strict(DIMENSION_LABELS, default=pl.col("dimension"),
                                               return_dtype=pl.String),
            pl.when(pl.col("dimension") == "total").then(pl.lit("All"))
            .otherwise(pl.col("dimension_value")).alias("dimension_value"),
            pl.col("period").map_batches(
                lambda s: pl.Series([month_label(p, short=True) if p else None for p in s.to_list()],
                                    dtype=pl.String), return_dtype=pl.String),
            *[_cents_float(c) for c in money_cols],
            pl.col("budget_status").replace_strict(BUDGET_STATUS, default=pl.col("budget_status"),
                                                   return_dtype=pl.String),
            "model",
        )
    )


def forecast_columns(currency: str) -> dict[str, Any]:
    return {
        "dimension": st.column_config.TextColumn("Level"),
        "dimension_value": st.column_config.TextColumn("Series"),
        "period": st.column_config.TextColumn("Month"),
        "actual_to_date": money_column("Actual to date", currency),
        "forecast": money_column("Forecast", currency),
        "lower_80": money_column("80% low", currency),
        "upper_80": money_column("80% high", currency),
        "lower_95": money_column("95% low", currency),
        "upper_95": money_column("95% high", currency),
        "budget": money_column("Budget", currency),
        "budget_status": st.column_config.TextColumn("Against budget"),
        "model": st.column_config.TextColumn("Model"),
    }


# ---- anomalies -------------------------------------------------------------------------
def main_currency(frame: pl.DataFrame, column: str = "currency", amount: str = "impact") -> str:
    """The currency with the largest absolute amount in ``frame`` (USD when empty)."""
    if frame.is_empty() or column not in frame.columns:
        return "USD"
    ranked = (frame.group_by(column).agg(pl.col(amount).abs().sum().alias("__a"))
              .sort("__a", column, descending=[True, False]))
    return str(ranked[column][0] or "USD")


def filter_anomalies(events: pl.DataFrame, status: str, severities: Sequence[str]) -> pl.DataFrame:
    """``open``: no feedback or confirmed real; a label: those so labelled; ``all``."""
    label = pl.col("label")
    keep = {"open": label.is_null() | (label == "real"), "all": pl.lit(True)}.get(status, label == status)
    return (events.filter(keep.fill_null(False) & pl.col("severity").is_in(list(severities)))
            .with_columns(pl.col("severity").replace_strict(SEVERITY_ORDER, default=9,
                                                            return_dtype=pl.Int64).alias("__rank"))
            .sort("__rank", "impact", "start_date", descending=[False, True, True])
            .drop("__rank"))


def anomaly_title(event: Mapping[str, Any]) -> str:
    """One line naming an anomaly (plain text, for a select box)."""
    currency = event.get("currency") or "USD"
    dimension = DIMENSION_LABELS.get(event["dimension"], event["dimension"])
    return (f"{SEVERITY_LABELS.get(event['severity'], event['severity'])} · "
            f"{event['start_date']:%-d %b}–{event['end_date']:%-d %b %Y} · {dimension} "
            f"{event['dimension_value']} · {money(event['impact'], currency, signed=True)}")


def anomalies_table(events: pl.DataFrame) -> pl.DataFrame:
    rows = list(events.select("root_causes", "currency", "impact", "actual_cost",
                              "expected_cost").iter_rows(named=True))
    causes = [causes_text(r["root_causes"], r["currency"] or "USD") for r in rows]

    def amounts(column: str, *, signed: bool = False) -> pl.Series:
        return pl.Series(f"__{column.split('_', maxsplit=1)[0]}",
                         [money(r[column], r["currency"] or "USD", signed=signed) for r in rows],
                         pl.String)

    return events.with_columns(
        pl.Series("__causes", causes, pl.String), amounts("impact", signed=True),
        amounts("actual_cost"), amounts("expected_cost")).select(
        pl.col("severity").replace_strict(SEVERITY_LABELS, default=pl.col("severity"),
                                          return_dtype=pl.String),
        "start_date", "end_date",
        pl.col("dimension").replace_strict(DIMENSION_LABELS, default=pl.col("dimension"),
                                           return_dtype=pl.String),
        "dimension_value",
        pl.col("__impact").alias("impact"),
        (pl.col("impact_pct") * 100).alias("impact_pct"),
        pl.col("__actual").alias("actual_cost"), pl.col("__expected").alias("expected_cost"),
        pl.col("__causes").alias("root_causes"),
        "currency",
        pl.col("label").replace_strict(LABEL_TEXT, default=None, return_dtype=pl.String),
        "anomaly_id",
    )


def anomalies_columns() -> dict[str, Any]:
    return {
        "severity": st.column_config.TextColumn("Severity"),
        "start_date": st.column_config.DateColumn("From", format="D MMM YYYY"),
        "end_date": st.column_config.DateColumn("To", format="D MMM YYYY"),
        "dimension": st.column_config.TextColumn("Level"),
        "dimension_value": st.column_config.TextColumn("Series", width="medium"),
        "impact": st.column_config.TextColumn("Impact", alignment="right",
                                              help="Actual minus expected cost over its days"),
        "impact_pct": st.column_config.NumberColumn("Impact %", format="%+.0f%%"),
        "actual_cost": st.column_config.TextColumn("Actual", alignment="right"),
        "expected_cost": st.column_config.TextColumn("Expected", alignment="right"),
        "root_causes": st.column_config.TextColumn("Root causes", width="large"),
        "currency": st.column_config.TextColumn("Currency"),
        "label": st.column_config.TextColumn("Feedback"),
        "anomaly_id": st.column_config.TextColumn("Id"),
    }


def causes_table(causes: Sequence[Mapping[str, Any]] | None) -> pl.DataFrame:
    rows = [{"dimension": DIMENSION_LABELS.get(str(c.get("dimension")), str(c.get("dimension"))),
             "value": c.get("value"),
             "contribution": float(cents(c.get("contribution"))),
             "share": float(c["share"]) * 100 if c.get("share") is not None else None}
            for c in causes or []]
    return pl.DataFrame(rows, schema={"dimension": pl.String, "value": pl.String,
                                      "contribution": pl.Float64, "share": pl.Float64})


def causes_columns(currency: str) -> dict[str, Any]:
    return {
        "dimension": st.column_config.TextColumn("By", width="small"),
        "value": st.column_config.TextColumn("What"),
        "contribution": st.column_config.NumberColumn(
            "Moved", format=money_column_format(currency), width="small",
            help="How much of the impact this explains"),
        "share": st.column_config.ProgressColumn("Share", format="%.0f%%", min_value=0,
                                                 max_value=100, width="small"),
    }


# ---- recommendations -------------------------------------------------------------------
def _has(value: str | None, wanted: str) -> bool:
    return bool(value) and wanted in str(value).split(", ")


def filter_recommendations(recs: pl.DataFrame, kinds: Sequence[str], statuses: Sequence[str],
                           account: str | None, tenant: str | None) -> pl.DataFrame:
    out = recs
    if kinds:
        out = out.filter(pl.col("kind").is_in(list(kinds)))
    if statuses:
        out = out.filter(pl.col("status").is_in(list(statuses)))
    if account:
        out = out.filter(pl.col("account").fill_null("").str.split(", ").list.contains(account))
    if tenant:
        out = out.filter(pl.col("tenant").fill_null("").str.split(", ").list.contains(tenant))
    return out


def sort_recommendations(recs: pl.DataFrame, order: str) -> pl.DataFrame:
    if order == "savings_asc":
        return recs.sort("monthly_savings", "recommendation_id", nulls_last=True)
    if order == "confidence":
        return recs.sort("confidence", "monthly_savings", descending=True, nulls_last=True)
    return recs.sort("monthly_savings", "recommendation_id", descending=[True, False],
                     nulls_last=True)


def recommendation_title(rec: Mapping[str, Any]) -> str:
    currency = rec.get("currency") or "USD"
    return (f"{money(rec['monthly_savings'], currency)}/month · {kind_text(rec['kind'])} · "
            f"{rec['resource_id']} · {STATUS_TEXT.get(rec['status'], rec['status'])}")


def single_currency(frame: pl.DataFrame) -> bool:
    return frame["currency"].drop_nulls().n_unique() <= 1


def recommendations_table(recs: pl.DataFrame) -> pl.DataFrame:
    """For display; savings as numbers in one currency, or as text with each row's own
    currency when the rows have several (amounts of two currencies never share a format)."""
    savings = (_cents_float("monthly_savings") if single_currency(recs) else pl.Series(
        "monthly_savings", [money(v, c or "USD") for v, c in
                            zip(recs["monthly_savings"], recs["currency"], strict=True)],
        pl.String))
    return recs.select(
        savings,
        pl.col("kind").replace_strict(KIND_TEXT, default=pl.col("kind"), return_dtype=pl.String),
        "resource_id", "current", "recommended",
        (pl.col("confidence") * 100).alias("confidence"),
        pl.col("status").replace_strict(STATUS_TEXT, default=pl.col("status"),
                                        return_dtype=pl.String),
        "decided_by",
        pl.col("decided_at").map_batches(
            lambda s: pl.Series([timestamp_label(v) if v else None for v in s.to_list()],
                                dtype=pl.String), return_dtype=pl.String),
        "comment", "tenant", "account", "summary", "currency", "recommendation_id",
    )


def recommendations_columns(currency: str, *, mixed: bool = False) -> dict[str, Any]:
    return {
        "monthly_savings": (st.column_config.TextColumn("Savings a month", alignment="right")
                            if mixed else money_column("Savings a month", currency)),
        "kind": st.column_config.TextColumn("Kind"),
        "resource_id": st.column_config.TextColumn("Resource", width="medium"),
        "current": st.column_config.TextColumn("Now"),
        "recommended": st.column_config.TextColumn("Recommended"),
        "confidence": st.column_config.ProgressColumn("Confidence", format="%.0f%%",
                                                      min_value=0, max_value=100),
        "status": st.column_config.TextColumn("Status"),
        "decided_by": st.column_config.TextColumn("Decided by"),
        "decided_at": st.column_config.TextColumn("Decided"),
        "comment": st.column_config.TextColumn("Comment"),
        "tenant": st.column_config.TextColumn("Tenant"),
        "account": st.column_config.TextColumn("Account"),
        "summary": st.column_config.TextColumn("Evidence", width="large"),
        "currency": st.column_config.TextColumn("Currency"),
        "recommendation_id": st.column_config.TextColumn("Id"),
    }


def history_table(history: Sequence[Mapping[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"decided_at": timestamp_label(h.get("decided_at")),
          "status": STATUS_TEXT.get(str(h.get("status")), str(h.get("status"))),
          "who": h.get("who"), "comment": h.get("comment")} for h in reversed(history)],
        schema={"decided_at": pl.String, "status": pl.String, "who": pl.String,
                "comment": pl.String})


HISTORY_COLUMNS: Final = {
    "decided_at": st.column_config.TextColumn("When"),
    "status": st.column_config.TextColumn("Decision"),
    "who": st.column_config.TextColumn("Who"),
    "comment": st.column_config.TextColumn("Comment", width="medium"),
}


# ---- unit economics --------------------------------------------------------------------
def unit_money(value: Decimal | float | None, currency: str) -> str:
    """A unit cost: to the cent from one unit of money up, else to four decimals."""
    if value is None:
        return MISSING
    amount = Decimal(str(value))
    if abs(amount) >= 1:
        return money(amount, currency)
    symbol = SYMBOLS.get(currency)
    text = f"{abs(amount):,.4f}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def unit_table(frame: pl.DataFrame, key: str, currency: str) -> pl.DataFrame:
    return frame.filter(pl.col("currency") == currency).select(
        pl.col(key).fill_null("(none)"), "queries", pl.col("tb_scanned").round(3),
        _cents_float("cost"), pl.col("cost_per_query").cast(pl.Float64).round(4),
        pl.col("cost_per_tb").cast(pl.Float64).round(2), (pl.col("share") * 100).alias("share"))


def unit_columns(key: str, label: str, currency: str) -> dict[str, Any]:
    symbol = SYMBOLS.get(currency, "")
    return {
        key: st.column_config.TextColumn(label),
        "queries": st.column_config.NumberColumn("Queries", format="localized"),
        "tb_scanned": st.column_config.NumberColumn("TB scanned", format="%,.3f"),
        "cost": money_column("Cost", currency),
        "cost_per_query": st.column_config.NumberColumn("Per query", format=f"{symbol}%,.4f"),
        "cost_per_tb": st.column_config.NumberColumn("Per TB", format=f"{symbol}%,.2f"),
        "share": st.column_config.ProgressColumn("Share of cost", format="%.1f%%", min_value=0,
                                                 max_value=100),
    }


def top_queries_table(frame: pl.DataFrame, currency: str) -> pl.DataFrame:
    return frame.filter(pl.col("currency") == currency).select(
        "query_id", "day", "warehouse", "user_name", "tenant", _cents_float("cost"),
        (pl.col("execution_ms") / 1000).round(1).alias("seconds"),
        pl.col("tb_scanned").round(4), "execution_status", "query_hash")


def top_queries_columns(currency: str) -> dict[str, Any]:
    return {
        "query_id": st.column_config.TextColumn("Query id"),
        "day": st.column_config.DateColumn("Day", format="D MMM YYYY"),
        "warehouse": st.column_config.TextColumn("Warehouse"),
        "user_name": st.column_config.TextColumn("User"),
        "tenant": st.column_config.TextColumn("Tenant"),
        "cost": money_column("Cost", currency),
        "seconds": st.column_config.NumberColumn("Run time (s)", format="%,.1f"),
        "tb_scanned": st.column_config.NumberColumn("TB scanned", format="%,.4f"),
        "execution_status": st.column_config.TextColumn("Status"),
        "query_hash": st.column_config.TextColumn("Query hash"),
    }


def recurring_table(frame: pl.DataFrame, currency: str) -> pl.DataFrame:
    return frame.filter(pl.col("currency") == currency).select(
        "query_hash", "runs", _cents_float("cost"), pl.col("cost_per_run").round(4),
        pl.col("tb_scanned").round(3), "warehouse", "tenant", "users", "last_day")


def recurring_columns(currency: str) -> dict[str, Any]:
    symbol = SYMBOLS.get(currency, "")
    return {
        "query_hash": st.column_config.TextColumn("Query hash"),
        "runs": st.column_config.NumberColumn("Runs", format="localized"),
        "cost": money_column("Cost", currency),
        "cost_per_run": st.column_config.NumberColumn("Per run", format=f"{symbol}%,.4f"),
        "tb_scanned": st.column_config.NumberColumn("TB scanned", format="%,.3f"),
        "warehouse": st.column_config.TextColumn("Mostly on"),
        "tenant": st.column_config.TextColumn("Mostly for"),
        "users": st.column_config.NumberColumn("Users", format="localized"),
        "last_day": st.column_config.DateColumn("Last run", format="D MMM YYYY"),
    }


# ---- data health -----------------------------------------------------------------------
def reconciliation_table(recon: Sequence[Any]) -> pl.DataFrame:
    rows = []
    for r in recon:
        diff = (r.collected_billed - r.allocated_billed) if r.allocated_billed is not None else None
        rows.append({
            "period": r.period, "currency": r.currency,
            "collected_billed": money(r.collected_billed, r.currency),
            "allocated_billed": money(r.allocated_billed, r.currency)
            if r.allocated_billed is not None else None,
            "collected_effective": money(r.collected_effective, r.currency),
            "allocated_effective": money(r.allocated_effective, r.currency)
            if r.allocated_effective is not None else None,
            "difference": money(diff, r.currency, signed=True) if diff is not None else None,
            "status": {True: "Reconciled", False: "Does not reconcile", None: "Not allocated"}[r.ok],
        })
    names = ("period", "currency", "collected_billed", "allocated_billed", "collected_effective",
             "allocated_effective", "difference", "status")
    return pl.DataFrame(rows, schema=dict.fromkeys(names, pl.String))


RECONCILIATION_COLUMNS: Final = {
    "period": st.column_config.TextColumn("Month"),
    "currency": st.column_config.TextColumn("Currency"),
    "collected_billed": st.column_config.TextColumn("Collected billed", alignment="right"),
    "allocated_billed": st.column_config.TextColumn("Allocated billed", alignment="right"),
    "collected_effective": st.column_config.TextColumn("Collected effective", alignment="right"),
    "allocated_effective": st.column_config.TextColumn("Allocated effective", alignment="right"),
    "difference": st.column_config.TextColumn("Billed difference", alignment="right"),
    "status": st.column_config.TextColumn("Status"),
}


def coverage_table(coverage: pl.DataFrame) -> pl.DataFrame:
    """Every tag key and currency: share of cost tagged, and the tagged cost as text in its
    currency."""
    texts = [money(Decimal(str(round(v, 2))), c) for v, c in
             zip(coverage["tagged_cost"], coverage["currency"], strict=True)]
    return coverage.with_columns(pl.Series("__cost", texts, pl.String)).select(
        "key", "currency", (pl.col("share") * 100).alias("share"),
        pl.col("__cost").alias("tagged_cost"), "rows")


COVERAGE_COLUMNS: Final = {
    "key": st.column_config.TextColumn("Tag key"),
    "currency": st.column_config.TextColumn("Currency"),
    "share": st.column_config.ProgressColumn("Share of cost tagged", format="%.1f%%",
                                             min_value=0, max_value=100),
    "tagged_cost": st.column_config.TextColumn("Tagged cost", alignment="right"),
    "rows": st.column_config.NumberColumn("Line items", format="localized"),
}


METHOD_TEXT: Final = {"tag": "Tag", "rule": "Rule", "shared": "Shared pool",
                      "usage": "Usage share", UNALLOCATED: "Unallocated"}


def methods_table(methods: pl.DataFrame) -> pl.DataFrame:
    return methods.select(
        pl.col("method").replace_strict(METHOD_TEXT, default=pl.col("method"),
                                        return_dtype=pl.String),
        pl.col("BillingCurrency").alias("currency"),
        (pl.col("share") * 100).alias("share"),
    ).sort("currency", "share", descending=[False, True])


METHODS_COLUMNS: Final = {
    "method": st.column_config.TextColumn("Method"),
    "currency": st.column_config.TextColumn("Currency"),
    "share": st.column_config.ProgressColumn("Share of cost", format="%.1f%%", min_value=0,
                                             max_value=100),
}


def validation_table(issues: pl.DataFrame) -> pl.DataFrame:
    return issues.select("source", "period", "column", "detail", "rows", "checked_rows", "rule")


VALIDATION_COLUMNS: Final = {
    "source": st.column_config.TextColumn("Source"),
    "period": st.column_config.TextColumn("Month"),
    "column": st.column_config.TextColumn("Column"),
    "detail": st.column_config.TextColumn("Rule", width="medium"),
    "rows": st.column_config.NumberColumn("Rows", format="localized"),
    "checked_rows": st.column_config.NumberColumn("Rows checked", format="localized"),
    "rule": st.column_config.TextColumn("Rule id"),
}

REJECTED_SUMMARY_COLUMNS: Final = {
    "source": st.column_config.TextColumn("Source"),
    "reason": st.column_config.TextColumn("Reason", width="medium"),
    "rows": st.column_config.NumberColumn("Rows", format="localized"),
}


def rejected_table(sample: pl.DataFrame) -> pl.DataFrame:
    out = sample
    if "ChargePeriodStart" in out.columns:
        out = out.with_columns(pl.col("ChargePeriodStart").dt.strftime("%Y-%m-%d %H:%M"))
    if "BilledCost" in out.columns:
        out = out.with_columns(pl.col("BilledCost").cast(pl.String))
    return out


REJECTED_COLUMNS: Final = {
    "source": st.column_config.TextColumn("Source"),
    "run": st.column_config.TextColumn("Run"),
    "x_SourceFile": st.column_config.TextColumn("File"),
    "x_SourceRow": st.column_config.NumberColumn("Row", format="plain"),
    "x_RejectReason": st.column_config.TextColumn("Reason", width="large"),
    "BilledCost": st.column_config.TextColumn("Billed cost"),
    "BillingCurrency": st.column_config.TextColumn("Currency"),
    "ChargePeriodStart": st.column_config.TextColumn("Charged (UTC)"),
    "ServiceName": st.column_config.TextColumn("Service"),
    "ResourceId": st.column_config.TextColumn("Resource"),
}


T = TypeVar("T")


def or_warn(read: Callable[[], T]) -> T | None:
    """``read()``, or None after showing why it cannot be read (say, billing collected
    again and not yet allocated) as a warning with what to do."""
    try:
        return read()
    except FinopsError as exc:
        st.warning(exc.message + (f"\n\n{exc.hint}" if exc.hint else ""), icon=":material/warning:")
        return None


def or_stop(read: Callable[[], T]) -> T:
    """``read()``, or its warning (:func:`or_warn`), the page ending there."""
    value = or_warn(read)
    if value is None:
        st.stop()
        raise AssertionError("st.stop() returned")
    return value
