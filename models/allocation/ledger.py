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
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow.parquet as pq

from finops.errors import StageError
from finops.ingest import BILLING, PERIOD
from finops.warehouse import Warehouse

ALLOCATED = "allocated"
FINGERPRINT_KEY = "finops.billing_fingerprints"
ROW = "x_BillingRow"
SOURCE = "source"
KEYS = (PERIOD, SOURCE, ROW)
JOIN_CHUNK_ROWS = 500_000  # allocated rows per part of a join back to billing
SLICE_BLOCK = 1_024  # billing rows: the unit parts are cut in


def _billing_files(wh: Warehouse, period: str) -> list[tuple[Path, dict[str, str]]]:
    """Each source's billing file of ``period``, with its partition keys."""
    return [(path, keys) for path, keys in wh.partition_files(BILLING)
            if keys.get(PERIOD) == period and SOURCE in keys]


def billing_fingerprints(files: Sequence[tuple[Path, Mapping[str, str]]]) -> dict[str, str]:
    """Per source, a fingerprint of its billing file (:func:`_billing_files`): a hash of the
    file's size and Parquet footer (per row group and column: sizes, offsets, min/max,
    null counts). Rows changed, added or reordered change it; the same rows written again,
    or the warehouse copied elsewhere, do not (the pairing still holds). Reading a footer
    is cheap where hashing gigabytes of billing on every read would not be."""
    out = {}
    for path, keys in files:
        footer = json.dumps(pq.read_metadata(path).to_dict(), sort_keys=True, default=str)
        text = f"{path.stat().st_size}\0{footer}"
        out[keys[SOURCE]] = hashlib.sha256(text.encode()).hexdigest()
    return out


def ledger_metadata(wh: Warehouse, period: str) -> dict[str, str]:
    fingerprints = billing_fingerprints(_billing_files(wh, period))
    return {FINGERPRINT_KEY: json.dumps(fingerprints, sort_keys=True)}


def _check_fresh(wh: Warehouse, period: str, files: Sequence[tuple[Path, Mapping[str, str]]]) -> None:
    """Refuses when a source this period was allocated from has been written again (or
    removed) since; a source collected for the first time after it changes nothing."""
    written = (wh.partition_metadata(ALLOCATED, {PERIOD: period}) or {}).get(FINGERPRINT_KEY)
    hint = "Run `finops allocate` (or `finops run`) to allocate the period again."
    try:
        recorded: object = json.loads(written) if written is not None else None
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict):
        raise StageError(f"allocated/{PERIOD}={period} was written by an older version of finops, "
                         "without the fingerprint of its billing rows", hint=hint)
    now = billing_fingerprints(files)
    changed = sorted(s for s, fingerprint in recorded.items() if now.get(s) != fingerprint)
    if changed:
        raise StageError(
            f"billing of {period} from {', '.join(changed)} was collected again after it was "
            "allocated: its rows' tags and other billing columns cannot be matched to the "
            "allocated rows", hint=hint)


def _billing_slice(path: Path, keys: Mapping[str, str], present: Sequence[str], lo: int, rows: int,
                   wanted: Sequence[str], derived: Mapping[str, pl.Expr]) -> pl.LazyFrame:
    """Rows ``lo`` to ``lo + rows`` of one billing file (whose columns are ``present``):
    the join keys, ``wanted`` columns (null where this source lacks one) and ``derived``
    values."""
    # Each slice scans with its own n_rows. Identical scans would be merged into one
    # cached scan of the whole file, sliced afterwards: the whole file in memory.
    lf = pl.scan_parquet(path, hive_partitioning=False, n_rows=lo + rows).slice(lo, rows)
    return lf.with_row_index(ROW, offset=lo).select(
        pl.lit(keys[PERIOD], pl.String).alias(PERIOD), pl.lit(keys[SOURCE], pl.String).alias(SOURCE),
        pl.col(ROW).cast(pl.Int64),
        *[pl.col(c) if c in present else pl.lit(None).alias(c) for c in wanted],
        *[e.alias(n) for n, e in derived.items()])


def allocated_periods(wh: Warehouse, periods: Sequence[str] | None = None) -> list[str]:
    found = sorted({k[PERIOD] for k in wh.partitions(ALLOCATED) if PERIOD in k})
    return [p for p in found if periods is None or p in periods]


