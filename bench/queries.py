"""Benchmark: Snowflake query cost for 10M queries over 30 days, Polars against DuckDB SQL.

Generates a month of query history and warehouse metering (seeded), then runs the
attribution twice, each in its own process so each peak memory is its own:

- Polars: ``models.query_cost.snowflake_cost`` — the model itself;
- DuckDB: the same computation written in SQL (execution window, hour pieces,
  execution-time shares, exact remainders, idle split by tenant-day, cloud services).

Both read the same Parquet files and write their result to Parquet. It prints wall
time, peak memory (max RSS) and the ratio, and checks both give the same cost per tenant
(to the cent) and the metered total. Targets: Polars no slower than DuckDB, and under
2 GiB peak.

    .venv/bin/python bench/queries.py                  # 10M queries, 30 days
    .venv/bin/python bench/queries.py --queries 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

BASE = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)
PRICE = Decimal("3.00")
GIB = 1 << 30


def generate(out: Path, n: int, days: int, warehouses: int, seed: int,
             chunk: int = 1_000_000) -> None:
    """Queries in the ``queries`` schema (as the collector writes them: 256k-row groups,
    one file per million) and metering in the ``warehouse_metering`` schema."""
    from models.query_rules import parse_query_tag
    from models.query_store import CREDITS, QUERY_SCHEMA

    rng = np.random.default_rng(seed)
    span_us = days * 86_400 * 1_000_000
    base = pl.lit(BASE).cast(pl.Datetime("us", "UTC"))
    (out / "queries").mkdir(exist_ok=True)
    weights = 1 / np.arange(1, warehouses + 1) ** 0.8
    hours = []
    for part, first in enumerate(range(0, n, chunk)):
        size = min(chunk, n - first)
        lo, hi = first * span_us // n, (first + size) * span_us // n
        start_us = np.sort(rng.integers(lo, hi, size))
        compile_ms = rng.integers(5, 800, size)
        queued_ms = np.where(rng.random(size) < 0.05, rng.integers(0, 120_000, size), 0)
        exec_ms = np.minimum(rng.lognormal(np.log(2_500), 1.9, size), 5 * 3_600_000).astype(np.int64)
        exec_ms = np.where(rng.random(size) < 0.03, 0, exec_ms)  # compilation errors, cache hits
        end_us = np.minimum(start_us + (compile_ms + queued_ms + exec_ms) * 1000, span_us - 1)
        tenant = rng.integers(0, 200, size)
        df = pl.DataFrame({
            "i": np.arange(first, first + size),
            "wh": rng.choice(warehouses, size, p=weights / weights.sum()),
            "tenant_i": tenant, "tagged": rng.random(size) > 0.05,
            "start_us": start_us, "end_us": end_us, "exec_ms": exec_ms, "compile_ms": compile_ms,
            "queued_ms": queued_ms, "hash_i": rng.zipf(1.3, size) % 20_000,
            "user_i": rng.integers(0, 500, size),
            "bytes": rng.lognormal(np.log(5e8), 2.0, size).astype(np.int64),
            "cs": rng.exponential(2e-5, size), "fail": rng.random(size) < 0.02,
        })
        q = df.select(
            pl.format("01b4a1f0-0000-{}", pl.col("i").cast(pl.String).str.zfill(22)).alias("query_id"),
            pl.lit(None, pl.String).alias("account"),
            pl.format("WH_{}", pl.col("wh").cast(pl.String).str.zfill(2)).alias("warehouse"),
            pl.lit("Medium").alias("warehouse_size"),
            pl.format("USER_{}", pl.col("user_i")).alias("user_name"),
            pl.format("ROLE_{}", pl.col("user_i") % 40).alias("role_name"),
            pl.format("DB_{}", pl.col("user_i") % 12).alias("database_name"),
            pl.lit("SELECT").alias("query_type"),
            pl.when(pl.col("fail")).then(pl.lit("FAIL")).otherwise(pl.lit("SUCCESS"))
            .alias("execution_status"),
            (base + pl.duration(microseconds=pl.col("start_us"))).alias("start_time"),
            (base + pl.duration(microseconds=pl.col("end_us"))).alias("end_time"),
            pl.col("exec_ms").alias("execution_ms"), pl.col("compile_ms").alias("compilation_ms"),
            pl.col("queued_ms"), pl.col("bytes").alias("bytes_scanned"),
            pl.col("cs").alias("cloud_services_credits"),
            pl.format("ph-{}", pl.col("hash_i")).alias("query_hash"),
            pl.when(pl.col("tagged")).then(pl.format('{{"team":"team{}","tenant":"t{}"}}',
                                                     pl.col("tenant_i") % 20, pl.col("tenant_i")))
            .alias("query_tag"),
            pl.lit("credits").alias("pricing_model"),
        ).with_columns(parse_query_tag(pl.col("query_tag")).alias("tags"))
        q = q.select([(pl.col(c) if c in q.columns else pl.lit(None)).cast(t).alias(c)
                      for c, t in QUERY_SCHEMA.items()])
        q.write_parquet(out / "queries" / f"part-{part:03d}.parquet", row_group_size=256_000)
        hours.append(q.select("warehouse", pl.col("start_time").dt.truncate("1h").alias("h")).unique())
    # Metering: every warehouse-hour that ran a query, plus idle hours (auto-suspend lag).
    all_hours = pl.DataFrame({"h": pl.datetime_range(BASE, BASE + dt.timedelta(days=days),
                                                     "1h", closed="left", time_zone="UTC", eager=True)})
    names = pl.DataFrame({"warehouse": [f"WH_{i:02d}" for i in range(warehouses)]})
    idle = names.join(all_hours, how="cross").sample(fraction=0.05, seed=seed)
    meter = pl.concat([*hours, idle]).unique().sort("warehouse", "h")
    m = len(meter)
    size_of = np.array([1, 2, 4, 8, 16])[rng.integers(0, 5, warehouses)]
    wh_num = meter["warehouse"].str.slice(3).cast(pl.Int32).to_numpy()
    compute = np.round(size_of[wh_num] * rng.uniform(0.05, 1.0, m), 9)
    cloud = np.round(compute * np.where(rng.random(m) < 0.1, rng.uniform(0.1, 0.5, m),
                                        rng.uniform(0, 0.08, m)), 9)
    meter.select(
        "warehouse", pl.col("warehouse").str.slice(3).alias("warehouse_id"),
        pl.col("h").alias("start_time"), (pl.col("h") + pl.duration(hours=1)).alias("end_time"),
        pl.Series("credits_compute", compute).cast(pl.String).cast(CREDITS),
        pl.Series("credits_cloud_services", cloud).cast(pl.String).cast(CREDITS),
    ).write_parquet(out / "metering.parquet")


DUCKDB_SQL = """
SET threads = {threads};
SET preserve_insertion_order = false;
CREATE TEMP TABLE q AS
SELECT (row_number() OVER ()) - 1 AS qid, query_id, query_hash, warehouse, user_name, role_name,
       database_name, execution_status,
       coalesce(nullif(lower(trim(tags['tenant'])), ''), nullif(lower(trim(tags['Tenant'])), ''),
                nullif(lower(trim(tags['TENANT'])), ''), 'unallocated') AS tenant,
       CASE WHEN coalesce(nullif(lower(trim(tags['tenant'])), ''), nullif(lower(trim(tags['Tenant'])), ''),
                          nullif(lower(trim(tags['TENANT'])), '')) IS NULL
            THEN 'unallocated' ELSE 'query_tag:tenant' END AS tenant_rule,
       start_time, end_time, bytes_scanned, coalesce(cloud_services_credits, 0) AS cs_q,
       greatest(end_time - to_milliseconds(greatest(coalesce(execution_ms, 0), 0)), start_time)
           AS exec_start,
       date_trunc('hour', end_time - INTERVAL 1 microsecond) AS h_last
