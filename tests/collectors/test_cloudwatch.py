"""CloudWatch utilisation, AWS inventory and Price List collectors.

The CloudWatch and describe paths run ``finops`` in a subprocess against moto in server
mode (boto3 pointed at it through the environment). moto does not paginate GetMetricData
nor serve the Price List API, so those two are checked with botocore's Stubber.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest
from botocore.stub import Stubber

from collectors.aws_pricing import fetch_catalog
from collectors.cloudwatch import MetricQuery, fetch
from finops.state import open_state
from finops.warehouse import Warehouse
from models.rightsizing.catalog import load_catalog
from tests.core.cli import finops

N_INSTANCES = 72  # × 7 EC2 queries = 504, more than one GetMetricData call holds


def _hour(offset: int) -> dt.datetime:
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return now - dt.timedelta(hours=offset)


def _util(home: Path) -> pl.DataFrame:
    return Warehouse(home).scan("utilization").collect().sort("resource_id", "metric", "timestamp")


def test_collect_cloudwatch_batches_over_500_queries(moto_endpoint: str, tmp_path: Path) -> None:
    ec2 = boto3.client("ec2")
    ids = [i["InstanceId"] for i in ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=N_INSTANCES, MaxCount=N_INSTANCES,
        InstanceType="m5.2xlarge")["Instances"]]
    stopped = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                InstanceType="m5.large")["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[stopped])
    rds = boto3.client("rds")
    arn = rds.create_db_instance(
        DBInstanceIdentifier="orders", DBInstanceClass="db.m5.large", Engine="mysql",
        MasterUsername="admin", MasterUserPassword="password123", AllocatedStorage=20,
    )["DBInstance"]["DBInstanceArn"]
    cw = boto3.client("cloudwatch")
    hours = [_hour(3), _hour(2), _hour(1)]
    start, end = hours[0], hours[-1] + dt.timedelta(hours=1)
    data: list[dict[str, Any]] = []
    for n, iid in enumerate(ids):
        dims = [{"Name": "InstanceId", "Value": iid}]
        for h, ts in enumerate(hours):
            data.append({"MetricName": "CPUUtilization", "Dimensions": dims, "Timestamp": ts,
                         "Value": float(10 * (h + 1) + n % 3), "Unit": "Percent"})
            data.append({"MetricName": "NetworkIn", "Dimensions": dims, "Timestamp": ts,
                         "Value": 1000.0, "Unit": "Bytes"})
            data.append({"MetricName": "NetworkOut", "Dimensions": dims, "Timestamp": ts,
                         "Value": 500.0, "Unit": "Bytes"})
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=data[i:i + 500])
    # The agent appends dimensions; the collector finds them with ListMetrics.
    agent_dims = [{"Name": "InstanceId", "Value": ids[0]}, {"Name": "ImageId", "Value": "ami-12c6146b"},
                  {"Name": "InstanceType", "Value": "m5.2xlarge"}]
    cw.put_metric_data(Namespace="CWAgent", MetricData=[
        {"MetricName": "mem_used_percent", "Dimensions": agent_dims, "Timestamp": ts, "Value": 55.5,
         "Unit": "Percent"} for ts in hours])
    rds_dims = [{"Name": "DBInstanceIdentifier", "Value": "orders"}]
    cw.put_metric_data(Namespace="AWS/RDS", MetricData=[
        m for ts in hours for m in (
            {"MetricName": "CPUUtilization", "Dimensions": rds_dims, "Timestamp": ts, "Value": 40.0},
            {"MetricName": "FreeableMemory", "Dimensions": rds_dims, "Timestamp": ts,
             "Value": float(2 * 2**30)},
            {"MetricName": "NetworkReceiveThroughput", "Dimensions": rds_dims, "Timestamp": ts,
             "Value": 10.0},
            {"MetricName": "NetworkTransmitThroughput", "Dimensions": rds_dims, "Timestamp": ts,
             "Value": 5.0},
        )])

    home = tmp_path / "wh"
    args = ["collect", "cloudwatch", "--home", home, "--region", "us-east-1", "--period", "3600",
            "--start", start.isoformat(), "--end", end.isoformat(), "--format", "json"]
    proc = finops(*args, check=True)
    summary = json.loads(proc.stdout)[0]
    # 72 × 7 EC2 queries + 1 agent memory + 6 RDS queries; the stopped instance is skipped.
    assert summary["queries"] == N_INSTANCES * 7 + 1 + 6
    assert summary["resources_queried"] == N_INSTANCES + 1
    assert summary["batches"] == 2
    assert summary["api_calls"] == 2
    first = _util(home)

    df = first.filter(pl.col("resource_id") == ids[0])
    cpu = df.filter(pl.col("metric") == "cpu_percent")
    assert cpu["value"].to_list() == [10.0, 20.0, 30.0]
    assert cpu["timestamp"].to_list() == hours
    assert df.filter(pl.col("metric") == "network_bytes")["value"].to_list() == [1500.0] * 3
    assert df.filter(pl.col("metric") == "memory_percent")["value"].to_list() == [55.5] * 3
    assert set(first.filter(pl.col("metric") == "memory_percent")["resource_id"]) == {ids[0], arn}
    db = first.filter(pl.col("resource_id") == arn)
    assert db.filter(pl.col("metric") == "cpu_percent")["value"].to_list() == [40.0] * 3
    assert db.filter(pl.col("metric") == "memory_percent")["value"].to_list() == [75.0] * 3  # 2 of 8 GiB free
    assert db.filter(pl.col("metric") == "network_bytes")["value"].to_list() == [15.0 * 3600] * 3
    assert stopped not in set(first["resource_id"])
    assert first.filter(pl.col("metric") == "cpu_percent").height == N_INSTANCES * 3 + 3

    # Smaller batches: more calls, the same samples; re-collecting replaces, never duplicates.
    proc = finops(*args, "--batch-size", "100", check=True)
    again = json.loads(proc.stdout)[0]
    assert (again["batches"], again["api_calls"]) == (6, 6)  # ceil(511 / 100)
    assert _util(home).equals(first)

    state = open_state(home)
    runs = [r for r in state.runs(stage="collect") if r["source"] == "cloudwatch"]
    state.close()
    assert [r["status"] for r in runs] == ["succeeded", "succeeded"]
    assert "GetMetricData calls" in (runs[0]["message"] or "")


def test_collect_inventory_from_describe_calls(moto_endpoint: str, tmp_path: Path) -> None:
    ec2 = boto3.client("ec2")
    iid = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                            InstanceType="t3.large")["Instances"][0]["InstanceId"]
    free = ec2.create_volume(Size=100, AvailabilityZone="us-east-1a", VolumeType="gp3")["VolumeId"]
    used = ec2.create_volume(Size=50, AvailabilityZone="us-east-1a", VolumeType="gp2")["VolumeId"]
    ec2.attach_volume(VolumeId=used, InstanceId=iid, Device="/dev/sdf")
    ip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    home = tmp_path / "wh"
    finops("collect", "inventory", "--home", home, "--region", "us-east-1", check=True)
    inv = Warehouse(home).scan("inventory", where={"source": "aws"}).collect()
    rows = {r["resource_id"]: r for r in inv.iter_rows(named=True)}
    assert rows[iid]["resource_type"] == "ec2_instance"
    assert rows[iid]["instance_type"] == "t3.large"
    assert rows[iid]["hourly_cost"] == pytest.approx(0.0832)
    assert rows[iid]["state"] == "running"
    assert (rows[free]["attached"], rows[used]["attached"]) == (False, True)
    assert rows[free]["hourly_cost"] == pytest.approx(0.08 * 100 / 730)
    assert (rows[ip]["resource_type"], rows[ip]["attached"]) == ("elastic_ip", False)
    assert any(r["resource_type"] == "ebs_snapshot" for r in rows.values())


def test_fetch_follows_next_token_and_sets_page_size() -> None:
    cw = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x")
    t0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    queries = [MetricQuery("i-1", "cpu_percent", "AWS/EC2", "CPUUtilization", (("InstanceId", "i-1"),),
                           "Average"),
               MetricQuery("i-1", "network_bytes", "AWS/EC2", "NetworkIn", (("InstanceId", "i-1"),), "Sum")]
    requests = [q.request(f"q{i}", 3600) for i, q in enumerate(queries)]
    base = {"MetricDataQueries": requests, "StartTime": t0, "EndTime": t0 + dt.timedelta(hours=3),
            "ScanBy": "TimestampAscending", "MaxDatapoints": 2}
    hours = [t0 + dt.timedelta(hours=h) for h in range(3)]
    with Stubber(cw) as stub:
        stub.add_response("get_metric_data", {
            "MetricDataResults": [
                {"Id": "q0", "Timestamps": hours[:2], "Values": [1.0, 2.0], "StatusCode": "PartialData"},
                {"Id": "q1", "Timestamps": [], "Values": [], "StatusCode": "PartialData"}],
            "NextToken": "page-2"}, base)
        stub.add_response("get_metric_data", {
            "MetricDataResults": [
                {"Id": "q0", "Timestamps": hours[2:], "Values": [3.0], "StatusCode": "Complete"},
                {"Id": "q1", "Timestamps": hours, "Values": [7.0, 8.0, 9.0], "StatusCode": "Complete"}]},
            {**base, "NextToken": "page-2"})
        values, stats = fetch(cw, queries, t0, t0 + dt.timedelta(hours=3), period=3600, page_size=2)
        stub.assert_no_pending_responses()
    assert [v for _, v in values[0]] == [1.0, 2.0, 3.0]
    assert [v for _, v in values[1]] == [7.0, 8.0, 9.0]
    assert (stats.calls, stats.pages, stats.batches) == (2, 1, 1)


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def get_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"MetricDataResults": [{"Id": q["Id"], "Timestamps": [kwargs["StartTime"]], "Values": [1.0]}
                                      for q in kwargs["MetricDataQueries"]]}


def test_fetch_cuts_time_so_no_call_exceeds_the_datapoint_limit() -> None:
    rec = _Recorder()
    t0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    queries = [MetricQuery(f"i-{n}", "cpu_percent", "AWS/EC2", "CPUUtilization",
                           (("InstanceId", f"i-{n}"),), "Average") for n in range(7)]
    fetch(rec, queries, t0, t0 + dt.timedelta(hours=12), period=3600, batch_size=3, max_datapoints=10)
    # Batches of 3, 3, 1 queries; 10 // 3 = 3 periods per call (12 h → 4 calls), 10 // 1 → 2 calls.
    assert [len(c["MetricDataQueries"]) for c in rec.calls] == [3] * 4 + [3] * 4 + [1] * 2
    for c in rec.calls:
        periods = (c["EndTime"] - c["StartTime"]) / dt.timedelta(hours=1)
        assert periods * len(c["MetricDataQueries"]) <= 10
    assert rec.calls[0]["StartTime"] == t0
    assert rec.calls[3]["EndTime"] == t0 + dt.timedelta(hours=12)


def _product(itype: str, price: str, vcpu: str, memory: str, processor: str) -> str:
    return json.dumps({
        "product": {"attributes": {"instanceType": itype, "vcpu": vcpu, "memory": memory,
                                   "physicalProcessor": processor, "instanceFamily": "General purpose",
                                   "regionCode": "us-west-2"}},
        "terms": {"OnDemand": {"SKU.JRTCKXETXF": {"priceDimensions": {"SKU.JRTCKXETXF.6YS6EN2CT7": {
            "unit": "Hrs", "pricePerUnit": {"USD": price}}}}}},
    })


def test_price_list_pages_into_the_catalog(tmp_path: Path) -> None:
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("get_products", {
            "PriceList": [_product("m5.large", "0.0960000000", "2", "8 GiB", "Intel Xeon Platinum 8175"),
                          _product("m9.large", "0.0800000000", "2", "8 GiB", "Intel Xeon")],
            "FormatVersion": "aws_v1", "NextToken": "t2"})
        stub.add_response("get_products", {
            "PriceList": [_product("m7g.xlarge", "0.1632000000", "4", "16 GiB", "AWS Graviton3 Processor"),
                          _product("t9.small", "0.0100000000", "2", "2 GiB", "Intel Xeon")],
            "FormatVersion": "aws_v1"})
        frame = fetch_catalog(client, "ec2", "us-west-2")
    rows = {r["instance_type"]: r for r in frame.iter_rows(named=True)}
    assert set(rows) == {"m5.large", "m9.large", "m7g.xlarge", "t9.small"}
    assert rows["m7g.xlarge"]["architecture"] == "arm64"
    assert str(rows["m9.large"]["price_hourly"]).startswith("0.08")
    # An unknown burstable type is priced but never a candidate (its baseline is unknown).
    assert rows["t9.small"]["vcpu"] is None

    from collectors.aws_pricing import store_catalog

    home = tmp_path / "wh"
    state = open_state(home)
    store_catalog(Warehouse(home), state, frame, provider="aws", source="price-list-ec2-us-west-2")
    state.close()
    cat = load_catalog(Warehouse(home))
    new = cat.spec("aws", "m9.large")
    assert new is not None and (new.vcpu, new.memory_gib, new.family) == (2.0, 8.0, "m9")
    assert str(cat.list_price("aws", "us-west-2", "m9.large").price).startswith("0.08")  # type: ignore[union-attr]
    assert cat.spec("aws", "t9.small") is None
