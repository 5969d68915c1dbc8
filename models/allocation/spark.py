"""The same allocation on Apache Spark, for bills too big for one machine.

The data is split by billing period and account. First the small global step: each
partition's direct costs are aggregated by the Polars function ``direct_basis`` (through
``applyInArrow``), collected to the driver, and turned into the pools' weights by
``pool_specs`` exactly as on one machine. Then each partition is allocated by the same
Polars functions (``owners`` and ``allocate_lazy``), the weights travelling with the
task. Results are identical to the single-node path, row for row, except for
``x_BillingRow`` (a row's number within its partition here, within its period there).

    from pyspark.sql import SparkSession
    spark = SparkSession.builder.getOrCreate()
    billing = spark.read.parquet("s3://bucket/finops/billing")   # hive partitions found
    out = allocate_spark(spark, billing, config, warehouse)
    out.write.partitionBy("billing_period").parquet("s3://bucket/finops/allocated")
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from finops.ingest import PERIOD
from finops.warehouse import Warehouse
from models.allocation.config import AllocationConfig
from models.allocation.engine import BASIS_KEYS, allocate_lazy, direct_basis, owners, pool_specs
from models.allocation.ledger import ROW

PARTITION = (PERIOD, "SubAccountId")


def _polars(table: pa.Table) -> pl.LazyFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    # Spark hands timestamps over without their zone; FOCUS times are UTC.
    frame = frame.with_columns(
        pl.col(n).dt.replace_time_zone("UTC") if dtype.time_zone is None
        else pl.col(n).dt.convert_time_zone("UTC")
        for n, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)
    )
    return frame.lazy().with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))


def _basis_schema() -> str:
    return ("day date, BillingCurrency string, SubAccountId string, ServiceName string, "
            "PricingCategory string, x_Tenant string, cost double, billing_period string")


def allocate_spark(spark: Any, billing: Any, cfg: AllocationConfig, wh: Warehouse) -> Any:
    """Allocate a Spark DataFrame of FOCUS billing rows (with ``billing_period``)."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
    from pyspark.sql.types import StructType

    basis_struct = StructType.fromDDL(_basis_schema())
    assert isinstance(basis_struct, StructType)
    basis_arrow = to_arrow_schema(basis_struct, timezone="UTC")

    def basis(table: pa.Table) -> pa.Table:
        period = table.column(PERIOD)[0].as_py() if table.num_rows else None
        df = direct_basis(owners(_polars(table), cfg)).with_columns(pl.lit(period).alias(PERIOD))
        # Spark wants its own Arrow types (string, not Polars' large_string).
        return df.select([*BASIS_KEYS, "cost", PERIOD]).to_arrow().cast(basis_arrow)

    parts = billing.groupBy(*PARTITION).applyInArrow(basis, _basis_schema()).toArrow()
    all_basis = pl.from_arrow(parts)
    assert isinstance(all_basis, pl.DataFrame)
    periods = sorted(all_basis[PERIOD].unique().to_list()) or \
        [r[0] for r in billing.select(PERIOD).distinct().collect()]
    specs = {
        period: pool_specs(
            cfg,
            all_basis.filter(pl.col(PERIOD) == period).group_by(BASIS_KEYS).agg(pl.col("cost").sum()),
            wh, period,
        )
        for period in periods
    }

    # The output schema: what the Polars path produces for an empty partition.
    sample = pl.from_arrow(billing.limit(0).toArrow())
    assert isinstance(sample, pl.DataFrame)
    empty = allocate_lazy(owners(_polars(sample.to_arrow()), cfg), [], cfg).collect()
    out_schema = from_arrow_schema(empty.to_arrow().schema)
    out_arrow = to_arrow_schema(out_schema, timezone="UTC")

    def allocate_partition(table: pa.Table) -> pa.Table:
        if not table.num_rows:
            return empty.to_arrow().cast(out_arrow)
        period = table.column(PERIOD)[0].as_py()
        owned = owners(_polars(table), cfg)
        result = allocate_lazy(owned, specs.get(period, []), cfg).collect()
        return result.select(empty.columns).cast(empty.schema).to_arrow().cast(out_arrow)

    return billing.groupBy(*PARTITION).applyInArrow(allocate_partition, out_schema)
