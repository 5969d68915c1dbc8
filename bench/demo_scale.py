"""Generate the demo organisation at scale and print wall time, peak memory and speed.

    .venv/bin/python bench/demo_scale.py --scale 10000000

Writes into a temporary folder (removed afterwards unless ``--keep``); not a test.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from collectors.demo import generate_demo
from finops.state import open_state
from finops.warehouse import Warehouse


def peak_rss_bytes() -> int:
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10_000_000, help="billing rows to generate")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="keep the warehouse folder")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the warehouse")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="demo-scale-", dir=args.dir))
    try:
        state = open_state(home)
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        summary = generate_demo(Warehouse(home), state, seed=args.seed, scale=args.scale)
        wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
        state.close()
        size = sum(p.stat().st_size for p in (home / "billing").rglob("*.parquet"))
        rows = summary.total_rows
        print(f"scale requested   {args.scale:>14,}")
        print(f"billing rows      {rows:>14,}  ({', '.join(f'{k} {v:,}' for k, v in summary.rows.items())})")
        print(f"wall time         {wall:>14.1f} s")
        # On a busy machine wall time says more about the neighbours than about this.
        print(f"CPU time          {cpu:>14.1f} s  (user + system, all threads)")
        print(f"peak RSS          {peak_rss_bytes() / 2**20:>14,.0f} MiB")
        print(f"rows per second   {rows / wall:>14,.0f}")
        print(f"billing on disk   {size / 2**20:>14,.0f} MiB")
        print(f"queries           {summary.queries:>14,}")
        print(f"utilisation rows  {summary.utilization_rows:>14,}")
        for currency, billed in summary.billed_cost.items():
            print(f"billed {currency}        {billed:>14,.2f}  effective "
                  f"{summary.effective_cost[currency]:,.2f}")
        if args.keep:
            print(f"warehouse         {home}")
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
