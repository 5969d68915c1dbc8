"""Attribution: every billing row finds an owner, with the method and rule that placed it.

This is the tag-based slice: a row's own tenant tag (any alias) places it, method
``tag``; everything else goes to ``unallocated``, visibly. Each input row becomes exactly
one output row here, so totals are preserved by construction, and checked anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import polars as pl

from finops.errors import StageError
from finops.ingest import BILLING, PERIOD
from finops.progress import progress
from finops.state import PeriodTotal, State
from finops.warehouse import Warehouse
from models.tags import KEY_ALIASES, tag_key_used, tag_value

ALLOCATED = "allocated"
CUBE = "cube"
UNALLOCATED = "unallocated"
CENT = Decimal("0.01")

ALLOCATION_COLUMNS = ("x_Tenant", "x_Team", "x_CostCenter", "x_AllocationMethod",
                      "x_AllocationRule")
CUBE_DIMENSIONS = ("day", "x_Tenant", "x_Team", "x_CostCenter", "ServiceName", "ServiceCategory",
                   "SubAccountId", "SubAccountName", "ProviderName", "RegionId", "ChargeCategory",
                   "x_AllocationMethod", "BillingCurrency")


def allocate_frame(billing: pl.LazyFrame) -> pl.LazyFrame:
    tags = pl.col("Tags")
    tenant = tag_value(tags, KEY_ALIASES["tenant"])
    return billing.with_columns(
        tenant.fill_null(UNALLOCATED).alias("x_Tenant"),
        tag_value(tags, KEY_ALIASES["team"]).fill_null(UNALLOCATED).alias("x_Team"),
        tag_value(tags, KEY_ALIASES["cost_center"]).fill_null(UNALLOCATED).alias("x_CostCenter"),
        pl.when(tenant.is_not_null()).then(pl.lit("tag")).otherwise(pl.lit(UNALLOCATED))
        .alias("x_AllocationMethod"),
        pl.when(tenant.is_not_null())
        .then(pl.concat_str(pl.lit("tag:"), tag_key_used(tags, KEY_ALIASES["tenant"])))
        .otherwise(pl.lit(UNALLOCATED)).alias("x_AllocationRule"),
    )


def cube_frame(allocated: pl.LazyFrame) -> pl.LazyFrame:
    return (
        allocated.with_columns(pl.col("ChargePeriodStart").dt.date().alias("day"))
        .group_by(CUBE_DIMENSIONS)
        .agg(pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum(), pl.len().alias("rows"))
        .sort(CUBE_DIMENSIONS, nulls_last=True)
    )


@dataclass
class PeriodCheck:
    period: str
    currency: str
    input_billed: Decimal
    input_effective: Decimal
    allocated_billed: Decimal
    allocated_effective: Decimal

    @property
    def ok(self) -> bool:
        return (abs(self.input_billed - self.allocated_billed) < CENT / 2
                and abs(self.input_effective - self.allocated_effective) < CENT / 2)


@dataclass
class AllocationResult:
    run_id: str
    periods: list[str]
    checks: list[PeriodCheck]
    coverage: pl.DataFrame  # method, effective_cost, share


def _sums(lf: pl.LazyFrame) -> dict[str, tuple[Decimal, Decimal]]:
    df = lf.group_by("BillingCurrency").agg(pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum()
                                            ).collect(engine="streaming")
    return {r[0]: (r[1] or Decimal(0), r[2] or Decimal(0)) for r in df.iter_rows()}


def allocate(wh: Warehouse, state: State, *, periods: list[str] | None = None) -> AllocationResult:
    """Allocate every billing period (or those given) and rebuild their cube partitions."""
    available = sorted({k[PERIOD] for k in wh.partitions(BILLING)})
    todo = [p for p in available if periods is None or p in periods]
    run_id = state.start_run("allocate", None, todo)
    checks: list[PeriodCheck] = []
    try:
        with progress("allocating", len(todo)) as step:
            for period in todo:
                billing = wh.scan(BILLING, where={PERIOD: period})
                wh.replace_partition(ALLOCATED, {PERIOD: period}, allocate_frame(billing),
                                     run_id=run_id)
                allocated = wh.scan(ALLOCATED, where={PERIOD: period})
                wh.replace_partition(CUBE, {PERIOD: period}, cube_frame(allocated), run_id=run_id)
                before, after = _sums(billing), _sums(allocated)
                for cur in sorted(set(before) | set(after)):
                    ib, ie = before.get(cur, (Decimal(0), Decimal(0)))
                    ab, ae = after.get(cur, (Decimal(0), Decimal(0)))
                    checks.append(PeriodCheck(period, cur, ib, ie, ab, ae))
                step.advance(period)
        # Periods no longer in billing must not linger in allocated results.
        for keys in wh.partitions(ALLOCATED):
            if keys[PERIOD] not in available:
                wh.delete_partition(ALLOCATED, keys)
                wh.delete_partition(CUBE, keys)
        bad = [c for c in checks if not c.ok]
        if bad:
            raise StageError(
                "allocation lost or duplicated cost: "
                + "; ".join(f"{c.period} {c.currency}: input {c.input_billed}, "
                            f"allocated {c.allocated_billed}" for c in bad)
            )
        coverage = coverage_by_method(wh, todo)
        state.finish_run(
            run_id, status="succeeded",
            totals=[PeriodTotal(c.period, c.currency, 0, c.allocated_billed, c.allocated_effective)
                    for c in checks],
        )
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=str(exc)[:2000])
        raise
    finally:
        wh.drop_staging(run_id)
    return AllocationResult(run_id, todo, checks, coverage)


def coverage_by_method(wh: Warehouse, periods: list[str] | None = None) -> pl.DataFrame:
    cube = wh.scan(CUBE, where={PERIOD: periods} if periods else None)
    if not wh.has_data(CUBE):
        return pl.DataFrame(schema={"method": pl.String, "BillingCurrency": pl.String,
                                    "effective_cost": pl.Decimal(38, 12), "share": pl.Float64})
    df = (
        cube.group_by(pl.col("x_AllocationMethod").alias("method"), "BillingCurrency")
        .agg(pl.col("EffectiveCost").sum().alias("effective_cost"))
        .collect()
    )
    return df.with_columns(
        (pl.col("effective_cost").cast(pl.Float64)
         / pl.col("effective_cost").cast(pl.Float64).sum().over("BillingCurrency")).alias("share")
    ).sort("BillingCurrency", "method")
