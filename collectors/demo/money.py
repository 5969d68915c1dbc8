"""Money while generating: integers of 1e-10 of a currency unit, Decimal when written.

Integers add up exactly, so a commitment's used and unused rows sum to its fee to the
last digit and Snowflake credits times the price equal the billed cost, whatever the
row count. Ten decimals is what AWS CUR carries.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from finops.focus import MONEY

SCALE: Final = 10**10
UNIT: Final = Decimal(1) / SCALE
CENT: Final = Decimal("0.01")

Units = npt.NDArray[np.int64]


def to_units(amount: npt.NDArray[np.float64] | float) -> Units:
    return np.asarray(np.rint(np.asarray(amount, dtype=np.float64) * SCALE), dtype=np.int64)


def unit_of(amount: float) -> int:
    return round(amount * SCALE)


def as_decimal(expr: pl.Expr) -> pl.Expr:
    """Integer units to FOCUS money, exactly (no float on the way)."""
    return (expr.cast(pl.Decimal(38, 0)) * pl.lit(UNIT, pl.Decimal(38, 10))).cast(MONEY)


def decimal_of(units: int) -> Decimal:
    return Decimal(units) * UNIT