FROM read_parquet('{queries}')
WHERE end_time > TIMESTAMPTZ '{start}' AND start_time < TIMESTAMPTZ '{end}';

CREATE TEMP TABLE pieces AS
WITH b AS (
    SELECT *, CASE WHEN end_time > exec_start THEN date_trunc('hour', exec_start) ELSE h_last END
              AS h_first FROM q),
p AS (
    SELECT qid, h_last AS hour, h_last, epoch_us(end_time) - epoch_us(exec_start) AS usage
    FROM b WHERE h_first = h_last
    UNION ALL
    SELECT qid, hour, h_last,
           epoch_us(least(end_time, hour + INTERVAL 1 hour)) - epoch_us(greatest(exec_start, hour))
    FROM (SELECT *, unnest(generate_series(h_first, h_last, INTERVAL 1 hour)) AS hour
          FROM b WHERE h_first <> h_last))
SELECT row_number() OVER () AS pid, p.qid, q.warehouse AS pool, p.hour, CAST(p.usage AS DOUBLE) AS usage,
       p.hour = p.h_last AS is_last, q.tenant
FROM p JOIN q USING (qid)
WHERE p.hour >= TIMESTAMPTZ '{start}' AND p.hour < TIMESTAMPTZ '{end}';

CREATE TEMP TABLE meter AS
SELECT warehouse AS pool, date_trunc('hour', start_time) AS hour,
       CAST(date_trunc('hour', start_time) AS DATE) AS day,
       sum(credits_compute) AS credits_compute, sum(credits_cloud_services) AS credits_cs
