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
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

import plotly.graph_objects as go
import polars as pl
import streamlit as st

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
    """One currency's rows of a comparison (``models.showback.compare``), for display."""
    return (
        table.filter(pl.col("currency") == currency)
        .sort("cost", key, descending=[True, False], nulls_last=True)
        .select(
            pl.col(key).fill_null("(none)"),
            _cents_float("cost"),
            _cents_float("previous_cost"),
            # The change shown is the difference of the amounts shown, so each row adds up.
            (_cents("cost") - _cents("previous_cost")).cast(pl.Float64).alias("change"),
            (pl.col("change_pct") * 100).alias("change_pct"),  # in percent
        )
    )


def comparison_columns(key: str, key_label: str, currency: str, period: str,
                       previous: str) -> dict[str, Any]:
    return {
        key: st.column_config.TextColumn(key_label),
        "cost": money_column(month_label(period), currency),
        "previous_cost": money_column(month_label(previous), currency),
        "change": money_column("Change", currency, help=f"{month_label(period)} minus "
                               f"{month_label(previous)}"),
        "change_pct": st.column_config.NumberColumn(
            "Change %", format="%+.1f%%", help=f"{MISSING} when the previous month was zero."),
    }


def unallocated_table(top: pl.DataFrame, currency: str) -> pl.DataFrame:
    return (
        top.filter(pl.col("BillingCurrency") == currency)
        .select("ResourceId", "ServiceName", "ProviderName", _cents_float("cost"))
        .with_columns(pl.col("ResourceId").fill_null("(no resource id)"))
    )


def unallocated_columns(currency: str, period: str) -> dict[str, Any]:
    return {
        "ResourceId": st.column_config.TextColumn("Resource", width="large"),
        "ServiceName": st.column_config.TextColumn("Service"),
        "ProviderName": st.column_config.TextColumn("Provider"),
        "cost": money_column(month_label(period), currency),
    }


# ---- charts --------------------------------------------------------------------------
def tenant_bar_chart(table: pl.DataFrame, currency: str, cost_label: str) -> go.Figure:
    """Cost by tenant, largest on top; the unallocated bar in grey so it is seen, not hidden."""
    rows = comparison_table(table, "tenant", currency).filter(pl.col("cost") != 0).reverse()
    names = rows["tenant"].to_list()
    exact = {r["tenant"]: r["cost"] for r in
             table.filter(pl.col("currency") == currency).iter_rows(named=True)}
    labels = [money(exact.get(n), currency) for n in names]
    fig = go.Figure(
        go.Bar(
            x=rows["cost"].to_list(),
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
        height=max(220, 56 + 44 * len(names)),
        margin={"l": 8, "r": 96, "t": 8, "b": 8},
        xaxis={"title": {"text": f"{cost_label} cost ({currency})"},
               "tickprefix": SYMBOLS.get(currency, ""), "tickformat": ",.0f",
               "rangemode": "tozero", "automargin": True},
        yaxis={"type": "category", "automargin": True},
        showlegend=False,
        bargap=0.3,
    )
    return fig


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
