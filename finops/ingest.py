"""Loading normalised FOCUS rows into the warehouse, the same way for every collector.

A collector turns each input file into a lazy frame of FOCUS columns plus
``x_RejectReason`` (null for good rows). This module stages those frames, sets aside
rejected rows with their reasons, checks the share set aside, replaces each
(source, billing period) partition atomically and logs the run with its totals.
If anything fails before the first partition is replaced, the warehouse is as it was.
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

from finops.errors import BadInputError, FinopsError
from finops.focus import LINEAGE_COLUMNS, SCHEMA
from finops.progress import info, progress
from finops.state import PeriodTotal, State
from finops.warehouse import Warehouse, file_sha256

REJECT = "x_RejectReason"
PERIOD = "billing_period"
BILLING = "billing"
REJECTED = "rejected"
CENT = Decimal("0.01")


def period_of(column: str = "BillingPeriodStart") -> pl.Expr:
    return pl.col(column).dt.strftime("%Y-%m")


def reject_reason(reasons: Sequence[pl.Expr]) -> pl.Expr:
    """One text per row joining every reason that applies; null when none does."""
    joined = pl.concat_str(list(reasons), separator="; ", ignore_nulls=True)
    return pl.when(joined.str.len_bytes() > 0).then(joined).otherwise(None).alias(REJECT)


def reason_if(condition: pl.Expr, message: pl.Expr | str) -> pl.Expr:
    msg = pl.lit(message) if isinstance(message, str) else message
    return pl.when(condition).then(msg).otherwise(None)


def focus_row_reasons(raw_cost: dict[str, pl.Expr] | None = None) -> list[pl.Expr]:
    """Reasons a typed FOCUS row cannot be placed in time and money.

    ``raw_cost`` maps a money column to its raw text, so a value that failed to parse is
    told apart from one that was never there.
    """
    reasons: list[pl.Expr] = []
    for name in ("BilledCost", "EffectiveCost"):
        raw = (raw_cost or {}).get(name)
        if raw is not None:
            reasons.append(
                reason_if(
                    pl.col(name).is_null() & raw.is_not_null(),
                    pl.format("{}: cannot read '{}' as a number", pl.lit(name),
                              raw.str.slice(0, 40)),
                )
            )
        reasons.append(reason_if(pl.col(name).is_null() & (raw.is_null() if raw is not None
                                                           else pl.lit(True)),
                                 f"{name}: missing"))
    for name in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd"):
        c = pl.col(name)
        reasons.append(reason_if(c.is_null(), f"{name}: missing or not a date"))
        reasons.append(
            reason_if(
                (c.dt.year() < 2000) | (c.dt.year() > 2100),
                pl.format("{}: impossible date {}", pl.lit(name), c.dt.strftime("%Y-%m-%d")),
            )
        )
    reasons.append(reason_if(pl.col("ChargePeriodEnd") < pl.col("ChargePeriodStart"),
                             "ChargePeriodEnd: before ChargePeriodStart"))
    reasons.append(reason_if(pl.col("BillingPeriodEnd") <= pl.col("BillingPeriodStart"),
                             "BillingPeriodEnd: not after BillingPeriodStart"))
    reasons.append(
        reason_if(
            pl.col("ChargeCategory").is_null()
            | ~pl.col("ChargeCategory").is_in(["Usage", "Purchase", "Tax", "Credit", "Adjustment"]),
            pl.format("ChargeCategory: '{}' is not Usage, Purchase, Tax, Credit or Adjustment",
                      pl.col("ChargeCategory").fill_null("")),
        )
    )
    reasons.append(
        reason_if(
            pl.col("BillingCurrency").is_null()
            | ~pl.col("BillingCurrency").str.contains(r"^[A-Z]{3}$"),
            pl.format("BillingCurrency: '{}' is not an ISO 4217 code",
                      pl.col("BillingCurrency").fill_null("")),
        )
    )
    return reasons


@dataclass(frozen=True)
class InputFile:
    path: Path
    label: str  # what messages and x_SourceFile call it (a name, not a full local path)


@dataclass
class Reconciliation:
    period: str
    currency: str
    source_billed: Decimal
    source_effective: Decimal | None  # None: the source has no effective (amortised) column
    stored_billed: Decimal
    stored_effective: Decimal
    set_aside_billed: Decimal
    rows: int

    @property
    def difference(self) -> Decimal:
        return self.source_billed - self.stored_billed - self.set_aside_billed

    @property
    def reconciled(self) -> bool:
        return abs(self.difference) < CENT / 2


@dataclass
class IngestResult:
    run_id: str
    source: str
    rows_in: int
    rows_out: int
    rows_rejected: int
    periods: list[str]
    reconciliation: list[Reconciliation]
    reject_summary: list[tuple[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _totals(lf: pl.LazyFrame) -> dict[tuple[str, str], tuple[Decimal, Decimal | None, int]]:
    """Sums per period and currency; EffectiveCost is None where the source has none."""
    effective = pl.col("EffectiveCost")
    df = (
        lf.group_by(PERIOD, "BillingCurrency")
        .agg(pl.col("BilledCost").sum(),
             pl.when(effective.count() > 0).then(effective.sum()).alias("EffectiveCost"),
             pl.len().alias("rows"))
        .collect(engine="streaming")
    )
    return {
        (r[PERIOD], r["BillingCurrency"]): (r["BilledCost"] or Decimal(0), r["EffectiveCost"], r["rows"])
        for r in df.iter_rows(named=True)
    }


def ingest_billing(
    wh: Warehouse,
    state: State,
    *,
    source: str,
    inputs: Sequence[InputFile],
    build: Callable[[InputFile], pl.LazyFrame],
    source_totals: Callable[[InputFile], pl.LazyFrame],
    max_rejected_share: float,
    notes: Sequence[str] = (),
) -> IngestResult:
    """Stage, check and load billing rows; see the module docstring.

    ``build`` gives FOCUS columns, lineage and ``x_RejectReason``; ``source_totals``
    gives ``billing_period, BillingCurrency, BilledCost, EffectiveCost`` summed straight
    from the source's own cost columns, the independent side of the reconciliation.
    """
    run_id = state.start_run("collect", source, [i.label for i in inputs])
    staging = wh.staging_dir(run_id)
    notes = list(notes)
    try:
        seen: dict[str, str] = {}
        staged: list[Path] = []
        source_parts: list[pl.DataFrame] = []
        with progress(f"reading {source}", len(inputs)) as step:
            for n, item in enumerate(inputs):
                digest = file_sha256(item.path)
                if digest in seen:
                    notes.append(f"{item.label}: same content as {seen[digest]}, skipped")
                    step.advance(item.label)
                    continue
                seen[digest] = item.label
                plain = _plain(item, staging / f"input-{n:05d}.csv")
                out = staging / f"input-{n:05d}.parquet"
                lf = build(plain).with_columns(pl.col(PERIOD).cast(pl.String))
                with unreadable_as_bad_input(item.label):
                    lf.sink_parquet(out, engine="streaming")
                    source_parts.append(source_totals(plain).collect(engine="streaming"))
                staged.append(out)
                step.advance(item.label)
        if not staged:
            raise BadInputError(f"{source}: no input files to collect")

        # Unify x_ columns across files (each file may carry its own extras).
        all_rows = pl.concat([pl.scan_parquet(p) for p in staged], how="diagonal_relaxed")
        summary = (
            all_rows.select(
                pl.len().alias("rows"),
                pl.col(REJECT).is_not_null().sum().alias("rejected"),
                pl.col("BilledCost").abs().sum().alias("abs_cost"),
                pl.col("BilledCost").filter(pl.col(REJECT).is_not_null()).abs().sum()
                .alias("rejected_cost"),
                pl.col(REJECT).is_not_null().and_(pl.col("BilledCost").is_null()).sum()
                .alias("unreadable"),
            )
            .collect(engine="streaming")
            .row(0, named=True)
        )
        rows_in, rejected = int(summary["rows"]), int(summary["rejected"])
        reasons = (
            all_rows.filter(pl.col(REJECT).is_not_null())
            .select(pl.col(REJECT).str.split("; ").explode().str.replace(r" '.*", "").alias("r"))
            .group_by("r").len().sort("len", descending=True).collect()
        )
        reject_summary = [(r, int(n)) for r, n in reasons.iter_rows()]
        abs_cost = summary["abs_cost"] or Decimal(0)
        cost_share = float((summary["rejected_cost"] or 0) / abs_cost) if abs_cost else 0.0
        row_share = summary["unreadable"] / rows_in if rows_in else 0.0
        share = max(cost_share, row_share)
        if rejected and share > max_rejected_share:
            top = "; ".join(f"{r} ({n} rows)" for r, n in reject_summary[:5])
            raise BadInputError(
                f"{source}: {rejected} of {rows_in} rows could not be read ({share:.1%} of cost, "
                f"more than the {max_rejected_share:.1%} allowed): {top}",
                hint="Fix the export, or raise FINOPS_INGEST__MAX_REJECTED_COST_SHARE if you "
                "accept losing these rows. Nothing was loaded.",
            )

        good = all_rows.filter(pl.col(REJECT).is_null()).drop(REJECT)
        periods = sorted(
            good.select(pl.col(PERIOD).unique()).collect(engine="streaming").to_series().to_list()
        )
        checksums: dict[str, str | None] = {}
        with progress(f"writing {source}", len(periods)) as step:
            for period in periods:
                write = wh.replace_partition(
                    BILLING, {"source": source, PERIOD: period},
                    good.filter(pl.col(PERIOD) == period), run_id=run_id,
                )
                checksums[period] = write.checksum
                step.advance(period)
        if rejected:
            wh.replace_partition(
                REJECTED, {"source": source, "run": run_id},
                all_rows.filter(pl.col(REJECT).is_not_null()), run_id=run_id,
            )

        stored = _totals(wh.scan(BILLING, where={"source": source, PERIOD: periods}))
        aside = _totals(all_rows.filter(pl.col(REJECT).is_not_null() & pl.col(PERIOD).is_not_null()))
        src = _totals(pl.concat(source_parts).lazy()) if source_parts else {}
        recon = []
        zero: tuple[Decimal, Decimal | None, int] = (Decimal(0), Decimal(0), 0)
        for key in sorted(set(stored) | set(src) | set(aside)):
            sb, se, _ = src.get(key, zero)
            tb, te, rows = stored.get(key, zero)
            ab = aside.get(key, zero)[0]
            recon.append(Reconciliation(key[0], key[1], sb, se, tb, te or Decimal(0), ab, rows))
        totals = [
            PeriodTotal(r.period, r.currency, r.rows, r.stored_billed, r.stored_effective,
                        aside.get((r.period, r.currency), (0, 0, 0))[2], r.set_aside_billed,
                        checksums.get(r.period))
            for r in recon
        ]
        bad = [r for r in recon if not r.reconciled]
        status, message = "succeeded", None
        if bad:
            status = "failed"
            message = "; ".join(f"{r.period} {r.currency} off by {r.difference}" for r in bad)
        state.finish_run(run_id, status=status, rows_in=rows_in, rows_out=rows_in - rejected,
                         rows_rejected=rejected, totals=totals, message=message)
        if notes:
            for note in notes:
                info(f"note: {note}")
        return IngestResult(run_id, source, rows_in, rows_in - rejected, rejected, periods, recon,
                            reject_summary, notes)
    except FinopsError as exc:
        state.finish_run(run_id, status="failed", message=str(exc)[:2000])
        raise
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        wh.drop_staging(run_id)


@contextmanager
def unreadable_as_bad_input(label: str) -> Iterator[None]:
    """A Polars error while reading an input becomes a clear bad-input error naming it."""
    try:
        yield
    except pl.exceptions.PolarsError as exc:
        raise BadInputError(
            f"{label}: cannot be read: {str(exc).splitlines()[0]}",
            hint="Check that the file is a complete, uncorrupted export.",
        ) from None


def _plain(item: InputFile, scratch: Path) -> InputFile:
    """A gzip CSV decompressed to disk first, so it is then read in a stream, not whole."""
    if not item.path.name.lower().endswith(".csv.gz"):
        return item
    try:
        with gzip.open(item.path, "rb") as src, scratch.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except (OSError, EOFError) as exc:
        raise BadInputError(f"{item.label}: cannot be read: {exc}",
                            hint="Download the export again; the gzip file is damaged.") from None
    return InputFile(scratch, item.label)


def ensure_focus_columns(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Every FOCUS and lineage column present with its FOCUS type, FOCUS ones first."""
    names = lf.collect_schema().names()
    full = {**SCHEMA, **LINEAGE_COLUMNS}
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in full.items() if name not in names]
    lf = lf.with_columns(missing) if missing else lf
    extras = [n for n in lf.collect_schema().names() if n not in full]
    return lf.select([pl.col(n).cast(full[n]) for n in full] + [pl.col(n) for n in extras])
