"""Daily usage rows for the cloud providers, and writing any source's partitions.

Rows are built per (source, billing period) in chunks of at most ``CHUNK_ROWS``: a
block of lines times the period's days, all numpy and Polars, never a Python loop per
row. Each chunk goes to a Parquet file in the run's staging folder; the partition is
then streamed from those files into its one file, so memory stays bounded by a chunk
whatever the total.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import polars as pl

from collectors.demo.anomalies import PlacedAnomaly
from collectors.demo.catalog import WEEKLY, Profile
from collectors.demo.commitments import (
    COMMITMENTS,
    DISCOUNTS,
    SPEND_BASED,
    CommitmentState,
    committed_effective,
    first_covered_day,
)
from collectors.demo.frames import to_focus
from collectors.demo.lines import CURRENCIES, Lines
from collectors.demo.money import SCALE, Units, to_units
from collectors.demo.window import Period, Window
from finops.ingest import BILLING, PERIOD
from finops.state import PeriodTotal, State
from finops.warehouse import Warehouse

CHUNK_ROWS: Final = 250_000
# Nodes of an autoscaled fleet run at most all day and at least a little.
FLEET_LEVEL: Final = 0.92

_COMMIT_TEXT: Final = pl.DataFrame(
    {
        "CommitmentDiscountId": [c.commitment_id for c in COMMITMENTS] + [None],
        "CommitmentDiscountName": [c.name for c in COMMITMENTS] + [None],
        "CommitmentDiscountType": [c.cd_type for c in COMMITMENTS] + [None],
        "CommitmentDiscountCategory": [c.category for c in COMMITMENTS] + [None],
        "CommitmentDiscountUnit": [c.unit for c in COMMITMENTS] + [None],
    },
    schema=dict.fromkeys(("CommitmentDiscountId", "CommitmentDiscountName",
                          "CommitmentDiscountType", "CommitmentDiscountCategory",
                          "CommitmentDiscountUnit"), pl.String),
)


def covered_usage(lines: Lines, window: Window) -> list[Units]:
    """Per commitment, the covered EffectiveCost of each window day.

    Covered lines run all day at a fixed quantity, so this is exact without generating
    a row: the same formula ``UsageGenerator`` applies to the same numbers.
    """
    out = []
    for k, spec in enumerate(COMMITMENTS):
        idx = np.flatnonzero(lines.commitment == k)
        daily = np.zeros(window.n_days + 1, dtype=np.int64)
        if idx.size:
            consumed = np.round(lines.qty[idx], 6)
            eff = committed_effective(consumed / lines.block[idx], lines.price[idx],
                                      np.full(idx.size, DISCOUNTS[k]))
            first = np.maximum(lines.start[idx], first_covered_day(spec, window))
            last = lines.end[idx]
            ok = last >= first
            np.add.at(daily, first[ok], eff[ok])
            np.add.at(daily, last[ok] + 1, -eff[ok])
        out.append(np.cumsum(daily)[: window.n_days])
    return out


@dataclass
class UsageTotals:
    """What later rows of the same run need: usage per line per period, anomaly excess."""

    billed: npt.NDArray[np.int64]  # (lines, periods)
    effective: npt.NDArray[np.int64]
    anomaly_extra: dict[str, dict[str, int]] = field(default_factory=dict)


class UsageGenerator:
    def __init__(self, lines: Lines, window: Window, placed: Sequence[PlacedAnomaly],
                 commitments: Sequence[CommitmentState], seed: int) -> None:
        self.lines = lines
        self.window = window
        self.placed = list(placed)
        self.mults = [p.multipliers(window.n_days) for p in placed]
        self.cover_first = np.array([c.first_day for c in commitments], dtype=np.int32)
        self.seed = seed
        shape = (len(lines), len(window.periods))
        self.totals = UsageTotals(np.zeros(shape, np.int64), np.zeros(shape, np.int64))

    def chunks(self, provider: int, period: Period, max_rows: int = CHUNK_ROWS
               ) -> Iterator[tuple[npt.NDArray[np.intp], npt.NDArray[np.int32]]]:
        """(line, day) index pairs of the provider's rows in the period, in chunks."""
        lines = self.lines
        idx = np.flatnonzero(lines.provider == provider)
        first = np.maximum(lines.start[idx], period.first_day)
        last = np.minimum(lines.end[idx], period.last_day)
        active = np.maximum(last - first + 1, 0)
        idx, active = idx[active > 0], active[active > 0]
        cum = np.cumsum(active)
        days = np.arange(period.first_day, period.last_day + 1, dtype=np.int32)
        lo, done = 0, 0
        while lo < idx.size:
            hi = max(lo + 1, int(np.searchsorted(cum, done + max_rows, side="right")))
            group = idx[lo:hi]
            # Day-major, like an export: all of a day's rows, then the next day's.
            li = np.tile(group, days.size)
            di = np.repeat(days, group.size)
            keep = (di >= lines.start[li]) & (di <= lines.end[li])
            yield li[keep], di[keep]
            done = int(cum[hi - 1])
            lo = hi

    def quantities(self, li: npt.NDArray[np.intp], di: npt.NDArray[np.int32],
                   rng: np.random.Generator) -> npt.NDArray[np.float64]:
        lines, window = self.lines, self.window
        profile = lines.profile[li]
        weekly = WEEKLY[profile, window.weekday[di]]
        sd = lines.noise[li]
        noise = np.exp(rng.standard_normal(li.size) * sd - sd * sd / 2)
        growth = np.power(1.0 + lines.growth[li], window.months_elapsed[di])
        q = lines.qty[li] * weekly * noise * growth
        fleet = profile == Profile.FLEET
        if fleet.any():
            level = np.clip(FLEET_LEVEL * weekly * noise, 0.04, 1.0)
            q = np.where(fleet, lines.qty[li] * level, q)
        q = np.where(lines.per_month[li], q / window.days_in_month[di], q)
        bits = lines.anomaly[li]
        for j, mult in enumerate(self.mults):
            hit = ((bits >> j) & 1).astype(bool)
            if hit.any():
                q = np.where(hit, q * mult[di], q)
        return np.round(q, 6)

    def raw_chunk(self, li: npt.NDArray[np.intp], di: npt.NDArray[np.int32], period: Period,
                  rng: np.random.Generator) -> pl.DataFrame:
        lines = self.lines
        consumed = self.quantities(li, di, rng)
        credit = lines.credit[li]
        pricing = consumed / lines.block[li]
        price = lines.price[li]
        at_price = to_units(pricing * price)
        list_cost = np.where(credit, 0, at_price)
        contracted = np.where(credit, 0, to_units(pricing * lines.contracted_price[li]))
        k = lines.commitment[li].astype(np.int32)
        kc = np.maximum(k, 0)
        covered = (k >= 0) & (di >= self.cover_first[kc])
        under_commitment = committed_effective(pricing, price, DISCOUNTS[kc])
        billed = np.where(credit, at_price, np.where(covered, 0, contracted))
        effective = np.where(credit, at_price, np.where(covered, under_commitment, contracted))
        commit_qty = np.where(SPEND_BASED[kc], under_commitment / SCALE, consumed)
        self._account(li, di, period, billed, effective)

        midnights = self.window.midnights
        no_qty = np.where(credit, np.nan, 0.0)
        frame = pl.concat(
            [
                lines.static[li],
                _COMMIT_TEXT[np.where(covered, k, len(COMMITMENTS))],
                pl.DataFrame({
                    "ChargePeriodStart": midnights.gather(di),
                    "ChargePeriodEnd": midnights.gather(di + 1),
                    "ConsumedQuantity": pl.Series(consumed + no_qty).fill_nan(None),
                    "PricingQuantity": pl.Series(pricing + no_qty).fill_nan(None),
                    "ListCost": list_cost,
                    "ContractedCost": contracted,
                    "BilledCost": billed,
                    "EffectiveCost": effective,
                    "CommitmentDiscountQuantity": pl.Series(
                        np.where(covered, commit_qty, np.nan)).fill_nan(None),
                    "_covered": covered,
                }),
            ],
            how="horizontal",
        )
        return frame.with_columns(
            pl.when(pl.col("ChargeCategory") == "Credit").then(None)
            .when(pl.col("_covered")).then(pl.lit("Committed"))
            .otherwise(pl.lit("Standard")).alias("PricingCategory"),
            pl.when(pl.col("_covered")).then(pl.lit("Used")).otherwise(None)
            .alias("CommitmentDiscountStatus"),
        ).drop("_covered")

    def _account(self, li: npt.NDArray[np.intp], di: npt.NDArray[np.int32], period: Period,
                 billed: Units, effective: Units) -> None:
        totals = self.totals
        column = np.full(li.size, period.index, dtype=np.intp)
        np.add.at(totals.billed, (li, column), billed)
        np.add.at(totals.effective, (li, column), effective)
        bits = self.lines.anomaly[li]
        currency = self.lines.currency[li]
        for j, placed in enumerate(self.placed):
            hit = ((bits >> j) & 1).astype(bool)
            if not hit.any():
                continue
            if placed.spec.kind == "runaway":
                extra = effective[hit].astype(np.float64)
            else:
                extra = effective[hit] * (1.0 - 1.0 / self.mults[j][di[hit]])
            per_currency = np.bincount(currency[hit], weights=extra, minlength=len(CURRENCIES))
            into = totals.anomaly_extra.setdefault(placed.spec.id, {})
            for c, value in enumerate(per_currency):
                if value:
                    into[CURRENCIES[c]] = into.get(CURRENCIES[c], 0) + round(float(value))

    def period_frames(self, provider: int, period: Period) -> Iterator[pl.DataFrame]:
        for n, (li, di) in enumerate(self.chunks(provider, period)):
            rng = np.random.default_rng([self.seed, 2, provider, period.index, n])
            yield self.raw_chunk(li, di, period, rng)


