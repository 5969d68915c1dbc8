"""``finops collect gcp``: the Google Cloud Billing export as FOCUS 1.2.

From files (``--path``): JSON lines, CSV or Parquet written from the standard or
detailed usage cost export. From BigQuery (``--table``): see :mod:`collectors.gcp_bigquery`.
The mapping, and the choices it makes for credits, committed use discounts and labels,
is described in :mod:`collectors.gcp_mapping`.

Each input is rewritten as a canonical Parquet file in a scratch folder under the
warehouse's ``_staging``, and each canonical file is mapped once to an un-amortised FOCUS
Parquet file beside it; the CUD pools are computed over all of those (a commitment fee
and the usage it covers may sit in different files); then the shared loader reads them
again with the fees amortised, stages the FOCUS rows, sets aside bad ones, replaces each
(source, billing period) partition and reconciles ``cost + Σ credits`` per invoice month
and currency to the cent. Every pass streams: memory stays flat as the rows grow.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from collectors import gcp_bigquery as gbq
from collectors import gcp_mapping as gm
from collectors.gcp_catalog import PriceSource
from finops.errors import BadInputError
from finops.ingest import IngestResult, InputFile, ingest_billing, unreadable_as_bad_input
from finops.progress import progress
from finops.state import State
from finops.warehouse import STAGING, Warehouse, file_sha256

if TYPE_CHECKING:
    from google.cloud import bigquery


@dataclass(frozen=True)
class Canonical:
    path: Path  # the canonical Parquet file
    label: str  # what x_SourceFile and messages call the original input


def source_id_for(path: Path) -> str:
    stem = path.name
    for suffix in (".gz", ".csv", ".parquet", ".jsonl", ".ndjson", ".json"):
        stem = stem.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", stem).strip("-.") or "gcp"


@contextmanager
def scratch_dir(wh: Warehouse) -> Iterator[Path]:
    """A private folder under ``<home>/_staging`` (same file system), removed afterwards."""
    root = wh.home / STAGING
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="gcp-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def canonicalise(files: Sequence[tuple[Path, str]], scratch: Path) -> tuple[list[Canonical], list[str]]:
    """Every input as a canonical Parquet file; identical inputs are read once."""
    notes: list[str] = []
    out: list[Canonical] = []
    seen: dict[str, str] = {}
    with progress("reading gcp export files", len(files)) as step:
        for n, (src, label) in enumerate(files):
            digest = file_sha256(src)
            if digest in seen:
                notes.append(f"{label}: same content as {seen[digest]}, skipped")
                step.advance(label)
                continue
            target = scratch / f"canonical-{n:05d}.parquet"
            notes.extend(gm.write_canonical(src, target, scratch))
            seen[digest] = label
            out.append(Canonical(target, label))
            step.advance(label)
    return out, notes


Prices = PriceSource | pl.DataFrame | None


def _needing_prices(items: Sequence[Canonical]) -> tuple[set[str], set[str]]:
    """Services and currencies of the rows with no list cost in the export."""
    df = pl.concat(
        [pl.scan_parquet(i.path).filter(pl.col("cost_at_list").is_null())
         .select("service.id", "currency").unique() for i in items]
    ).unique().collect()
    return ({s for s in df["service.id"].to_list() if s},
            {c for c in df["currency"].to_list() if c})


# Memory bounds for the mapping pass. Polars' streaming Parquet reader reads many row
# groups ahead of a slow (compute-bound) query: over a canonical file with the sink's
# default row groups (~120k rows) that read-ahead alone held ~2.7 GB at 5M rows. So the
# mapping reads the canonical file in row ranges of MAP_CHUNK_ROWS (each its own query),
# and writes FOCUS files with row groups of SCRATCH_ROW_GROUP rows, which the amortising
# pass then reads with a read-ahead of a few hundred MB.
MAP_CHUNK_ROWS = 500_000
SCRATCH_ROW_GROUP = 20_000


def _row_count(path: Path) -> int:
    return int(pl.scan_parquet(path).select(pl.len()).collect(engine="streaming").item())


def write_unamortised(items: Sequence[Canonical], scratch: Path, prices: pl.DataFrame | None
                      ) -> list[list[Path]]:
    """Each canonical file mapped once to FOCUS (CUD fees not yet amortised), on disk.

    Returns, per item, its FOCUS part files in row order. The CUD pools and the amortised
    rows are both read from these files, so the mapping runs once per row and every
    pass over the rows streams in bounded memory.
    """
    out: list[list[Path]] = []
    with progress("mapping gcp rows to FOCUS", len(items)) as step:
        for item in items:
            rows = _row_count(item.path)
            parts: list[Path] = []
            # An empty file still gives one (empty) part, so its schema is there.
            for k, offset in enumerate(range(0, max(rows, 1), MAP_CHUNK_ROWS)):
                target = scratch / f"{item.path.stem}.focus-{k:05d}.parquet"
                canonical = pl.scan_parquet(item.path).slice(offset, MAP_CHUNK_ROWS)
                lf = gm.focus_frame(canonical, label=item.label, prices=prices)
                with unreadable_as_bad_input(item.label):
                    # Read back twice and deleted: cheap compression, no statistics.
                    lf.sink_parquet(target, engine="streaming", row_group_size=SCRATCH_ROW_GROUP,
                                    compression="lz4", statistics=False)
                parts.append(target)
            out.append(parts)
            step.advance(item.label)
    return out


def ingest_canonical(
    wh: Warehouse,
    state: State,
    items: Sequence[Canonical],
    *,
    source: str,
    scratch: Path,
    max_rejected_share: float,
    notes: Sequence[str] = (),
    prices: Prices = None,
) -> IngestResult:
    """Load canonical files through the shared loader, with CUD fees amortised.

    The canonical files are mapped once to un-amortised FOCUS files in ``scratch``; the
    small CUD pool table is computed from those, and the loader then reads them again,
    amortising row by row against that table.
    """
    if not items:
        raise BadInputError(f"{source}: no rows to collect")
    if callable(prices):
        prices = prices(*_needing_prices(items))
    mapped_files = write_unamortised(items, scratch, prices)
    index = {item.path: n for n, item in enumerate(items)}
    pools = gm.pool_frame([
        pl.scan_parquet(parts).with_columns(pl.lit(n, pl.Int64).alias("_file"))
        for n, parts in enumerate(mapped_files)
    ])

    def build(item: InputFile) -> pl.LazyFrame:
        n = index[item.path]
        return gm.amortise(pl.scan_parquet(mapped_files[n]), pools, n)

    def totals(item: InputFile) -> pl.LazyFrame:
        return gm.source_totals(pl.scan_parquet(item.path))

    return ingest_billing(
        wh, state, source=source, inputs=[InputFile(i.path, i.label) for i in items],
        build=build, source_totals=totals, max_rejected_share=max_rejected_share, notes=notes,
    )


def collect_gcp_files(
    wh: Warehouse,
    state: State,
    path: Path,
    *,
    source: str | None,
    max_rejected_share: float,
    prices: Prices = None,
) -> IngestResult:
    """Load Google Cloud Billing export files (a file or a folder of them)."""
    files = gm.find_export_files(path)
    base = path if path.is_dir() else path.parent
    with scratch_dir(wh) as scratch:
        items, notes = canonicalise([(f, str(f.relative_to(base))) for f in files], scratch)
        return ingest_canonical(
            wh, state, items, source=source or source_id_for(path), scratch=scratch,
            max_rejected_share=max_rejected_share, notes=notes, prices=prices,
        )


@dataclass
class TableRun:
    """What a ``--table`` run did: the load (None when nothing changed) and the window."""

    result: IngestResult | None
    window_start: datetime | None
    months: list[str]
    cursor: str | None


def collect_gcp_table(
    wh: Warehouse,
    state: State,
    table: str,
    *,
    source: str | None,
    max_rejected_share: float,
    since: date | None = None,
    overlap: timedelta = gbq.DEFAULT_OVERLAP,
    project: str | None = None,
    endpoint: str | None = None,
    prices: Prices = None,
    client: bigquery.Client | None = None,
) -> TableRun:
    """Load the invoice months of a BigQuery export table that changed since the cursor."""
    ref = gbq.TableRef.parse(table)
    source = source or source_id_for(Path(ref.table))
    client = client or gbq.make_client(project or ref.project, endpoint)
    info = gbq.table_info(client, ref)
    key = gbq.cursor_key(source)
    cursor = state.get_cursor(gbq.CURSOR_COLLECTOR, key)
    window = gbq.read_window(cursor, since, overlap)
    changes = gbq.changed_months(client, ref, info, window)
    if not changes:
        return TableRun(None, window, [], cursor)
    newest = max((c.max_export_time for c in changes if c.max_export_time), default=None)
    with scratch_dir(wh) as scratch:
        downloaded = gbq.download_months(client, ref, info, changes, scratch)
        if not downloaded:
            return TableRun(None, window, [], cursor)
        if info.kind == "focus":
            from collectors import focus as focus_collector

            result = ingest_billing(
                wh, state, source=source,
                inputs=[InputFile(p, label) for p, label, _ in downloaded],
                build=lambda item: gbq.google_focus(focus_collector.build_frame(item)),
                source_totals=focus_collector.source_totals,
                max_rejected_share=max_rejected_share,
                notes=[f"{ref}: Google's FOCUS rows, loaded with the FOCUS mapping"],
            )
        else:
            items, notes = canonicalise([(p, label) for p, label, _ in downloaded], scratch)
            result = ingest_canonical(wh, state, items, source=source, scratch=scratch,
                                      max_rejected_share=max_rejected_share, notes=notes,
                                      prices=prices)
    new_cursor = cursor
    if all(r.reconciled for r in result.reconciliation) and newest is not None:
        previous = datetime.fromisoformat(cursor) if cursor else None
        stamp = newest.astimezone(UTC)
        if previous is None or stamp > previous:
            new_cursor = stamp.isoformat()
            state.set_cursor(gbq.CURSOR_COLLECTOR, key, new_cursor)
    return TableRun(result, window, [c.month for c in changes], new_cursor)
