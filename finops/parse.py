"""Turning text read from exports into typed FOCUS columns, with a reason for each failure.

Every parser returns the typed value, or null where the text could not be read; the
caller compares with the raw text to say which rows failed and why. Nothing here drops
a row.
"""

from __future__ import annotations

import json

import polars as pl

from finops.focus import MONEY, TAGS, TIMESTAMP

MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
TAG_ENTRIES = pl.List(pl.Struct({"key": pl.String, "value": pl.String}))


def blank_to_null(expr: pl.Expr) -> pl.Expr:
    stripped = expr.str.strip_chars()
    return pl.when(stripped.str.len_bytes() == 0).then(None).otherwise(stripped)


def money(expr: pl.Expr) -> pl.Expr:
    """Text to Decimal(38, 12). Scientific notation (``1.5E-7``) is read exactly."""
    text = expr.str.strip_chars().str.replace_all(",", "", literal=True)
    return text.cast(MONEY, strict=False)


def quantity(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().str.replace_all(",", "", literal=True).cast(pl.Float64, strict=False)


def timestamp(expr: pl.Expr, *, day_first: bool = False) -> pl.Expr:
    """Text to a UTC timestamp. A value with no zone is UTC (as billing exports mean it).

    Accepts ISO 8601 with ``T`` or a space, optional fractions, ``Z`` or an offset, a
    plain date, and US ``MM/DD/YYYY`` dates (Azure's exports), or ``DD/MM/YYYY`` when
    ``day_first``.
    """
    text = expr.str.strip_chars()
    with_offset = text.str.replace(r"Z$", "+00:00").str.replace("T", " ", literal=True)
    naive = text.str.replace(r"Z$", "").str.replace("T", " ", literal=True)
    slash = "%d/%m/%Y" if day_first else "%m/%d/%Y"
    candidates = [
        with_offset.str.to_datetime("%Y-%m-%d %H:%M:%S%.f%:z", strict=False, time_unit="us",
                                    time_zone="UTC"),
        with_offset.str.to_datetime("%Y-%m-%d %H:%M%:z", strict=False, time_unit="us",
                                    time_zone="UTC"),
        naive.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us"
                              ).dt.replace_time_zone("UTC"),
        naive.str.to_datetime("%Y-%m-%d %H:%M", strict=False, time_unit="us"
                              ).dt.replace_time_zone("UTC"),
        naive.str.to_date("%Y-%m-%d", strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        naive.str.to_datetime(f"{slash} %H:%M:%S", strict=False, time_unit="us"
                              ).dt.replace_time_zone("UTC"),
        naive.str.to_date(slash, strict=False).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
    ]
    return pl.coalesce(candidates).cast(TIMESTAMP)


def _tags_from_python(text: str | None) -> list[dict[str, str]] | None:
    if text is None:
        return None
    body = text.strip()
    if not body:
        return None
    if not body.startswith("{"):
        # Azure writes the object's members without the braces.
        body = "{" + body + "}"
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    out = []
    for key, val in value.items():
        if val is None:
            continue
        sval = val if isinstance(val, str) else json.dumps(val, sort_keys=True)
        out.append({"key": str(key)[:MAX_TAG_KEY], "value": sval[:MAX_TAG_VALUE]})
    return out


def _tags_batch(series: pl.Series) -> pl.Series:
    stripped = series.str.strip_chars()
    if bool((stripped.str.starts_with("{") | stripped.is_null()).all()):
        try:
            # The common case, whole batch at once; any oddity falls back to row by row.
            decoded = stripped.str.json_decode(TAGS)
            entries = decoded.cast(TAG_ENTRIES)
            capped = entries.list.eval(
                pl.struct(
                    pl.element().struct.field("key").str.slice(0, MAX_TAG_KEY),
                    pl.element().struct.field("value").str.slice(0, MAX_TAG_VALUE),
                )
            ).list.eval(pl.element().filter(pl.element().struct.field("value").is_not_null()))
            return capped.cast(TAGS).rename(series.name)
        except (pl.exceptions.PolarsError, ValueError):
            pass
    return pl.Series(
        series.name, [_tags_from_python(v) for v in series.to_list()], dtype=TAG_ENTRIES
    ).cast(TAGS)


def tags_json(expr: pl.Expr) -> pl.Expr:
    """A JSON object of tags to ``Map(String, String)``; null where it is not an object.

    Values that are numbers or booleans become their JSON text; null values are
    dropped; keys and values are capped in length (they are untrusted user input).
    """
    return expr.map_batches(_tags_batch, return_dtype=TAGS)


def tags_invalid(raw: pl.Expr, parsed: pl.Expr) -> pl.Expr:
    """True where the raw text held something that did not parse as a tag object."""
    text = raw.str.strip_chars()
    return text.is_not_null() & (text.str.len_bytes() > 0) & parsed.is_null()