@dataclass
class SourceWrite:
    source: str
    run_id: str
    rows: int
    totals: list[PeriodTotal]
    periods: list[str]


class _PartitionRows:
    """One partition's rows on their way in: in memory up to about a chunk, beyond that
    in Parquet files in the run's staging folder, so memory holds one chunk at most."""

    def __init__(self, staging: Path, label: str) -> None:
        self.staging = staging
        self.label = label
        self.files: list[Path] = []
        self.pending: list[pl.DataFrame] = []
        self.rows = 0
        self.sums: dict[str, tuple[Decimal, Decimal, int]] = {}

    def add(self, frame: pl.DataFrame) -> None:
        self.rows += frame.height
        for cur, billed, eff, n in frame.group_by("BillingCurrency").agg(
            pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum(), pl.len()
        ).iter_rows():
            b0, e0, n0 = self.sums.get(cur, (Decimal(0), Decimal(0), 0))
            self.sums[cur] = (b0 + billed, e0 + eff, n0 + n)
        self.pending.append(frame)
        if sum(f.height for f in self.pending) >= CHUNK_ROWS:
            self._spill()

    def _spill(self) -> None:
        path = self.staging / f"{self.label}-{len(self.files):05d}.parquet"
        pl.concat(self.pending).write_parquet(path, compression="lz4", statistics=False)
        self.files.append(path)
        self.pending.clear()

    def data(self) -> pl.LazyFrame | pl.DataFrame:
        if not self.files:
            return pl.concat(self.pending)
        if self.pending:
            self._spill()
        return pl.scan_parquet(self.files)

    def discard(self) -> None:
        self.pending.clear()
        for path in self.files:
            path.unlink(missing_ok=True)


