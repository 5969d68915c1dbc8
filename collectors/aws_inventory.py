"""AWS inventory from describe calls: EC2 instances, RDS instances, EBS volumes and
snapshots, elastic IPs and load balancers, per region (``finops collect inventory``).

Every call is paginated. ``hourly_cost`` is the on-demand list price from the instance
catalog (instances, volumes by size, addresses, load balancers): the bill, when it has the
resource, is what right-sizing uses instead. Snapshot cost uses the source volume's size
(an upper bound: snapshots are incremental). Clients honour the standard AWS environment,
``AWS_ENDPOINT_URL`` included.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import polars as pl

from collectors.utilization import INVENTORY_SCHEMA, StoreResult, conform_inventory, store_inventory
from finops.errors import BadInputError, ConfigError, FinopsError
from finops.state import State
from finops.warehouse import Warehouse
from models.rightsizing.catalog import Catalog, load_catalog

HOURS_PER_MONTH = 730.0


def aws_session(profile: str | None = None) -> Any:
    try:
        import boto3
    except ImportError:
        raise BadInputError("reading from AWS needs boto3",
                            hint="pip install 'finops-toolkit[aws]'") from None
    from botocore.exceptions import BotoCoreError

    try:
        return boto3.Session(profile_name=profile)
    except BotoCoreError as exc:  # ProfileNotFound and friends
        raise ConfigError(f"cannot open an AWS session: {exc}",
                          hint="Check --profile and the standard AWS environment.") from None


def client(session: Any, service: str, region: str) -> Any:
    from botocore.config import Config

    return session.client(service, region_name=region,
                          config=Config(retries={"mode": "standard", "max_attempts": 10}))


def regions_of(session: Any, regions: Sequence[str]) -> list[str]:
    if regions:
        return list(dict.fromkeys(regions))
    if session.region_name:
        return [session.region_name]
    raise ConfigError("no AWS region given",
                      hint="Pass --region REGION (repeatable), or set AWS_DEFAULT_REGION.")


def aws_errors(what: str) -> Any:
    """A context manager turning AWS client errors into FinopsErrors naming ``what``."""
    from contextlib import contextmanager

    @contextmanager
    def guard() -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except NoCredentialsError:
            raise ConfigError(f"{what}: no AWS credentials found",
                              hint="Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.") from None
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise FinopsError(f"{what}: AWS refused: {err.get('Code')}: {err.get('Message')}",
                              hint="Check the role's permissions (ec2:Describe*, rds:Describe*, "
                              "elasticloadbalancing:Describe*, cloudwatch:GetMetricData, "
                              "cloudwatch:ListMetrics).") from None
        except BotoCoreError as exc:
            raise FinopsError(f"{what}: {exc}", hint="Check the network and AWS_ENDPOINT_URL.") from None

    return guard()


def _pages(c: Any, op: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in c.get_paginator(op).paginate(**kwargs):
        yield from page.get(key, [])


def _name(tags: Sequence[dict[str, str]] | None) -> str | None:
    for t in tags or []:
        if t.get("Key") == "Name":
            return t.get("Value")
    return None


def _utc(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return None


def _price(catalog: Catalog, region: str, itype: str | None) -> float | None:
    if not itype:
        return None
    found = catalog.list_price("aws", region, itype)
    return float(found.price) if found else None


def ec2_instances(session: Any, region: str) -> list[dict[str, Any]]:
    ec2 = client(session, "ec2", region)
    out = []
    for reservation in _pages(ec2, "describe_instances", "Reservations"):
        for inst in reservation.get("Instances", []):
            out.append({**inst, "_owner": reservation.get("OwnerId")})
    return out


def rds_instances(session: Any, region: str) -> list[dict[str, Any]]:
    return list(_pages(client(session, "rds", region), "describe_db_instances", "DBInstances"))


def inventory_rows(session: Any, region: str, catalog: Catalog) -> list[dict[str, Any]]:
    """One inventory row per resource in ``region`` (see :data:`INVENTORY_SCHEMA`)."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rows: list[dict[str, Any]] = []
    ec2 = client(session, "ec2", region)
    for inst in ec2_instances(session, region):
        itype = inst.get("InstanceType")
        rows.append({
            "resource_id": inst["InstanceId"], "provider": "aws", "region": region,
            "resource_type": "ec2_instance", "instance_type": itype,
            "hourly_cost": _price(catalog, region, itype), "currency": "USD",
            "state": (inst.get("State") or {}).get("Name"), "attached": None,
            "launch_time": _utc(inst.get("LaunchTime")), "size_gb": None,
            "account_id": inst.get("_owner"), "name": _name(inst.get("Tags")),
        })
    for db in rds_instances(session, region):
        cls = db.get("DBInstanceClass")
        rows.append({
            "resource_id": db.get("DBInstanceArn") or db["DBInstanceIdentifier"], "provider": "aws",
            "region": region, "resource_type": "rds_instance", "instance_type": cls,
            "hourly_cost": _price(catalog, region, cls), "currency": "USD",
            "state": "running" if db.get("DBInstanceStatus") == "available" else db.get("DBInstanceStatus"),
            "attached": None, "launch_time": _utc(db.get("InstanceCreateTime")),
            "size_gb": float(db["AllocatedStorage"]) if db.get("AllocatedStorage") else None,
            "account_id": None, "name": db.get("DBInstanceIdentifier"),
        })
    for vol in _pages(ec2, "describe_volumes", "Volumes"):
        vtype = vol.get("VolumeType") or "gp2"
        size = float(vol.get("Size") or 0)
        found = catalog.other_price("aws", region, "ebs_volume", vtype)
        rows.append({
            "resource_id": vol["VolumeId"], "provider": "aws", "region": region,
            "resource_type": "ebs_volume", "instance_type": vtype,
            "hourly_cost": float(found[1]) * size / HOURS_PER_MONTH if found else None,
            "currency": "USD", "state": vol.get("State"),
            "attached": bool(vol.get("Attachments")), "launch_time": _utc(vol.get("CreateTime")),
            "size_gb": size, "account_id": None, "name": _name(vol.get("Tags")),
        })
    snap_price = catalog.other_price("aws", region, "ebs_snapshot", "standard")
    for snap in _pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"]):
        size = float(snap.get("VolumeSize") or 0)
        rows.append({
            "resource_id": snap["SnapshotId"], "provider": "aws", "region": region,
            "resource_type": "ebs_snapshot", "instance_type": "standard",
            "hourly_cost": float(snap_price[1]) * size / HOURS_PER_MONTH if snap_price else None,
            "currency": "USD", "state": snap.get("State"), "attached": None,
            "launch_time": _utc(snap.get("StartTime")), "size_gb": size,
            "account_id": snap.get("OwnerId"), "name": _name(snap.get("Tags")),
        })
    ip_price = catalog.other_price("aws", region, "elastic_ip", "ipv4")
    for addr in ec2.describe_addresses().get("Addresses", []):  # not paginated by AWS
        rows.append({
            "resource_id": addr.get("AllocationId") or addr.get("PublicIp"), "provider": "aws",
            "region": region, "resource_type": "elastic_ip", "instance_type": "ipv4",
            "hourly_cost": float(ip_price[1]) if ip_price else None, "currency": "USD",
            "state": "associated" if addr.get("AssociationId") else "unassociated",
            "attached": bool(addr.get("AssociationId")), "launch_time": None, "size_gb": None,
            "account_id": None, "name": addr.get("PublicIp"),
        })
    rows += load_balancer_rows(session, region, catalog)
    for r in rows:
        r["collected_at"] = now
    return rows


