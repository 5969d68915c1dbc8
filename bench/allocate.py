"""Allocation at scale: the Polars engine against the same rules in DuckDB SQL, and against
just reading and writing the same Parquet with no rules. All three run in the same run,
each in its own process so each peak RSS is its own.

    .venv/bin/python bench/allocate.py --rows 20000000 [--home DIR] [--keep]

Data: `finops demo --scale ROWS` (generated into --home unless it already holds billing
data). Rules: the demo's allocation config plus generated virtual-tag rules, 50 rules in
all, and its 6 shared pools plus the 3 built-in ones. Both engines write the allocated
ledger (the columns of ``LEDGER_FOCUS``, lineage and allocation); the baseline reads and
writes every billing column.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.measure import run_child

RULES = 50


def bench_config(home: Path) -> Path:
    """The demo rules, plus virtual tags up to 50 rules (account/service/resource matches)."""
    import yaml

    demo = yaml.safe_load((Path(__file__).resolve().parents[1] / "models/allocation/demo.yaml").read_text())
    tenants = [t["id"] for t in demo["tenants"] if t["id"] != "internal"]
    services = ["Amazon Elastic Compute Cloud", "Amazon Simple Storage Service", "Compute Engine",
                "Virtual Machines", "Cloud Storage", "AWS Lambda", "Amazon SageMaker"]
    n = len(demo["rules"])
    while len(demo["rules"]) < RULES:
        i = len(demo["rules"]) - n
        demo["rules"].append({
            "id": f"vt-generated-{i:02d}",
            "match": {"service": services[i % len(services)], "resource": f"*-{i % 10:02d}",
                      "region": ["us-east-1", "us-west-2", "europe-west1", "eastus", "westeurope"][i % 5],
                      "untagged": True},
            "set": {"tenant": tenants[i % len(tenants)]},
        })
    path = home / "bench-allocation.yaml"
    path.write_text(yaml.safe_dump(demo, sort_keys=False))
    return path


def child(stage: str, home: Path, config: Path, out: Path) -> None:
    import polars as pl

    from finops.state import open_state
    from finops.warehouse import Warehouse
    from models.allocation import load_config

    wh = Warehouse(home)
    if stage == "generate":
        from collectors.demo import generate_demo

        generate_demo(wh, open_state(home), scale=int(out.name))
    elif stage == "baseline":
        for path, keys in wh.partition_files("billing"):
            target = out / f"{keys['source']}-{keys['billing_period']}.parquet"
            pl.scan_parquet(path).sink_parquet(target, engine="streaming")
    elif stage == "polars":
        from models.allocation import allocate

        allocate(wh, open_state(home), config=load_config(config))
    elif stage == "duckdb":
        import duckdb

        from bench.allocate_sql import allocation_sql
        from models.allocation.engine import LEDGER_FOCUS

        # The same ledger as the Polars path writes (models/allocation/ledger.py).
        sample = pl.scan_parquet(wh.partition_files("billing")[0][0]).collect_schema().names()
        columns = [c for c in LEDGER_FOCUS if c in sample] + ["x_SourceFile", "x_SourceRow", "source",
                                                              "billing_period"]
        con = duckdb.connect()
        # DuckDB's own default memory limit (80% of RAM) unless FINOPS_BENCH_DUCKDB_MEMORY
        # bounds it, e.g. to the Polars path's 2 GB budget; beyond it, DuckDB spills to
        # disk (at 100M rows and 8GB, more than the 42 GB of disk we had).
        con.execute(f"SET temp_directory = '{out}/tmp'")
        limit = os.environ.get("FINOPS_BENCH_DUCKDB_MEMORY")
        if limit:
            con.execute(f"SET memory_limit = '{limit}'")
        con.execute("SET preserve_insertion_order = false")
        for statement in allocation_sql(load_config(config), f"{home}/billing/*/*/*.parquet",
                                        str(out / "allocated"), columns):
            con.execute(statement)
    elif stage == "totals":
        polars_side = wh.scan("allocated").group_by("x_Tenant", "BillingCurrency").agg(
            pl.col("EffectiveCost").sum()).collect()
        duck = pl.scan_parquet(f"{out}/allocated/**/*.parquet", hive_partitioning=True).group_by(
            "x_Tenant", "BillingCurrency").agg(pl.col("EffectiveCost").sum()).collect()
        joined = polars_side.join(duck, on=["x_Tenant", "BillingCurrency"], how="full", suffix="_duck")
        diff = joined.select((pl.col("EffectiveCost") - pl.col("EffectiveCost_duck")).abs().max()).item()
        rows = pl.scan_parquet(f"{out}/allocated/**/*.parquet").select(pl.len()).collect().item()
        print(json.dumps({"max_tenant_difference": str(diff), "duckdb_rows": rows,
                          "polars_rows": wh.scan("allocated").select(pl.len()).collect().item()}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the generated warehouse")
    parser.add_argument("--without-duckdb", action="store_true",
                        help="time the baseline and Polars only (for quick iterations)")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        child(args.stage, args.home, args.config, args.out)
        return

    home = args.home or Path(tempfile.mkdtemp(prefix="finops-bench-"))
    me = [sys.executable, __file__]
    try:
        from finops.warehouse import Warehouse

        if not Warehouse(home).has_data("billing"):
            gen = run_child([*me, "--stage", "generate", "--home", str(home), "--config", "x",
                             "--out", str(args.rows)])
            if gen.returncode:
                raise SystemExit(gen.stderr)
            print(f"generated {args.rows:,} rows in {gen.wall_seconds:.0f} s "
                  f"(peak {gen.peak_rss_mib:,.0f} MiB)")
        config = bench_config(home)
        scratch = Path(tempfile.mkdtemp(prefix="finops-bench-out-", dir=home.parent))
        results = {}
        stages = ("baseline", "polars") if args.without_duckdb else ("baseline", "polars", "duckdb")
        for stage in stages:
            out = scratch / stage
            (out / "tmp").mkdir(parents=True)
            m = run_child([*me, "--stage", stage, "--home", str(home), "--config", str(config),
                           "--out", str(out)])
            if m.returncode:
                raise SystemExit(f"{stage} failed:\n{m.stderr[-3000:]}")
            results[stage] = m
            print(f"{stage:9s} wall {m.wall_seconds:7.1f} s   peak RSS {m.peak_rss_mib:8,.0f} MiB")
        p, b = (results[s].wall_seconds for s in ("polars", "baseline"))
        if args.without_duckdb:
            print(f"rows {args.rows:,}: polars/read+write = {p / b:.2f} (target <= 2.0), polars peak "
                  f"{results['polars'].peak_rss_mib / 1024:.2f} GiB (target <= 2 GiB)")
            shutil.rmtree(scratch, ignore_errors=True)
            return
        check = run_child([*me, "--stage", "totals", "--home", str(home), "--config", str(config),
                           "--out", str(scratch / "duckdb")])
        totals = json.loads(check.stdout.strip().splitlines()[-1])
        d = results["duckdb"].wall_seconds
        print(f"rows {args.rows:,}: polars/duckdb = {p / d:.2f} (target <= 1.0), "
              f"polars/read+write = {p / b:.2f} (target <= 2.0), polars peak "
              f"{results['polars'].peak_rss_mib / 1024:.2f} GiB (target <= 2 GiB); "
              f"allocated rows polars {totals['polars_rows']:,} duckdb {totals['duckdb_rows']:,}, "
              f"largest per-tenant difference {totals['max_tenant_difference']}")
        shutil.rmtree(scratch, ignore_errors=True)
    finally:
        if not args.keep and not args.home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