FROM read_parquet('{metering}')
WHERE start_time >= TIMESTAMPTZ '{start}' AND start_time < TIMESTAMPTZ '{end}'
GROUP BY ALL;

CREATE TEMP TABLE hours AS
WITH agg AS (SELECT pool, hour, sum(usage) AS W, arg_max(pid, usage) AS anchor
             FROM pieces WHERE pool IS NOT NULL GROUP BY ALL)
SELECT m.pool, m.hour, m.day, CAST(m.credits_compute AS DOUBLE) AS credits,
       CAST(m.credits_compute * {price} AS DECIMAL(38, 12)) AS cost,
       CASE WHEN coalesce(a.W, 0) <= 0 THEN NULL ELSE a.W END AS T, a.anchor
FROM meter m LEFT JOIN agg a USING (pool, hour)
WHERE m.credits_compute <> 0;

CREATE TEMP TABLE priced AS
SELECT p.*, coalesce(p.usage * h.credits / h.T, 0) AS pool_credits,
       coalesce(CAST(p.usage * CAST(h.cost AS DOUBLE) / h.T AS DECIMAL(38, 12)), 0) AS pool_cost
FROM pieces p LEFT JOIN hours h USING (pool, hour);

CREATE TEMP TABLE by_tenant AS
SELECT pool, hour, tenant, sum(pool_cost) AS raw, sum(pool_credits) AS cr, sum(usage) AS usage
FROM priced WHERE pool IS NOT NULL GROUP BY ALL;

CREATE TEMP TABLE settled AS
WITH s AS (SELECT pool, hour, sum(raw) AS raw, sum(cr) AS cr FROM by_tenant GROUP BY ALL)
SELECT h.pool, h.hour, h.day, h.anchor, h.T IS NULL AS has_idle,
       CASE WHEN h.T IS NULL THEN h.cost - coalesce(s.raw, 0) ELSE 0 END AS idle_cost,
       CASE WHEN h.T IS NULL THEN h.credits - coalesce(s.cr, 0) ELSE 0 END AS idle_credits,
       CASE WHEN h.T IS NULL THEN 0 ELSE h.cost - coalesce(s.raw, 0) END AS residual
FROM hours h LEFT JOIN s USING (pool, hour);

CREATE TEMP TABLE idle_rows AS
WITH daily AS (SELECT pool, day, sum(idle_cost) AS idle_cost, sum(idle_credits) AS idle_credits
               FROM settled WHERE has_idle GROUP BY ALL),
usage AS (SELECT pool, CAST(hour AS DATE) AS day, tenant, sum(usage) AS usage
          FROM by_tenant GROUP BY ALL HAVING sum(usage) > 0),
shared AS (
    SELECT d.pool, d.day, d.idle_cost, d.idle_credits, coalesce(u.tenant, 'idle') AS tenant,
           coalesce(u.usage / sum(u.usage) OVER (PARTITION BY d.pool, d.day), 1.0) AS share
    FROM daily d LEFT JOIN usage u USING (pool, day)),
raw AS (
    SELECT *, CAST(CAST(idle_cost AS DOUBLE) * share AS DECIMAL(38, 12)) AS raw,
           row_number() OVER (PARTITION BY pool, day ORDER BY share DESC, tenant) AS rk
    FROM shared)