def load_balancer_rows(session: Any, region: str, catalog: Catalog) -> list[dict[str, Any]]:
    elb = client(session, "elbv2", region)
    rows = []
    groups = list(_pages(elb, "describe_target_groups", "TargetGroups"))
    for lb in _pages(elb, "describe_load_balancers", "LoadBalancers"):
        arn = lb["LoadBalancerArn"]
        targets = 0
        for tg in groups:
            if arn in (tg.get("LoadBalancerArns") or []):
                health = elb.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])
                targets += len(health.get("TargetHealthDescriptions", []))
        lb_type = lb.get("Type") or "application"
        found = catalog.other_price("aws", region, "load_balancer", lb_type)
        rows.append({
            "resource_id": arn, "provider": "aws", "region": region, "resource_type": "load_balancer",
            "instance_type": lb_type, "hourly_cost": float(found[1]) if found else None,
            "currency": "USD", "state": (lb.get("State") or {}).get("Code"), "attached": targets > 0,
            "launch_time": _utc(lb.get("CreatedTime")), "size_gb": None, "account_id": None,
            "name": lb.get("LoadBalancerName"),
        })
    return rows


def collect_aws_inventory(wh: Warehouse, state: State, *, regions: Sequence[str] = (),
                          profile: str | None = None, source: str | None = None,
                          session: Any = None) -> StoreResult:
    session = session or aws_session(profile)
    catalog = load_catalog(wh)
    rows: list[dict[str, Any]] = []
    for region in regions_of(session, regions):
        with aws_errors(f"AWS inventory in {region}"):
            rows += inventory_rows(session, region, catalog)
    frame = (conform_inventory(pl.DataFrame(rows, schema_overrides=INVENTORY_SCHEMA,
                                            infer_schema_length=None))
             if rows else pl.DataFrame(schema=INVENTORY_SCHEMA))
    counts = frame.group_by("resource_type").len().sort("resource_type") if rows else frame.clear()
    notes = [f"{t}: {n}" for t, n in counts.iter_rows()] if rows else ["no resources found"]
    return store_inventory(wh, state, frame, source=source or "aws",
                           inputs=list(regions_of(session, regions)), notes=notes,
                           collector="aws-inventory")
