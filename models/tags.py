"""Tag normalisation: many spellings of one key, values trimmed and lower-cased.

Real organisations tag the same thing as ``team``, ``Team``, ``user:team`` (CUR) or
``owner``; these aliases say which keys mean which dimension, first match winning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import polars as pl

KEY_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "tenant": ("tenant", "Tenant", "TENANT", "user:tenant", "user_tenant", "customer"),
    "team": ("team", "Team", "TEAM", "user:team", "user_team", "owner", "Owner"),
    "cost_center": ("cost-center", "cost_center", "CostCenter", "costcenter", "user:cost-center",
                    "user:CostCenter"),
}


def normalise_value(expr: pl.Expr) -> pl.Expr:
    value = expr.str.strip_chars().str.to_lowercase()
    return pl.when(value.str.len_bytes() > 0).then(value).otherwise(None)


def tag_value(tags: pl.Expr, aliases: Sequence[str]) -> pl.Expr:
    """The normalised value of the first alias present in the tag map."""
    return pl.coalesce([normalise_value(tags.map.get(alias)) for alias in aliases])


def tag_key_used(tags: pl.Expr, aliases: Sequence[str]) -> pl.Expr:
    """Which alias supplied the value (for lineage: ``tag:user:team``)."""
    return pl.coalesce(
        [pl.when(normalise_value(tags.map.get(a)).is_not_null()).then(pl.lit(a)) for a in aliases]
    )