SELECT 'idle' AS kind, day, pool AS warehouse, tenant, idle_credits * share AS credits,
       CAST(raw + CASE WHEN rk = 1 THEN idle_cost - sum(raw) OVER (PARTITION BY pool, day) ELSE 0 END
            AS DECIMAL(38, 12)) AS cost
FROM raw;

CREATE TEMP TABLE cs_rows AS
WITH daily AS (
    SELECT day, greatest(sum(credits_cs) - sum(credits_compute) * 0.1, 0) AS cs_billed
    FROM meter GROUP BY ALL),
d AS (SELECT day, cs_billed, CAST(cs_billed * {price} AS DECIMAL(38, 12)) AS cs_cost
      FROM daily WHERE cs_billed > 0),
users AS (
    SELECT p.qid, CAST(p.hour AS DATE) AS day, q.cs_q
    FROM pieces p JOIN q USING (qid) WHERE p.is_last AND q.cs_q > 0),
raw AS (
    SELECT u.qid, u.day, d.cs_cost, CAST(d.cs_billed AS DOUBLE) * u.cs_q / sum(u.cs_q) OVER w AS cs_credits,
           CAST(CAST(d.cs_cost AS DOUBLE) * u.cs_q / sum(u.cs_q) OVER w AS DECIMAL(38, 12)) AS raw,
           row_number() OVER (PARTITION BY u.day ORDER BY u.cs_q DESC, u.qid) AS rk
    FROM users u JOIN d USING (day)
    WINDOW w AS (PARTITION BY u.day))
SELECT qid, cs_credits,
       CAST(raw + CASE WHEN rk = 1 THEN cs_cost - sum(raw) OVER (PARTITION BY day) ELSE 0 END
            AS DECIMAL(38, 12)) AS cs_alloc
FROM raw;

COPY (
    SELECT 'query' AS kind, CAST(p.hour AS DATE) AS day, p.hour, q.query_id, q.query_hash,
           q.warehouse, q.user_name, q.role_name, q.database_name, q.execution_status, q.tenant,
           q.tenant_rule, CAST(p.is_last AS INTEGER) AS queries, p.usage / 1000.0 AS execution_ms,
           CASE WHEN p.is_last THEN coalesce(q.bytes_scanned, 0) / 1e12 ELSE 0 END AS tb_scanned,
           p.pool_credits AS compute_credits,
           CASE WHEN p.is_last THEN coalesce(c.cs_credits, 0) ELSE 0 END AS cloud_services_credits,
           CAST(p.pool_cost + coalesce(s.residual, 0)
                + CASE WHEN p.is_last THEN coalesce(c.cs_alloc, 0) ELSE 0 END AS DECIMAL(38, 12)) AS cost
    FROM priced p
    JOIN q USING (qid)
    LEFT JOIN (SELECT pool, hour, anchor, residual FROM settled WHERE residual <> 0) s
           ON s.pool = p.pool AND s.hour = p.hour AND s.anchor = p.pid
    LEFT JOIN cs_rows c ON c.qid = p.qid
    UNION ALL BY NAME
    SELECT kind, day, warehouse, tenant, credits AS compute_credits, cost FROM idle_rows
) TO '{out}' (FORMAT parquet);
"""


def peak_rss() -> int:
    """This process's peak resident memory since it started (VmHWM; ru_maxrss would include
    the parent's memory at fork)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_polars(data: Path, out: Path, start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    from models.query_cost import snowflake_cost
    from models.query_rules import QueryCostConfig

    t0 = time.perf_counter()
    cost = snowflake_cost(pl.scan_parquet(data / "queries" / "*.parquet"),
                          pl.scan_parquet(data / "metering.parquet"),
                          QueryCostConfig(credit_price=PRICE), start=start, end=end)
    # As the warehouse writes a partition (Warehouse.replace_partition).
    cost.sink_parquet(out, engine="streaming", statistics=True, row_group_size=256_000)
    seconds = time.perf_counter() - t0
    rows = pl.scan_parquet(out).select(pl.len()).collect().item()
    return {"seconds": seconds, "rows": rows}


