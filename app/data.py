"""Data for the pages: calls into ``models/`` and ``state.db``, cached per warehouse state.

Every cached function takes the warehouse path and the id of the latest successful run
(:meth:`finops.state.State.latest_run_id`) as its first two arguments, so the cache is
keyed on both: a new collect or allocate run gives a new id, and the next rerun reads
the new data. Money stays ``Decimal`` here, exactly as the models return it; rounding to
the cent happens only when it is shown (:mod:`app.ui`).
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import polars as pl
import streamlit as st

from finops.state import PeriodTotal, State
from finops.warehouse import Warehouse
from models.showback import COSTS, compare, periods_available, top_unallocated_resources

STATE_DB: Final = "state.db"
TOP_UNALLOCATED: Final = 20  # resources listed per currency
# The allocated dataset's column for each cost basis of the cube.
_COST_COLUMN: Final = {"effective_cost": "EffectiveCost", "billed_cost": "BilledCost"}


def latest_run_id(home: Path) -> str | None:
    """The latest successful run, or None when nothing ever ran (no ``state.db``)."""
    path = home / STATE_DB
    if not path.is_file():  # never create a state.db just by looking
        return None
    with closing(State(path)) as state:
        return state.latest_run_id()


# ---- showback ------------------------------------------------------------------------
@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    cost: Decimal
    previous_cost: Decimal
    unallocated_cost: Decimal
    unallocated_share: float  # of ``cost``; 0.0 when the month's cost is zero


@dataclass(frozen=True)
class Showback:
    """One month of showback on one cost basis, beside the month before."""

    period: str
    previous: str
    has_previous: bool  # whether the previous month has allocated data at all
    cost: str  # "effective_cost" or "billed_cost"
    totals: tuple[CurrencyTotal, ...]  # one per billing currency, the largest cost first
    by_tenant: pl.DataFrame  # tenant, currency, cost, previous_cost, change, change_pct
    by_service: pl.DataFrame  # service, currency, cost, previous_cost, change, change_pct
    top_unallocated: pl.DataFrame  # ProviderName, ServiceName, ResourceId, BillingCurrency, cost

    @property
    def currencies(self) -> list[str]:
        return [t.currency for t in self.totals]

    def total(self, currency: str) -> CurrencyTotal:
        return next(t for t in self.totals if t.currency == currency)


@st.cache_data(show_spinner=False, max_entries=32)
def _periods(home: str, run_id: str | None) -> list[str]:
    return periods_available(Warehouse(Path(home)))


@st.cache_data(show_spinner="Reading allocated cost…", max_entries=64)
def _showback(home: str, run_id: str | None, period: str, cost: str) -> Showback:
    wh = Warehouse(Path(home))
    tenants = compare(wh, period, ["tenant"], cost=cost)
    services = compare(wh, period, ["service"], cost=cost)
    unallocated = {r["currency"]: r for r in tenants.unallocated.iter_rows(named=True)}
    totals = []
    for row in tenants.total.iter_rows(named=True):
        un = unallocated.get(row["currency"], {})
        totals.append(CurrencyTotal(
            currency=row["currency"],
            cost=row["cost"] or Decimal(0),
            previous_cost=row["previous_cost"] or Decimal(0),
            unallocated_cost=un.get("cost") or Decimal(0),
            unallocated_share=float(un.get("share") or 0.0),
        ))
    # Each currency gets its own top list: a small second currency is never crowded out.
    top = pl.concat([
        top_unallocated_resources(wh, period, limit=TOP_UNALLOCATED, cost=_COST_COLUMN[cost],
                                  currency=t.currency)
        for t in totals
    ]).sort("cost", descending=True, maintain_order=True) if totals else \
        top_unallocated_resources(wh, period, limit=TOP_UNALLOCATED, cost=_COST_COLUMN[cost])
    return Showback(
        period=period,
        previous=tenants.previous,
        has_previous=tenants.previous in periods_available(wh),
        cost=cost,
        # The main billing currency first: amounts of different currencies are compared
        # only to order the currency picker, never added.
        totals=tuple(sorted(totals, key=lambda t: (-t.cost, t.currency))),
        by_tenant=tenants.table,
        by_service=services.table,
        top_unallocated=top,
    )


def periods(home: Path) -> list[str]:
    """Billing months with allocated data, oldest first; empty for an empty warehouse."""
    return _periods(str(home), latest_run_id(home))


def showback(home: Path, period: str, cost: str = "effective_cost") -> Showback:
    if cost not in COSTS:
        raise ValueError(f"cost {cost!r} is not one of {', '.join(COSTS)}")
    return _showback(str(home), latest_run_id(home), period, cost)


# ---- run log -------------------------------------------------------------------------
@dataclass(frozen=True)
class RunLog:
    runs: list[dict[str, Any]]  # State.runs() rows, newest first
    totals: dict[str, list[PeriodTotal]]  # run_id -> its per-period totals


def run_log(home: Path, limit: int = 20) -> RunLog:
    """The latest runs and their per-period totals, read fresh on every rerun.

    Not cached: this is the live log (a running or failed run does not change the
    latest successful run id the cache is keyed on), and it is one small indexed query.
    """
    path = home / STATE_DB
    if not path.is_file():
        return RunLog([], {})
    with closing(State(path)) as state:
        runs = state.runs(limit=limit)
        return RunLog(runs, {r["run_id"]: state.run_totals(r["run_id"]) for r in runs})
