"""Collect a generated CUR 2.0 export of N rows (default 5M): rows per second, peak RSS.

    .venv/bin/python bench/collect_aws.py [--rows 5000000]

The export is written first (Parquet, several files, like Data Exports delivers), then
``finops collect aws --path`` runs in its own process, measured from outside.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.measure import finops_cmd, run_child
from tests.collectors.aws_cur import cur2_frame

ROWS_PER_FILE = 1_000_000


def write_export(folder: Path, rows: int) -> None:
    template = cur2_frame("2026-01")
    reps = -(-ROWS_PER_FILE // template.height)
    for n, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        size = min(ROWS_PER_FILE, rows - start)
        idx = pl.int_range(start, start + size, eager=True)
        chunk = template.select(pl.all().repeat_by(reps).explode()).head(size).with_columns(
            (pl.lit("i-") + (idx % 50_000).cast(pl.String)).alias("line_item_resource_id"),
            (pl.col("line_item_unblended_cost") * (1 + (idx % 97) / 100)).alias("line_item_unblended_cost"),
        )
        chunk.write_parquet(folder / f"part-{n:05d}.snappy.parquet")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=5_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "export"
        export.mkdir()
        write_export(export, args.rows)
        result = run_child(finops_cmd("collect", "aws", "--path", str(export), "--home",
                                      str(Path(tmp) / "wh"), "--format", "csv"))
        if result.returncode != 0:
            print(result.stderr)
            raise SystemExit(1)
        table = pl.read_csv(result.stdout.encode())
        reconciled = bool(table["reconciled"].all())
        loaded = int(table["rows"].sum())
        assert loaded == args.rows, f"loaded {loaded} rows, not {args.rows}"
    print(f"collect aws: {args.rows:,} CUR 2.0 rows in {result.wall_seconds:.1f} s "
          f"({args.rows / result.wall_seconds:,.0f} rows/s), peak RSS {result.peak_rss_mib:,.0f} MiB, "
          f"reconciled to the cent: {reconciled}")


if __name__ == "__main__":
    main()