def write_source(
    wh: Warehouse,
    state: State,
    source: str,
    inputs: Sequence[str],
    window: Window,
    frames: Callable[[Period], Iterator[pl.DataFrame]],
    invoices: Callable[[Period], dict[str, str | None]],
) -> SourceWrite:
    """One collect run: every billing period of one source, one partition each."""
    run_id = state.start_run("collect", source, list(inputs))
    try:
        staging = wh.staging_dir(run_id)
        totals: list[PeriodTotal] = []
        periods: list[str] = []
        rows_out = 0
        for period in window.periods:
            part = _PartitionRows(staging, period.label)
            for raw in frames(period):
                if raw.height:
                    part.add(to_focus(raw, period, invoices(period), part.rows))
            keys = {"source": source, PERIOD: period.label}
            if not part.rows:
                wh.delete_partition(BILLING, keys)
                continue
            write = wh.replace_partition(BILLING, keys, part.data(), run_id=run_id)
            part.discard()
            if write.rows != part.rows:
                raise RuntimeError(f"{source} {period.label}: wrote {write.rows} rows of "
                                   f"{part.rows}")
            periods.append(period.label)
            rows_out += part.rows
            for cur, (billed, eff, n) in sorted(part.sums.items()):
                totals.append(PeriodTotal(period.label, cur, n, billed, eff,
                                          checksum=write.checksum))
        state.finish_run(run_id, status="succeeded", rows_in=rows_out, rows_out=rows_out,
                         rows_rejected=0, totals=totals)
        return SourceWrite(source, run_id, rows_out, totals, periods)
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    finally:
        wh.drop_staging(run_id)
