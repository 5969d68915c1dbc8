"""Per-batch lookups that keep a query streaming (finops/lookup.py)."""

from __future__ import annotations

import polars as pl
import pytest

from finops.lookup import gathered, index_of, mapped, row_of


def test_index_of_and_gathered_find_each_key_and_refuse_a_miss() -> None:
    table = pl.DataFrame({"key": [30, 10, 20], "owner": ["c", "a", "b"]},
                         schema={"key": pl.UInt64, "owner": pl.String})
    rows = pl.LazyFrame({"key": [10, 20, 30, 10]}, schema={"key": pl.UInt64})
    out = rows.with_columns(
        gathered(index_of(pl.col("key"), table["key"]), table.drop("key")).alias("o")
    ).unnest("o").collect(engine="streaming")
    assert out["owner"].to_list() == ["a", "b", "c", "a"]
    missing = pl.LazyFrame({"key": [10, 40]}, schema={"key": pl.UInt64})
    with pytest.raises(ValueError, match="1 value"):
        missing.with_columns(index_of(pl.col("key"), table["key"])).collect(engine="streaming")


def test_row_of_matches_nulls_and_misses_to_null() -> None:
    table = pl.DataFrame({"pool": ["p", "p", "q"], "day": ["d1", None, None]})
    rows = pl.LazyFrame({"pool": ["p", "p", "q", "q", None], "day": [None, "d1", None, "d2", None]})
    out = rows.select(row_of(["pool", "day"], table).alias("row")).collect(engine="streaming")
    assert out["row"].to_list() == [1, 0, 2, None, None]


def test_mapped_with_default_expression() -> None:
    df = pl.LazyFrame({"v": ["a", "b"]}).select(
        mapped(pl.col("v"), {"a": "A"}, default=pl.col("v"))).collect(engine="streaming")
    assert df["v"].to_list() == ["A", "b"]
