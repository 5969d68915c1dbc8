"""Who may see what: the one place that turns a recipient into the tenants they see.

Every figure in a report is computed from data filtered by the :class:`Scope` this module
returns, so swapping :func:`scope_for` (for example to read owners from the allocation
config's hierarchy) changes what everyone sees, and nothing else needs to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from reports.config import ALL, Recipient


@dataclass(frozen=True)
class Scope:
    """``tenants`` None means every tenant, the unallocated share included."""

    tenants: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        return self.tenants is None

    def allows(self, tenant: str | None) -> bool:
        return self.tenants is None or (tenant is not None and tenant in self.tenants)

    def allows_all(self, tenants: Iterable[str | None]) -> bool:
        """True when every one of ``tenants`` is visible (and there is at least one)."""
        seen = list(tenants)
        return bool(seen) and all(self.allows(t) for t in seen)

    def filter(self, column: str = "x_Tenant") -> pl.Expr:
        if self.tenants is None:
            return pl.lit(True)
        return pl.col(column).is_in(sorted(self.tenants))

    @property
    def label(self) -> str:
        if self.tenants is None:
            return "all tenants"
        return ", ".join(sorted(self.tenants))


EVERYTHING = Scope(None)


def scope_for(recipient: Recipient | None) -> Scope:
    """The tenants a recipient sees; no recipient (an ad-hoc address) sees everything."""
    if recipient is None or recipient.all_tenants:
        return EVERYTHING
    return Scope(frozenset(t for t in recipient.tenants if t != ALL))
