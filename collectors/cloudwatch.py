"""Utilisation from CloudWatch (``finops collect cloudwatch``): EC2 and RDS, through
GetMetricData, batched and paginated.

Per EC2 instance (``AWS/EC2``, dimension ``InstanceId``): ``CPUUtilization`` →
``cpu_percent``; ``NetworkIn`` + ``NetworkOut`` → ``network_bytes``; ``EBSReadBytes`` +
``EBSWriteBytes`` + ``DiskReadBytes`` + ``DiskWriteBytes`` → ``disk_bytes``; memory from the
CloudWatch agent where it publishes (``CWAgent`` ``mem_used_percent``, or Windows'
``Memory % Committed Bytes In Use``, found with ListMetrics, whatever extra dimensions
the agent appends) → ``memory_percent``.

Per RDS instance (``AWS/RDS``, ``DBInstanceIdentifier``; resource id = the instance ARN,
as bills name it): ``CPUUtilization``; ``NetworkReceiveThroughput`` +
``NetworkTransmitThroughput`` and ``ReadThroughput`` + ``WriteThroughput`` (bytes per
second, × period); ``FreeableMemory`` (its minimum per period) → ``memory_percent`` =
100 × (1 − free / the class's memory from the catalog).

Statistics per period (300 s by default): CPU the ``Average`` (``--cpu-stat`` to change),
memory the ``Maximum``, bytes the ``Sum``. Queries go in batches of at most 500 (the API's
limit; ``--batch-size``), and the time range is cut so that one call asks for at most
100,800 data points; each call follows ``NextToken`` until the last page (``--page-size``
sets ``MaxDatapoints``). Re-collecting a window replaces the samples of the queried
resources in it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl

from collectors.aws_inventory import aws_errors, aws_session, client, ec2_instances, rds_instances, regions_of
from collectors.utilization import UTIL_SCHEMA, StoreResult, check_source, store_utilization
from finops.errors import BadInputError
from finops.progress import progress
from finops.state import State
from finops.warehouse import Warehouse
from models.rightsizing.catalog import Catalog, load_catalog

MAX_QUERIES: Final = 500
MAX_DATAPOINTS: Final = 100_800
Points = dict[int, list[tuple[dt.datetime, float]]]
MEMORY_METRICS: Final = ("mem_used_percent", "Memory % Committed Bytes In Use")
RUNNING: Final = ("running", "pending", "stopping")


@dataclass(frozen=True)
class MetricQuery:
    resource_id: str
    metric: str  # cpu_percent | memory_percent | network_bytes | disk_bytes
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    stat: str
    scale: float = 1.0  # multiply each value (bytes/s × period)
    memory_total: float | None = None  # bytes: value is free memory, turn into % used

    def request(self, qid: str, period: int) -> dict[str, Any]:
        return {
            "Id": qid,
            "MetricStat": {
                "Metric": {"Namespace": self.namespace, "MetricName": self.name,
                           "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions]},
                "Period": period, "Stat": self.stat,
            },
            "ReturnData": True,
        }

    def value(self, raw: float) -> float:
        if self.memory_total:
            return min(100.0, max(0.0, 100.0 * (1.0 - raw / self.memory_total)))
        return raw * self.scale


@dataclass
class FetchStats:
    queries: int = 0
    batches: int = 0
    calls: int = 0
    pages: int = 0  # responses that carried a NextToken
    partial: list[str] = field(default_factory=list)


@dataclass
class CloudWatchResult:
    store: StoreResult
    stats: FetchStats
    resources: int
    window: tuple[dt.datetime, dt.datetime]

    def frame(self) -> pl.DataFrame:
        return self.store.frame().with_columns(
            pl.lit(self.resources).alias("resources_queried"), pl.lit(self.stats.queries).alias("queries"),
            pl.lit(self.stats.batches).alias("batches"), pl.lit(self.stats.calls).alias("api_calls"),
            pl.lit(self.stats.pages).alias("next_tokens"),
            pl.lit(self.window[0].isoformat()).alias("start"),
            pl.lit(self.window[1].isoformat()).alias("end"),
        )


def ec2_queries(instance_id: str, cpu_stat: str) -> list[MetricQuery]:
    dims = (("InstanceId", instance_id),)
    out = [MetricQuery(instance_id, "cpu_percent", "AWS/EC2", "CPUUtilization", dims, cpu_stat)]
    out += [MetricQuery(instance_id, "network_bytes", "AWS/EC2", n, dims, "Sum")
            for n in ("NetworkIn", "NetworkOut")]
    out += [MetricQuery(instance_id, "disk_bytes", "AWS/EC2", n, dims, "Sum")
            for n in ("EBSReadBytes", "EBSWriteBytes", "DiskReadBytes", "DiskWriteBytes")]
    return out


def rds_queries(arn: str, identifier: str, memory_gib: float | None, period: int,
                cpu_stat: str) -> list[MetricQuery]:
    dims = (("DBInstanceIdentifier", identifier),)
    out = [MetricQuery(arn, "cpu_percent", "AWS/RDS", "CPUUtilization", dims, cpu_stat)]
    out += [MetricQuery(arn, "network_bytes", "AWS/RDS", n, dims, "Average", float(period))
            for n in ("NetworkReceiveThroughput", "NetworkTransmitThroughput")]
    out += [MetricQuery(arn, "disk_bytes", "AWS/RDS", n, dims, "Average", float(period))
            for n in ("ReadThroughput", "WriteThroughput")]
    if memory_gib:
        out.append(MetricQuery(arn, "memory_percent", "AWS/RDS", "FreeableMemory", dims, "Minimum",
                               memory_total=memory_gib * 2**30))
    return out


def memory_queries(cw: Any, instance_ids: Sequence[str]) -> list[MetricQuery]:
    """CloudWatch agent memory metrics of these instances, found with ListMetrics."""
    wanted = set(instance_ids)
    found: dict[str, MetricQuery] = {}
    for name in MEMORY_METRICS:
        for page in cw.get_paginator("list_metrics").paginate(Namespace="CWAgent", MetricName=name):
            for m in page.get("Metrics", []):
                # Asked back in the order ListMetrics gives them (the order they were put).
                dims = tuple((d["Name"], d["Value"]) for d in m.get("Dimensions", []))
                iid = dict(dims).get("InstanceId")
                if iid in wanted:
                    q = MetricQuery(iid, "memory_percent", "CWAgent", name, dims, "Maximum")
                    # One series per instance: the one with the fewest extra dimensions.
                    old = found.get(iid)
                    if old is None or (len(dims), sorted(dims)) < (len(old.dimensions),
                                                                   sorted(old.dimensions)):
                        found[iid] = q
    return [found[i] for i in sorted(found)]


def fetch(cw: Any, queries: Sequence[MetricQuery], start: dt.datetime, end: dt.datetime, *,
          period: int, batch_size: int = MAX_QUERIES, page_size: int | None = None,
          max_datapoints: int = MAX_DATAPOINTS) -> tuple[Points, FetchStats]:
    """Values of every query (by its index), from as few GetMetricData calls as the limits allow."""
    if not 1 <= batch_size <= MAX_QUERIES:
        raise BadInputError(f"--batch-size {batch_size} is outside 1..{MAX_QUERIES}",
                            hint=f"GetMetricData takes at most {MAX_QUERIES} queries per call.")
    stats = FetchStats(queries=len(queries))
    out: dict[int, list[tuple[dt.datetime, float]]] = defaultdict(list)
    batches = [list(range(i, min(i + batch_size, len(queries)))) for i in range(0, len(queries), batch_size)]
    span = dt.timedelta(seconds=period)
    n_periods = max(1, math.ceil((end - start) / span))
    with progress("GetMetricData batches", len(batches)) as step:
        for batch in batches:
            stats.batches += 1
            per_call = max(1, min(n_periods, max_datapoints // len(batch)))
            requests = [queries[i].request(f"q{i}", period) for i in batch]
            chunk_start = start
            while chunk_start < end:
                chunk_end = min(end, chunk_start + per_call * span)
                token: str | None = None
                while True:
                    kwargs: dict[str, Any] = {"MetricDataQueries": requests, "StartTime": chunk_start,
                                              "EndTime": chunk_end, "ScanBy": "TimestampAscending"}
                    if page_size:
                        kwargs["MaxDatapoints"] = page_size
                    if token:
                        kwargs["NextToken"] = token
                    response = cw.get_metric_data(**kwargs)
                    stats.calls += 1
                    for result in response.get("MetricDataResults", []):
                        idx = int(result["Id"][1:])
                        out[idx].extend(zip(result.get("Timestamps", []), result.get("Values", []),
                                            strict=False))
                        if result.get("StatusCode") not in (None, "Complete", "PartialData"):
                            stats.partial.append(f"{queries[idx].resource_id} {queries[idx].name}: "
                                                 f"{result.get('StatusCode')}")
                    token = response.get("NextToken")
                    if not token:
                        break
                    stats.pages += 1
                chunk_start = chunk_end
            step.advance(f"{len(batch)} queries")
    return out, stats


def samples(queries: Sequence[MetricQuery], values: Points) -> pl.DataFrame:
    """One row per (timestamp, resource, metric): the queries of one metric summed."""
    ts: list[dt.datetime] = []
    rid: list[str] = []
    metric: list[str] = []
    val: list[float] = []
    for i, points in values.items():
        q = queries[i]
        for t, v in points:
            ts.append(t.astimezone(dt.UTC) if t.tzinfo else t.replace(tzinfo=dt.UTC))
            rid.append(q.resource_id)
            metric.append(q.metric)
            val.append(q.value(float(v)))
    df = pl.DataFrame({"timestamp": ts, "resource_id": rid, "metric": metric, "value": val},
                      schema=UTIL_SCHEMA)
    # The same query's point may come twice across pages; keep it once, then add up.
    return (df.unique(maintain_order=True)
            .group_by("timestamp", "resource_id", "metric").agg(pl.col("value").sum())
            .sort("resource_id", "metric", "timestamp"))


def build_queries(session: Any, region: str, catalog: Catalog, *, period: int,
                  cpu_stat: str) -> tuple[list[MetricQuery], list[str]]:
    """The queries for every running EC2 and RDS instance of ``region``, and their ids."""
    queries: list[MetricQuery] = []
    ids: list[str] = []
    instances = [i for i in ec2_instances(session, region)
                 if (i.get("State") or {}).get("Name") in RUNNING]
    for inst in instances:
        queries += ec2_queries(inst["InstanceId"], cpu_stat)
        ids.append(inst["InstanceId"])
    queries += memory_queries(client(session, "cloudwatch", region), ids)
    for db in rds_instances(session, region):
        arn = db.get("DBInstanceArn") or db["DBInstanceIdentifier"]
        spec = catalog.spec("aws", db.get("DBInstanceClass"))
        queries += rds_queries(arn, db["DBInstanceIdentifier"], spec.memory_gib if spec else None,
                               period, cpu_stat)
        ids.append(arn)
    return queries, ids


def collect_cloudwatch(wh: Warehouse, state: State, *, regions: Sequence[str] = (),
                       start: dt.datetime | None = None, end: dt.datetime | None = None,
                       days: int = 14, period: int = 300, cpu_stat: str = "Average",
                       batch_size: int = MAX_QUERIES, page_size: int | None = None,
                       source: str | None = None, profile: str | None = None,
                       session: Any = None) -> CloudWatchResult:
    if period < 60 or period % 60:
        raise BadInputError(f"--period {period} is not a multiple of 60 seconds",
                            hint="Use 300 (five minutes, the default) or 3600 (an hour).")
    if not 1 <= batch_size <= MAX_QUERIES:
        raise BadInputError(f"--batch-size {batch_size} is outside 1..{MAX_QUERIES}",
                            hint=f"GetMetricData takes at most {MAX_QUERIES} queries per call.")
    if cpu_stat not in ("Average", "Maximum", "p99", "p95", "p90"):
        raise BadInputError(f"--cpu-stat {cpu_stat!r} is not Average, Maximum, p99, p95 or p90")
    if end is None:
        now = dt.datetime.now(dt.UTC)
        end = now - dt.timedelta(seconds=now.timestamp() % period)
    if start is None:
        start = end - dt.timedelta(days=days)
    if start >= end:
        raise BadInputError(f"--start {start.isoformat()} is not before --end {end.isoformat()}")
    check_source(source or "cloudwatch")
    session = session or aws_session(profile)
    catalog = load_catalog(wh)
    region_list = regions_of(session, regions)
    inputs = [f"cloudwatch:{r}" for r in region_list]
    run_id = state.start_run("collect", "cloudwatch", inputs)
    ids: list[str] = []
    stats = FetchStats()
    frames = []
    try:
        for region in region_list:
            with aws_errors(f"CloudWatch in {region}"):
                queries, region_ids = build_queries(session, region, catalog, period=period,
                                                    cpu_stat=cpu_stat)
                values, s = fetch(client(session, "cloudwatch", region), queries, start, end,
                                  period=period, batch_size=batch_size, page_size=page_size)
            frames.append(samples(queries, values))
            ids += region_ids
            stats.queries += s.queries
            stats.batches += s.batches
            stats.calls += s.calls
            stats.pages += s.pages
            stats.partial += s.partial
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=str(exc)[:2000])
        raise
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=UTIL_SCHEMA)
    notes = [f"{stats.queries} metric queries for {len(ids)} resources in {stats.batches} batches: "
             f"{stats.calls} GetMetricData calls, {stats.pages} followed NextToken"]
    if stats.partial:
        notes.append(f"incomplete: {'; '.join(stats.partial[:5])}")
    store = store_utilization(wh, state, frame, source=source or "cloudwatch", inputs=inputs,
                              window=(start, end), resources=ids, notes=notes, run_id=run_id)
    return CloudWatchResult(store, stats, len(ids), (start, end))
