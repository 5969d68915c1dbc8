"""Daily cost series at every level, from the cube (allocated data) or straight from billing.

A *cell* is the finest grain kept: (currency, provider, service, account, tenant, team).
A *series* is the daily sum of the cells that share the values of its level's keys:
``total`` (per currency), ``provider``, ``service``, ``account``, ``tenant`` and
``service_account``. Days on which a currency has no row at all (an export gap) are
missing (NaN), not zero; a day on which a series has no row while others have some is 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import polars as pl

from finops.errors import BadInputError
from finops.warehouse import Warehouse

CUBE: Final = "cube"
BILLING: Final = "billing"
UNKNOWN: Final = "unknown"
NONE: Final = "(none)"
SEP: Final = " | "

CELL_KEYS: Final = ("currency", "provider", "service", "account", "tenant", "team")
LEVELS: Final[dict[str, tuple[str, ...]]] = {
    "total": (),
    "provider": ("provider",),
    "service": ("service",),
    "account": ("account",),
    "tenant": ("tenant",),
    "service_account": ("service", "account"),
    "team": ("team",),  # forecasts only (budgets per team); not a detection level
}
DETECTION_LEVELS: Final = ("total", "provider", "service", "account", "tenant", "service_account")
# Most specific first: used to pick the series that names an event.
SPECIFICITY: Final[dict[str, int]] = {
    "service_account": 5, "service": 4, "account": 4, "tenant": 3, "provider": 2, "team": 3,
    "total": 1,
}
CostKind = Literal["effective", "billed"]
COST_COLUMNS: Final[dict[str, str]] = {"effective": "EffectiveCost", "billed": "BilledCost"}
MONEY: Final = pl.Decimal(38, 12)


def load_cells(wh: Warehouse, *, cost: CostKind = "effective",
               through: dt.date | None = None) -> tuple[pl.DataFrame, str]:
    """Daily cost per cell up to ``through`` (inclusive): ``day``, CELL_KEYS, ``cost``.

    Returns the frame and its source (``cube`` or ``billing``). From billing the tenant
    and team are ``unknown``: only allocation knows them.
    """
    column = COST_COLUMNS[cost]
    if wh.has_data(CUBE):
        source = CUBE
        lf = wh.scan(CUBE).select(
            pl.col("day").cast(pl.Date),
            pl.col("BillingCurrency").alias("currency"),
            pl.col("ProviderName").alias("provider"),
            pl.col("ServiceName").alias("service"),
            pl.col("SubAccountId").alias("account"),
            pl.col("x_Tenant").alias("tenant"),
            pl.col("x_Team").alias("team"),
            pl.col(column).cast(MONEY).alias("cost"),
        )
    elif wh.has_data(BILLING):
        source = BILLING
        lf = wh.scan(BILLING).select(
            pl.col("ChargePeriodStart").dt.date().alias("day"),
            pl.col("BillingCurrency").alias("currency"),
            pl.col("ProviderName").alias("provider"),
            pl.col("ServiceName").alias("service"),
            pl.col("SubAccountId").alias("account"),
            pl.lit(UNKNOWN).alias("tenant"),
            pl.lit(UNKNOWN).alias("team"),
            pl.col(column).cast(MONEY).alias("cost"),
        )
    else:
        raise BadInputError(
            f"no cost data in {wh.home}: neither allocated data (cube) nor billing",
            hint="Run `finops collect focus --path FILE` (then `finops allocate` for tenants), "
            "or `finops demo`.",
        )
    if through is not None:
        lf = lf.filter(pl.col("day") <= through)
    df = (
        lf.filter(pl.col("day").is_not_null())
        .with_columns(pl.col(k).cast(pl.String).fill_null(NONE) for k in CELL_KEYS)
        .group_by("day", *CELL_KEYS)
        .agg(pl.col("cost").sum())
        .sort("day", *CELL_KEYS)
        .collect(engine="streaming")
    )
    return df, source


@dataclass
class Panel:
    """Cells and series as dense day-by-series matrices, plus the keys that name them."""

    days: list[dt.date]
    cells: pl.DataFrame  # cell, CELL_KEYS
    cell_values: np.ndarray  # [C, T] float, NaN on the currency's missing days
    series: pl.DataFrame  # sid, level, currency, value, provider, service, account, tenant, team
    values: np.ndarray  # [S, T]
    cell_series: dict[str, np.ndarray]  # level -> sid of each cell, [C]
    first: np.ndarray  # [S] index of the first day with cost != 0 (T when never)
    data: pl.DataFrame  # the exact cell-day costs (Decimal), with a ``cell`` column
    source: str
    data_end: dt.date

    @property
    def n_days(self) -> int:
        return len(self.days)

    def index_of(self, day: dt.date) -> int:
        return (day - self.days[0]).days

    def series_cells(self, sid: int) -> np.ndarray:
        level = str(self.series["level"][sid])
        return np.flatnonzero(self.cell_series[level] == sid)


def series_value(level: str, row: dict[str, str | None]) -> str:
    keys = LEVELS.get(level, (level,))
    if not keys:
        return "total"
    return SEP.join(str(row[k]) for k in keys)


def build_panel(cells_df: pl.DataFrame, *, source: str,
                levels: tuple[str, ...] | None = None) -> Panel:
    """Dense matrices for every series of ``levels`` (default: all that the data allows)."""
    if cells_df.is_empty():
        raise BadInputError("no cost rows up to the requested date",
                            hint="Pick a later --as-of, or collect data for earlier days.")
    if levels is None:
        levels = tuple(k for k in DETECTION_LEVELS if not (k == "tenant" and source != CUBE))
    first_day: dt.date = cells_df["day"].min()  # type: ignore[assignment]
    data_end: dt.date = cells_df["day"].max()  # type: ignore[assignment]
    n_days = (data_end - first_day).days + 1
    days = [first_day + dt.timedelta(days=i) for i in range(n_days)]

    cells = (cells_df.select(CELL_KEYS).unique().sort(CELL_KEYS)
             .with_row_index("cell").with_columns(pl.col("cell").cast(pl.Int64)))
    data = cells_df.join(cells, on=list(CELL_KEYS), how="left").with_columns(
        (pl.col("day") - pl.lit(first_day)).dt.total_days().cast(pl.Int64).alias("t")
    )
    cell_values = np.zeros((cells.height, n_days))
    np.add.at(cell_values, (data["cell"].to_numpy(), data["t"].to_numpy()),
              data["cost"].cast(pl.Float64).to_numpy())
    # A currency with no row on a day: that day is missing for all its cells.
    present = data.group_by("currency").agg(pl.col("t").unique())
    currencies = cells["currency"].to_list()
    missing_by_currency: dict[str, np.ndarray] = {}
    for cur, ts in present.iter_rows():
        mask = np.ones(n_days, dtype=bool)
        mask[np.asarray(ts, dtype=np.int64)] = False
        missing_by_currency[str(cur)] = mask
    for c, cur in enumerate(currencies):
        cell_values[c, missing_by_currency[cur]] = np.nan

    frames = []
    cell_series: dict[str, np.ndarray] = {}
    offset = 0
    for level in levels:
        keys = ["currency", *LEVELS[level]]
        groups = cells.select(keys).unique().sort(keys).with_row_index("sid")
        groups = groups.with_columns((pl.col("sid").cast(pl.Int64) + offset).alias("sid"))
        mapping = cells.join(groups, on=keys, how="left").sort("cell")["sid"].to_numpy()
        cell_series[level] = mapping.astype(np.int64)
        rows = groups.to_dicts()
        frames.append(pl.DataFrame({
            "sid": groups["sid"],
            "level": [level] * groups.height,
            "currency": groups["currency"],
            "value": [series_value(level, r) for r in rows],
            **{k: (groups[k] if k in LEVELS[level] else pl.Series(k, [None] * groups.height,
                                                                   pl.String))
               for k in ("provider", "service", "account", "tenant", "team")},
        }))
        offset += groups.height
    series = pl.concat(frames)
    values = np.zeros((series.height, n_days))
    nan_cells = np.isnan(cell_values)
    filled = np.where(nan_cells, 0.0, cell_values)
    for mapping in cell_series.values():
        np.add.at(values, mapping, filled)
    series_currency = series["currency"].to_list()
    for s, cur in enumerate(series_currency):
        values[s, missing_by_currency[cur]] = np.nan
    nonzero = np.nan_to_num(values) != 0
    first = np.where(nonzero.any(axis=1), nonzero.argmax(axis=1), n_days)
    return Panel(days, cells, cell_values, series, values, cell_series, first,
                 data.select("cell", "t", "cost"), source, data_end)