def _slices(ledger: pl.LazyFrame, total: int, chunk: int) -> list[tuple[int, int]]:
    """Ranges [lo, hi) of billing rows, each holding about ``chunk`` ledger rows: pool
    rows come in clusters, and 50k billing rows of them split among 20 tenants are a
    million allocated rows."""
    counts = (ledger.filter(pl.col(ROW).is_between(0, total - 1))
              .group_by((pl.col(ROW) // SLICE_BLOCK).alias("block")).agg(pl.len().alias("n"))
              .sort("block").collect(engine="streaming"))
    out, lo, held = [], 0, 0
    for block, n in counts.iter_rows():
        if held and held + n > chunk:
            out.append((lo, block * SLICE_BLOCK))
            lo, held = block * SLICE_BLOCK, 0
        held += n
    if lo < total:
        out.append((lo, total))
    return out


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
    only the value travels, not the map). A derived expression must be row by row (no
    sum, over or shift): it runs on billing rows before they meet the viewer's own.

    ``wh`` may be a scoped warehouse: its allocated rows are the rows the viewer may see,
    and billing columns are joined onto those rows only. With ``ordered`` the rows keep
    the ledger's order (billing order) at some cost in speed. For many wide columns use
    :func:`allocated_parts` and collect one part at a time: a join holds its billing
    side in memory, and Polars may run several parts of one query at once.
    """
    parts = list(allocated_parts(wh, periods, columns=columns, derived=derived, ordered=ordered))
    return parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal_relaxed")


def allocated_parts(
    wh: Warehouse,
    periods: Sequence[str] | None = None,
    *,
    columns: Sequence[str] = (),
    derived: Mapping[str, pl.Expr] | None = None,
    ordered: bool = False,
    chunk_rows: int | None = None,
) -> Iterator[pl.LazyFrame]:
    """:func:`allocated_rows` as a sequence of queries, each joining about ``chunk_rows``
    allocated rows (default ``JOIN_CHUNK_ROWS``) to their slice of one source's billing
    rows; in ledger order when ``ordered``. Every period's freshness is checked here,
    before any part runs."""
    lf = wh.scan(ALLOCATED, where={PERIOD: list(periods)} if periods is not None else None)
    have = set(lf.collect_schema().names())
    wanted = [c for c in dict.fromkeys(columns) if c not in have]
    derived = dict(derived or {})
    if not wanted and not derived:
        return iter([lf])
    # Billing itself is never visible to a scoped viewer: it is read unscoped, and only
    # its columns for the viewer's own allocated rows come through the join.
    base = Warehouse(wh.home)
    files = {}
    for period in allocated_periods(wh, periods):
        files[period] = _billing_files(base, period)
        _check_fresh(base, period, files[period])
    nulls = [*[pl.lit(None).alias(c) for c in wanted], *[pl.lit(None).alias(n) for n in derived]]
    if not files:
        return iter([lf.with_columns(nulls)])
    return _joined(wh, files, wanted, derived, nulls, "left" if ordered else "none",
                   chunk_rows or JOIN_CHUNK_ROWS)


def _joined(wh: Warehouse, files: Mapping[str, Sequence[tuple[Path, dict[str, str]]]],
            wanted: Sequence[str], derived: Mapping[str, pl.Expr], nulls: Sequence[pl.Expr],
            order: Literal["left", "none"], chunk: int) -> Iterator[pl.LazyFrame]:
    for period, period_files in files.items():
        ledger = wh.scan(ALLOCATED, where={PERIOD: period})
        for path, keys in period_files:
            mine = ledger.filter(pl.col(SOURCE) == keys[SOURCE])
            footer = pq.ParquetFile(path)
            total, present = footer.metadata.num_rows, footer.schema_arrow.names
            # The ledger is in billing order: each slice reads only its row groups.
            for lo, hi in _slices(mine, total, chunk):
                part = mine.filter(pl.col(ROW).is_between(lo, hi - 1))
                billing = _billing_slice(path, keys, present, lo, hi - lo, wanted, derived)
                yield part.join(billing, on=list(KEYS), how="left", maintain_order=order)
            # No ledger row goes missing, even one the check could not pair: it keeps
            # its cost, without billing columns.
            unpaired = pl.col(ROW).is_null() | (pl.col(ROW) < 0) | (pl.col(ROW) >= total)
            yield mine.filter(unpaired).with_columns(nulls)
        sources = [keys[SOURCE] for _, keys in period_files]
        yield (ledger.filter(~pl.col(SOURCE).is_in(sources) | pl.col(SOURCE).is_null())
               .with_columns(nulls))
