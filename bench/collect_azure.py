"""Collect a generated Azure EA amortized cost export of N rows (default 5M): rows per
second, peak RSS, and whether it reconciled.

    .venv/bin/python bench/collect_azure.py [--rows 5000000] [--csv]

The rows are the real EA amortized sample's 28 rows (reservation, savings plan and
on-demand usage, tags, AdditionalInfo) repeated, with the day, cost, resource and a tag
varied per row, written as Parquet files of 250k rows (or as one CSV with --csv), every
field text as Cost Management writes it. ``finops collect azure --path`` then runs in its
own process, measured from outside.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.measure import finops_cmd, run_child

SAMPLE = (Path(__file__).resolve().parents[2] / "shared" / "data" / "samples" / "azure-ea"
          / "EA_AmortizedCost_Small.csv")
ROWS_PER_FILE = 250_000


def chunk(template: pl.DataFrame, start: int, size: int) -> pl.DataFrame:
    """Rows ``start`` to ``start + size``: resource r = row // 30 has one row a day for 30
    days, as a daily export has; its template row, cost and a tag vary with r."""
    idx = pl.int_range(start, start + size, eager=True, dtype=pl.Int64)
    resource = idx // 30
    day = (idx % 30 + 1).cast(pl.String).str.zfill(2)
    rows = template.select(pl.all().gather(resource % template.height))
    scale = (1 + (idx % 97) / 100).alias("scale")
    return rows.with_columns(
        pl.concat_str([pl.lit("09/"), day, pl.lit("/2023")]).alias("Date"),
        (pl.col("Cost").cast(pl.Float64) * scale).round(10).cast(pl.String).alias("Cost"),
        pl.concat_str([pl.col("ResourceId"), pl.lit("-"), (resource % 100_000).cast(pl.String)])
        .alias("ResourceId"),
        pl.concat_str([pl.col("Tags"), pl.lit(',"team": "t'), (resource % 40).cast(pl.String), pl.lit('"')])
        .alias("Tags"),
    )


def write_export(folder: Path, rows: int, *, as_csv: bool) -> None:
    template = pl.read_csv(SAMPLE, infer_schema=False)
    if as_csv:
        with (folder / "amortized.csv").open("wb") as fh:
            for n, start in enumerate(range(0, rows, ROWS_PER_FILE)):
                chunk(template, start, min(ROWS_PER_FILE, rows - start)).write_csv(fh, include_header=n == 0)
        return
    for n, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        chunk(template, start, min(ROWS_PER_FILE, rows - start)).write_parquet(
            folder / f"part_{n:05d}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--csv", action="store_true", help="one CSV file instead of Parquet parts")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export"
        export.mkdir()
        write_export(export, args.rows, as_csv=args.csv)
        size = sum(p.stat().st_size for p in export.iterdir()) / 2**20
        result = run_child(finops_cmd("collect", "azure", "--path", str(export), "--home",
                                      str(Path(tmp) / "wh"), "--format", "csv"))
        if result.returncode != 0:
            print(result.stderr)
            raise SystemExit(1)
        table = pl.read_csv(result.stdout.encode())
        reconciled = bool(table["reconciled"].all())
        loaded = int(table["rows"].sum())
        assert loaded == args.rows, f"loaded {loaded} rows, not {args.rows}"
    kind = "CSV" if args.csv else "Parquet"
    print(f"collect azure: {args.rows:,} EA amortized rows ({kind}, {size:,.1f} MiB) in "
          f"{result.wall_seconds:.1f} s ({args.rows / result.wall_seconds:,.0f} rows/s), "
          f"peak RSS {result.peak_rss_mib:,.0f} MiB, reconciled to the cent: {reconciled}")


if __name__ == "__main__":
    main()
