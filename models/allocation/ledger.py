"""Reading ``allocated/``: the ledger, and the billing columns it does not repeat.

``allocated/`` is a ledger: per allocated row, the columns in ``LEDGER_FOCUS`` (the
cube's dimensions, the resource and the costs), the lineage and the allocation. A billing
row split among eight tenants becomes eight narrow rows, not eight copies of its sixty
FOCUS columns and its tags. Any other column of the billing row (``Tags``, ``SkuId``,
``ChargeDescription``, the provider's ``x_`` columns) is read from ``billing/`` by the
row's source and ``x_BillingRow``, its number within its billing partition (one
source's rows of one billing period).

That number is only meaningful against the billing file the period was allocated from,
so each allocated partition records a fingerprint of each source's file, and reading a
column through it refuses (with what to do) once a source has been collected again and
the period not re-allocated.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

import polars as pl

from finops.errors import StageError
from finops.ingest import BILLING, PERIOD
from finops.warehouse import Warehouse

ALLOCATED = "allocated"
FINGERPRINT_KEY = "finops.billing_fingerprints"
ROW = "x_BillingRow"
SOURCE = "source"
KEYS = (PERIOD, SOURCE, ROW)
JOIN_CHUNK_ROWS = 500_000


def billing_fingerprints(wh: Warehouse, period: str) -> dict[str, str]:
    """Per source, a fingerprint of its billing file of ``period`` (path, size and
    modification time): writing the partition again, by any collector, changes it."""
    out = {}
    for path, keys in Warehouse(wh.home).partition_files(BILLING):
        if keys.get(PERIOD) == period and SOURCE in keys:
            stat = path.stat()
            text = f"{path.relative_to(wh.home).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}"
            out[keys[SOURCE]] = hashlib.sha256(text.encode()).hexdigest()
    return out


def ledger_metadata(wh: Warehouse, period: str) -> dict[str, str]:
    return {FINGERPRINT_KEY: json.dumps(billing_fingerprints(wh, period), sort_keys=True)}


def _check_fresh(wh: Warehouse, period: str) -> None:
    """Refuses when a source this period was allocated from has been written again (or
    removed) since; a source collected for the first time after it changes nothing."""
    written = (wh.partition_metadata(ALLOCATED, {PERIOD: period}) or {}).get(FINGERPRINT_KEY)
    hint = "Run `finops allocate` (or `finops run`) to allocate the period again."
    if written is None:
        raise StageError(f"allocated/{PERIOD}={period} was written by an older version of finops, "
                         "without the fingerprint of its billing rows", hint=hint)
    recorded: dict[str, str] = json.loads(written)
    now = billing_fingerprints(wh, period)
    changed = sorted(s for s, fingerprint in recorded.items() if now.get(s) != fingerprint)
    if changed:
        raise StageError(
            f"billing of {period} from {', '.join(changed)} was collected again after it was "
            "allocated: its rows' tags and other billing columns cannot be matched to the "
            "allocated rows", hint=hint)


def allocated_periods(wh: Warehouse, periods: Sequence[str] | None = None) -> list[str]:
    found = sorted({k[PERIOD] for k in wh.partitions(ALLOCATED) if PERIOD in k})
    return [p for p in found if periods is None or p in periods]


def allocated_rows(
    wh: Warehouse,
    periods: Sequence[str] | None = None,
    *,
    columns: Sequence[str] = (),
    derived: Mapping[str, pl.Expr] | None = None,
    ordered: bool = False,
) -> pl.LazyFrame:
    """Allocated rows of ``periods`` (all if None) with ``columns`` of their billing rows
    and ``derived`` expressions evaluated on them (``{"tag:team": Tags.map.get("team")}``:
    only the value travels, not the map).

    ``wh`` may be a scoped warehouse: its allocated rows are the rows the viewer may see,
    and billing columns are joined onto those rows only. With ``ordered`` the rows keep
    the ledger's order (billing order) at some cost in speed.
    """
    lf = wh.scan(ALLOCATED, where={PERIOD: list(periods)} if periods is not None else None)
    have = set(lf.collect_schema().names())
    wanted = [c for c in dict.fromkeys(columns) if c not in have]
    derived = dict(derived or {})
    if not wanted and not derived:
        return lf
    # Billing itself is never visible to a scoped viewer: it is read unscoped, and only
    # its columns for the viewer's own allocated rows come through the join.
    base = Warehouse(wh.home)
    parts = []
    for period in allocated_periods(wh, periods):
        _check_fresh(base, period)
        ledger = wh.scan(ALLOCATED, where={PERIOD: period})
        for path, keys in base.partition_files(BILLING):
            if keys.get(PERIOD) != period or SOURCE not in keys:
                continue
            billing = base.scan(BILLING, where=keys, row_index=ROW)
            present = billing.collect_schema().names()
            billing = billing.select(
                *KEYS, *[pl.col(c) if c in present else pl.lit(None).alias(c) for c in wanted],
                *[e.alias(n) for n, e in derived.items()])
            rows = pl.scan_parquet(path).select(pl.len()).collect().item()
            mine = ledger.filter(pl.col(SOURCE) == keys[SOURCE])
            # A join holds its build side in memory: a slice of billing rows at a time
            # bounds that (a whole period of wide rows would not fit), and the ledger,
            # in billing order, reads only the row groups of each slice.
            for lo in range(0, rows, JOIN_CHUNK_ROWS):
                part = mine.filter(pl.col(ROW).is_between(lo, lo + JOIN_CHUNK_ROWS - 1))
                parts.append(part.join(billing.slice(lo, JOIN_CHUNK_ROWS), on=list(KEYS),
                                       how="left", maintain_order="left" if ordered else "none"))
    if not parts:
        return lf.with_columns(*[pl.lit(None).alias(c) for c in wanted],
                               *[pl.lit(None).alias(n) for n in derived])
    return pl.concat(parts, how="diagonal_relaxed")
