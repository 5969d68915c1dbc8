"""FinOps cost attribution and optimisation toolkit: the core."""

import os

__version__ = "0.1.0"

# Two Polars streaming-engine defaults, set before any query runs (Polars reads them once;
# an explicit setting in the environment wins). Measured on a 3.1M-row billing period of
# wide FOCUS rows (bench/allocate.py data):
# - The Parquet reader decodes several row groups ahead of the query; that read-ahead,
#   not the query, set the peak of a plain read and write (2.4 GiB ahead 7, 1.1 GiB
#   ahead 1, same time).
# - Allocation turns a pool row into one row per tenant, and pool rows come in clusters
#   (a provider writes a service's lines together), so a 100k-row morsel can become
#   600k wide rows: 2.7 GiB at 100k rows per morsel, 1.6 GiB at 10k; at 8k with 64k-row
#   Parquet groups (finops/warehouse.py), 1.3 GiB on a 15M-row period. CPU time within
#   ~7% of the default.
os.environ.setdefault("POLARS_ROW_GROUP_PREFETCH_SIZE", "1")
os.environ.setdefault("POLARS_IDEAL_MORSEL_SIZE", "8192")
