"""A small allocated warehouse for the app tests, built the way the pipeline builds one.

Billing rows are written straight into the ``billing`` dataset (FOCUS columns through
``ensure_focus_columns``) and allocated by ``models.allocation.allocate``, so the app reads
exactly what ``finops collect`` + ``finops allocate`` would leave behind. Tests compute the
figures they expect from ``LINES`` themselves, never through the app or the models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from finops.focus import MONEY, TAGS, TIMESTAMP
from finops.ingest import BILLING, PERIOD, ensure_focus_columns
from finops.state import PeriodTotal, State, open_state
from finops.warehouse import Warehouse
from models.allocation import allocate

APP_MAIN = Path(__file__).resolve().parents[2] / "app" / "main.py"
SOURCE = "t"
XSS = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Line:
    period: str
    day: int
    billed: str
    effective: str
    tenant: str | None  # the value of the `tenant` tag; None for an untagged row
    service: str
    resource: str
    currency: str = "USD"


LINES: tuple[Line, ...] = (
    # March 2026
    Line("2026-03", 2, "1200.50", "1100.25", "acme", "Amazon EC2", "i-acme-1"),
    Line("2026-03", 3, "300.333333", "300.333333", "acme", "Amazon S3", "bucket-acme"),
    Line("2026-03", 5, "845.10", "845.10", "globex", "Amazon RDS", "db-globex"),
    Line("2026-03", 7, "99.99", "120.00", XSS, "Amazon EC2", "i-x-1"),
    Line("2026-03", 9, "45.67", "45.67", None, "AWS Support", "support"),
    # April 2026: acme grows, globex shrinks, initech is new, more untagged cost
    Line("2026-04", 1, "1500.75", "1350.10", "acme", "Amazon EC2", "i-acme-1"),
    Line("2026-04", 2, "410.126", "410.126", "acme", "Amazon S3", "bucket-acme"),
    Line("2026-04", 4, "600.00", "600.00", "globex", "Amazon RDS", "db-globex"),
    Line("2026-04", 6, "250.404", "255.404", "initech", "Amazon EC2", "i-initech-1"),
    Line("2026-04", 8, "150.00", "175.00", XSS, "Amazon EC2", "i-x-1"),
    Line("2026-04", 10, "88.88", "88.88", None, "Amazon EBS", "vol-0abc"),
    Line("2026-04", 11, "12.345", "12.345", None, "AWS Support", "support"),
    Line("2026-04", 12, "-20.00", "-20.00", "globex", "Amazon RDS", "db-globex"),
)
PERIODS = ("2026-03", "2026-04")


def expected_total(period: str, cost: str, *, lines: Iterable[Line] = LINES,
                   currency: str = "USD") -> Decimal:
    """The exact sum of ``cost`` ("billed" or "effective") over the lines of one month."""
    return sum(
        (Decimal(getattr(x, cost)) for x in lines if x.period == period and x.currency == currency),
        Decimal(0),
    )


def dollars(value: Decimal) -> str:
    """``$1,234.57``: written here independently of the app's own formatting."""
    q = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return f"-${-q:,.2f}" if q < 0 else f"${q:,.2f}"


def _month_bounds(period: str) -> tuple[dt.datetime, dt.datetime]:
    year, month = (int(p) for p in period.split("-"))
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=dt.UTC)
    return start, end


def billing_frame(lines: Sequence[Line]) -> pl.LazyFrame:
    rows = []
    for n, x in enumerate(lines):
        start, end = _month_bounds(x.period)
        day = start.replace(day=x.day)
        rows.append({
            "BilledCost": Decimal(x.billed), "EffectiveCost": Decimal(x.effective),
            "ListCost": Decimal(x.billed), "ContractedCost": Decimal(x.billed),
            "BillingAccountId": "000111222333", "BillingAccountName": "Payer",
            "BillingCurrency": x.currency, "BillingPeriodStart": start, "BillingPeriodEnd": end,
            "ChargePeriodStart": day, "ChargePeriodEnd": day + dt.timedelta(days=1),
            "ChargeCategory": "Usage" if Decimal(x.billed) >= 0 else "Credit",
            "ChargeFrequency": "Usage-Based", "ProviderName": "AWS", "PublisherName": "AWS",
            "InvoiceIssuerName": "AWS", "RegionId": "us-east-1", "ResourceId": x.resource,
            "ServiceName": x.service, "ServiceCategory": "Compute",
            "SubAccountId": "000111222333", "SubAccountName": "prod",
            "Tags": {"tenant": x.tenant, "team": "platform"} if x.tenant is not None
            else {"team": "platform"},
            "x_SourceFile": "fixture", "x_SourceRow": n + 1,
        })
    schema = {"BilledCost": MONEY, "EffectiveCost": MONEY, "ListCost": MONEY,
              "ContractedCost": MONEY, "BillingPeriodStart": TIMESTAMP,
              "BillingPeriodEnd": TIMESTAMP, "ChargePeriodStart": TIMESTAMP,
              "ChargePeriodEnd": TIMESTAMP, "Tags": TAGS}
    return ensure_focus_columns(pl.DataFrame(rows, schema_overrides=schema).lazy())


def build_warehouse(home: Path, lines: Sequence[Line] = LINES) -> str:
    """Write ``lines`` as billing partitions and allocate them; returns the allocate run id."""
    wh = Warehouse(home)
    state = open_state(home)
    try:
        periods = sorted({x.period for x in lines})
        run_id = state.start_run("collect", SOURCE, ["fixture"])
        totals = []
        for period in periods:
            part = [x for x in lines if x.period == period]
            frame = billing_frame(part).with_columns(pl.lit(period).alias(PERIOD))
            write = wh.replace_partition(BILLING, {"source": SOURCE, PERIOD: period}, frame,
                                         run_id=run_id)
            for cur in sorted({x.currency for x in part}):
                totals.append(PeriodTotal(
                    period, cur, sum(1 for x in part if x.currency == cur),
                    expected_total(period, "billed", lines=part, currency=cur),
                    expected_total(period, "effective", lines=part, currency=cur),
                    checksum=write.checksum,
                ))
        state.finish_run(run_id, status="succeeded", rows_in=len(lines), rows_out=len(lines),
                         rows_rejected=0, totals=totals)
        wh.drop_staging(run_id)
        return allocate(wh, state).run_id
    finally:
        state.close()


@pytest.fixture(autouse=True)
def _loopback_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest runs as ``finops app`` serves: bound to 127.0.0.1, where the local developer
    may use the app without sign-in (dev mode). Tests of sign-in change it."""
    bind_to(monkeypatch, "127.0.0.1")


def bind_to(monkeypatch: pytest.MonkeyPatch, address: str | None) -> None:
    """Make ``st.get_option("server.address")`` say ``address`` (None: every interface)."""
    import streamlit as st

    real = getattr(st.get_option, "__wrapped__", st.get_option)

    def get_option(key: str) -> Any:
        return address if key == "server.address" else real(key)

    get_option.__wrapped__ = real  # type: ignore[attr-defined]
    monkeypatch.setattr(st, "get_option", get_option)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    home = tmp_path / "warehouse"
    build_warehouse(home)
    return home


@pytest.fixture
def empty_home(tmp_path: Path) -> Path:
    home = tmp_path / "empty"
    home.mkdir()
    return home


def runs_of(home: Path) -> list[dict[str, object]]:
    state = State(home / "state.db")
    try:
        return state.runs()
    finally:
        state.close()
