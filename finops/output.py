"""Printing results: a table for people, or CSV or JSON on stdout for machines."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from enum import StrEnum
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

CENT = Decimal("0.01")


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def to_cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(CENT)


def money_to_cents(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Money columns rounded to the cent (half to even, as Python's decimal), as Decimal(38, 2)."""
    return df.with_columns(pl.col(c).round(2).cast(pl.Decimal(38, 2)) for c in columns if c in df.columns)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def emit(df: pl.DataFrame, fmt: Format, *, title: str | None = None,
         money: list[str] | None = None) -> None:
    """Write ``df`` to stdout in ``fmt``. Money columns are printed to the cent."""
    if money:
        df = money_to_cents(df, money)
    if fmt == Format.csv:
        flat = df.with_columns(
            pl.col(n).cast(pl.String) if not dt.is_nested() else pl.col(n).struct.json_encode()
            if isinstance(dt, pl.Struct) else pl.col(n).cast(pl.String, strict=False)
            for n, dt in df.schema.items()
        ) if any(dt.is_nested() for dt in df.schema.values()) else df
        sys.stdout.write(flat.write_csv())
    elif fmt == Format.json:
        sys.stdout.write(json.dumps([_jsonable(r) for r in df.iter_rows(named=True)], indent=2))
        sys.stdout.write("\n")
    else:
        table = Table(title=title, show_lines=False)
        for name, dtype in df.schema.items():
            table.add_column(name, justify="right" if dtype.is_numeric() else "left")
        for row in df.iter_rows():
            # Cells are data (tag values, paths, messages), never rich markup.
            table.add_row(*(Text("" if v is None else f"{v:,}" if isinstance(v, Decimal) else str(v))
                            for v in row))
        console = Console()
        # Piped output is read whole (by people or grep): no column is cut to fit 80 chars.
        (console if console.is_terminal else Console(width=400)).print(table)
