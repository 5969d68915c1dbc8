"""Benchmark: ``collect gcp`` on a generated Google Cloud Billing export.

Generates N rows shaped like the detailed usage cost export (nested: service, sku,
project with labels, labels, system labels, location, resource, usage, credits with SUD
and CUD credits, commitment fees, tax), vectorised, into a temporary Parquet or JSON
lines file, then times the collect in a child process and prints rows/s, the child's
CPU time and its own peak RSS (VmHWM: not the generator's memory inherited at fork).

    python bench/collect_gcp.py [--rows 5000000] [--format parquet|jsonl] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]

SERVICES = [
    ("6F81-5844-456A", "Compute Engine"), ("95FF-2EF5-5EA1", "Cloud Storage"),
    ("24E6-581D-38E5", "BigQuery"), ("9662-B51E-5089", "Cloud SQL"),
    ("CCD8-9BF1-090E", "Kubernetes Engine"), ("E505-1604-58F8", "Networking"),
]
SKUS = [(f"{i:04X}-{(i * 7) % 65536:04X}-{(i * 13) % 65536:04X}", f"SKU {i} running in Americas")
        for i in range(40)]
REGIONS = ["us-central1", "us-east1", "europe-west1", "asia-east1"]


def generate(n: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    kv = pl.Struct({"key": pl.String, "value": pl.String})
    projects = [
        {"id": f"proj-{p}", "number": str(100000000000 + p), "name": f"Project {p}",
         "labels": [{"key": "team", "value": f"team-{p % 12}"}, {"key": "env", "value": "prod"}],
         "ancestry_numbers": f"/42/{100000000000 + p}/"}
        for p in range(60)
    ]
    label_sets = [[{"key": "app", "value": f"app-{i}"}] + ([{"key": "tenant", "value": f"t{i % 9}"}]
                                                          if i % 3 else []) for i in range(200)]
    label_sets.append([])
    service_idx = rng.integers(0, len(SERVICES), n)
    sku_idx = rng.integers(0, len(SKUS), n)
    region_idx = rng.integers(0, len(REGIONS), n)
    start = (np.datetime64("2024-03-01T00:00:00") + rng.integers(0, 24 * 91, n).astype("timedelta64[h]")
             ).astype("datetime64[us]")
    cost = np.round(rng.gamma(0.6, 2.0, n), 6)
    kind = rng.random(n)
    is_fee = kind < 0.002
    is_tax = (kind >= 0.002) & (kind < 0.003)
    has_cud = (kind >= 0.003) & (kind < 0.10)
    has_sud = (kind >= 0.10) & (kind < 0.35)
    cost = np.where(is_fee, np.round(cost * 10, 6), cost)
    df = pl.DataFrame({
        "_svc": service_idx, "_sku": sku_idx, "_region": region_idx,
        "_proj": rng.integers(0, len(projects), n), "_labels": rng.integers(0, len(label_sets), n),
        "usage_start_time": start, "_export_lag": rng.integers(3, 72, n), "cost": cost,
        "_fee": is_fee, "_tax": is_tax, "_cud": has_cud, "_sud": has_sud,
        "_amount": np.round(rng.gamma(2.0, 1800.0, n), 3), "_vm": rng.integers(0, 5000, n),
    })
    proj = pl.Series("project", projects)
    labels = pl.Series("labels", label_sets, dtype=pl.List(kv))
    svc = pl.Series("service", [{"id": a, "description": b} for a, b in SERVICES])
    sku = pl.Series("sku", [{"id": a, "description": b} for a, b in SKUS])
    region = pl.Series("region", REGIONS)
    t = pl.col("usage_start_time").dt.replace_time_zone("UTC")
    credit = pl.Struct({"name": pl.String, "amount": pl.Float64, "full_name": pl.String,
                        "id": pl.String, "type": pl.String})
    sud = pl.concat_list(pl.struct(
        pl.lit("Sustained usage discount").alias("name"), (-(pl.col("cost") * 0.2).round(6)).alias("amount"),
        pl.lit(None, pl.String).alias("full_name"), pl.lit("SustainedUsageDiscount").alias("id"),
        pl.lit("SUSTAINED_USAGE_DISCOUNT").alias("type")))
    cud = pl.concat_list(pl.struct(
        pl.lit("Committed use discount: CPU").alias("name"), (-pl.col("cost")).alias("amount"),
        pl.lit("Committed use discount: CPU").alias("full_name"),
        pl.lit("CommittedUsageDiscount:1").alias("id"), pl.lit("COMMITTED_USAGE_DISCOUNT").alias("type")))
    return df.select(
        pl.lit("01A2B3-C4D5E6-F7A8B9").alias("billing_account_id"),
        pl.col("_svc").map_batches(
            svc.gather, return_dtype=svc.dtype).alias("service"),
        pl.when(pl.col("_fee")).then(pl.struct(pl.lit("B2BA-9E4F-9E30").alias("id"),
                                               pl.lit("Commitment v1: Cpu in Americas for 1 Year")
                                               .alias("description")))
        .when(pl.col("_tax")).then(pl.struct(pl.lit("TAX").alias("id"), pl.lit("Tax").alias("description")))
        .otherwise(pl.col("_sku").map_batches(sku.gather, return_dtype=sku.dtype))
        .alias("sku"),
        t.alias("usage_start_time"),
        (t + pl.duration(hours=1)).alias("usage_end_time"),
        pl.col("_proj").map_batches(proj.gather, return_dtype=proj.dtype).alias("project"),
        pl.col("_labels").map_batches(labels.gather, return_dtype=labels.dtype).alias("labels"),
        pl.lit([], pl.List(kv)).alias("system_labels"),
        pl.struct(
            pl.col("_region").map_batches(region.gather, return_dtype=pl.String).alias("location"),
            pl.lit("US").alias("country"),
            pl.col("_region").map_batches(region.gather, return_dtype=pl.String).alias("region"),
            pl.lit(None, pl.String).alias("zone"),
        ).alias("location"),
        pl.struct(pl.format("vm-{}", pl.col("_vm")).alias("name"),
                  pl.format("//compute.googleapis.com/projects/p/zones/z/instances/{}", pl.col("_vm"))
                  .alias("global_name")).alias("resource"),
        (t + pl.duration(hours=pl.col("_export_lag"))).alias("export_time"),
        pl.col("cost"),
        pl.lit("USD").alias("currency"),
        pl.lit(1.0).alias("currency_conversion_rate"),
        pl.struct(pl.col("_amount").alias("amount"), pl.lit("seconds").alias("unit"),
                  (pl.col("_amount") / 3600).alias("amount_in_pricing_units"),
                  pl.lit("hour").alias("pricing_unit")).alias("usage"),
        pl.when(pl.col("_cud")).then(cud).when(pl.col("_sud")).then(sud)
        .otherwise(pl.lit([], pl.List(credit))).alias("credits"),
        pl.struct(t.dt.convert_time_zone("America/Los_Angeles").dt.strftime("%Y%m").alias("month"))
        .alias("invoice"),
        pl.when(pl.col("_tax")).then(pl.lit("tax")).otherwise(pl.lit("regular")).alias("cost_type"),
        (pl.col("cost") * 1.2).round(6).alias("cost_at_list"),
    )


def collect_child(path: Path, home: Path) -> None:
    from collectors.gcp import collect_gcp_files
    from finops.state import open_state
    from finops.warehouse import Warehouse

    wh = Warehouse(home)
    state = open_state(home)
    t0 = time.perf_counter()
    result = collect_gcp_files(wh, state, path, source="bench", max_rejected_share=0.0)
    elapsed = time.perf_counter() - t0
    ok = all(r.reconciled for r in result.reconciliation)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"seconds": elapsed, "rows": result.rows_out, "rejected": result.rows_rejected,
                      "reconciled": ok, "periods": result.periods, "peak_mb": peak_rss_mb(),
                      "cpu_seconds": usage.ru_utime + usage.ru_stime}))


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM, reset by exec). ``ru_maxrss`` of a child counts
    the parent's resident memory at fork, here the generated export: gigabytes at 5M rows."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--format", choices=["parquet", "jsonl"], default="parquet")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        collect_child(Path(args.child[0]), Path(args.child[1]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-gcp-") as tmp:
        t0 = time.perf_counter()
        df = generate(args.rows)
        path = Path(tmp) / f"export.{args.format}"
        if args.format == "parquet":
            df.write_parquet(path)
        else:
            df.with_columns(
                pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S UTC")
                for c in ("usage_start_time", "usage_end_time", "export_time")
            ).write_ndjson(path)
        del df
        gen = time.perf_counter() - t0
        size = path.stat().st_size / 1e6
        print(f"generated {args.rows:,} rows ({args.format}, {size:,.0f} MB) in {gen:.1f}s", flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(path), str(Path(tmp) / "wh")],
            capture_output=True, text=True, cwd=ROOT, check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr[-4000:], file=sys.stderr)
            sys.exit(1)
        stats = json.loads(proc.stdout.strip().splitlines()[-1])
        # CPU time as well as wall time: on a shared machine the wall time moves with the load.
        print(f"collect gcp: {stats['rows']:,} rows in {stats['seconds']:.1f}s = "
              f"{stats['rows'] / stats['seconds']:,.0f} rows/s; CPU {stats['cpu_seconds']:.1f}s; "
              f"peak RSS {stats['peak_mb']:,.0f} MB; reconciled={stats['reconciled']}; "
              f"periods {', '.join(stats['periods'])}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
