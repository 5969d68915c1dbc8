"""Dictionary lookups on a column that stay inside Polars' streaming engine.

``Expr.replace_strict`` (and ``replace``) make Polars 2.1 fall back to its in-memory
engine for the whole query: a 3M-row billing period then needs gigabytes instead of a
few morsels. The same lookup done per batch, declared elementwise, streams.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
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


def index_of(expr: pl.Expr, keys: pl.Series) -> pl.Expr:
    """The position in ``keys`` (unique unsigned integers) of each value, per batch.

    Every value must be present: a miss raises, because a silent null would hand a row
    to nobody. A join would do the same lookup, but Polars' streaming join copies every
    column of a wide row and may build its table on the wide side; this touches one
    column, through a hash table built once (pandas' index engine: six times faster per
    row than a binary search over 350k keys).
    """
    index = pd.Index(keys.to_numpy())
    name = keys.name

    def look(series: pl.Series) -> pl.Series:
        at = index.get_indexer(series.to_numpy())
        missing = int((at < 0).sum())
        if missing:
            raise ValueError(f"{missing} value(s) not found among the {name} keys")
        return pl.Series(series.name, at, dtype=pl.UInt32)

    return expr.map_batches(look, return_dtype=pl.UInt32, is_elementwise=True)


def gathered(index: pl.Expr, table: pl.DataFrame) -> pl.Expr:
    """A struct of ``table``'s columns at each row's ``index`` (all null where it is null),
    done per batch like ``index_of``; unnest it to get the columns."""
    packed = table.to_struct("__gathered")
    dtype = pl.Struct(table.schema)

    def gather(series: pl.Series) -> pl.Series:
        return packed.gather(series)

    return index.map_batches(gather, return_dtype=dtype, is_elementwise=True)


def row_of(columns: list[str], table: pl.DataFrame) -> pl.Expr:
    """The number of the row of ``table`` whose ``columns`` equal the row's (nulls equal
    nulls), null where none does; ``table`` holds each combination once. Exact: an eager
    join per batch against the small table."""
    numbered = table.select(columns).with_row_index("__row")

    def look(batch: pl.Series) -> pl.Series:
        frame = batch.struct.unnest().join(numbered, on=columns, how="left", nulls_equal=True,
                                           maintain_order="left")
        return frame["__row"]

    return pl.struct(columns).map_batches(look, return_dtype=pl.UInt32, is_elementwise=True)
