"""Dictionary lookups on a column that stay inside Polars' streaming engine.

``Expr.replace_strict`` (and ``replace``) make Polars 2.1 fall back to its in-memory
engine for the whole query: a 3M-row billing period then needs gigabytes instead of a
few morsels. The same lookup done per batch, declared elementwise, streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl


def mapped(expr: pl.Expr, mapping: Mapping[Any, Any], *, default: pl.Expr | Any = None,
           return_dtype: pl.DataType | type[pl.DataType] = pl.String) -> pl.Expr:
    """``mapping[value]`` for each value; ``default`` (a value or an expression) elsewhere."""
    table = dict(mapping)
    fixed = None if isinstance(default, pl.Expr) else default

    def lookup(series: pl.Series) -> pl.Series:
        return series.replace_strict(table, default=fixed, return_dtype=return_dtype)

    looked = expr.map_batches(lookup, return_dtype=return_dtype, is_elementwise=True)
    if isinstance(default, pl.Expr):
        # Keys mapped to None are not told apart from misses here; no caller maps to None.
        return pl.coalesce(looked, default.cast(return_dtype))
    return looked