def run_duckdb(data: Path, out: Path, start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    import duckdb

    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(DUCKDB_SQL.format(
        threads=os.cpu_count() or 1, queries=data / "queries" / "*.parquet",
        metering=data / "metering.parquet", start=start.isoformat(), end=end.isoformat(),
        price=f"CAST({PRICE} AS DECIMAL(18, 6))", out=out))
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()
    con.close()
    return {"seconds": time.perf_counter() - t0, "rows": float(rows[0] if rows else 0)}


def child(engine: str, data: Path, out: Path, days: int) -> None:
    start, end = BASE, BASE + dt.timedelta(days=days)
    cpu = time.process_time()
    result = (run_polars if engine == "polars" else run_duckdb)(data, out, start, end)
    result["cpu_seconds"] = time.process_time() - cpu
    result["peak_bytes"] = peak_rss()
    print(json.dumps(result))


def spawn(engine: str, data: Path, out: Path, days: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", engine, "--data", str(data), "--out", str(out),
         "--days", str(days)],
        capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{engine} run failed")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def compare(data: Path, polars_out: Path, duckdb_out: Path) -> tuple[Decimal, Decimal, Decimal, int]:
    """Metered total, and the largest per-tenant difference between the engines."""
    from models.query_cost import snowflake_expected
    from models.query_rules import QueryCostConfig

    expected = snowflake_expected(pl.scan_parquet(data / "metering.parquet"),
                                  QueryCostConfig(credit_price=PRICE))["cost"].sum()
    a = pl.scan_parquet(polars_out).group_by("tenant").agg(pl.col("cost").sum().alias("a"))
    b = pl.scan_parquet(duckdb_out).group_by("tenant").agg(pl.col("cost").sum().alias("b"))
    both = a.join(b, on="tenant", how="full", coalesce=True).collect()
    diff = both.select((pl.col("a").fill_null(0) - pl.col("b").fill_null(0)).abs().max()).item()
    queries = pl.scan_parquet(polars_out).select(pl.col("queries").sum()).collect().item()
    return expected, both["a"].sum(), diff, int(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--warehouses", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, help="Reuse (or keep) the generated data here.")
    parser.add_argument("--child", choices=["polars", "duckdb"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.out, args.days)
        return
    with tempfile.TemporaryDirectory(prefix="finops-bench-queries-") as tmp:
        data = args.data or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        if not (data / "queries").is_dir():
            t0 = time.perf_counter()
            generate(data, args.queries, args.days, args.warehouses, args.seed)
            print(f"generated {args.queries:,} queries over {args.days} days in "
                  f"{time.perf_counter() - t0:.1f}s")
        n = pl.scan_parquet(data / "queries" / "*.parquet").select(pl.len()).collect().item()
        hours = pl.scan_parquet(data / "metering.parquet").select(pl.len()).collect().item()
        print(f"input: {n:,} queries, {hours:,} metered warehouse-hours, {os.cpu_count()} cores")
        polars = spawn("polars", data, Path(tmp) / "polars.parquet", args.days)
        duck = spawn("duckdb", data, Path(tmp) / "duckdb.parquet", args.days)
        expected, total, diff, counted = compare(data, Path(tmp) / "polars.parquet",
                                                 Path(tmp) / "duckdb.parquet")
        ratio = polars["seconds"] / duck["seconds"]
        for name, r in (("polars", polars), ("duckdb", duck)):
            print(f"{name:7s}: wall {r['seconds']:7.2f}s  cpu {r['cpu_seconds']:7.2f}s  "
                  f"peak {r['peak_bytes'] / GIB:5.2f} GiB  {int(r['rows']):,} rows")
        print(f"ratio polars/duckdb: wall {ratio:.2f}, cpu "
              f"{polars['cpu_seconds'] / duck['cpu_seconds']:.2f}  (target <= 1.00); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"metered cost {expected:.2f}, attributed {total:.2f}, queries counted {counted:,}; "
              f"largest per-tenant difference between engines {diff:.6f}")
        ok = (ratio <= 1.0 and polars["peak_bytes"] < 2 * GIB and abs(expected - total) < Decimal("0.005")
              and diff < Decimal("0.01"))
        print("targets: " + ("met" if ok else "NOT met"))


if __name__ == "__main__":
    main()
