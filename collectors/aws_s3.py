"""CUR deliveries in S3: find each billing period's current files through the manifests.

Legacy CUR writes ``<prefix>/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json`` (and a
copy inside each assembly folder) whose ``reportKeys`` list the current assembly's files.
CUR 2.0 Data Exports write ``<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/
<export>-Manifest.json`` whose ``dataFiles`` list ``s3://`` URIs. A restated period gets
a new ``assemblyId`` / ``executionId``: the period is collected again and its partition
replaced. A period whose manifest and files are unchanged since the last collect (the
cursor in state.db) is skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finops.errors import BadInputError, FinopsError
from finops.ingest import IngestResult, InputFile
from finops.progress import info, progress
from finops.state import State
from finops.warehouse import Warehouse

CURSOR = "aws-s3"


@dataclass(frozen=True)
class Delivery:
    report: str
    period: str
    version: str
    manifest_key: str
    modified: dt.datetime
    keys: tuple[str, ...]


def _period(value: str) -> str:
    digits = re.sub(r"[^0-9]", "", value)
    if len(digits) < 6:
        raise ValueError(value)
    return f"{digits[:4]}-{digits[4:6]}"


def s3_client(*, profile: str | None = None, role_arn: str | None = None) -> Any:
    """An S3 client from the standard AWS environment (``AWS_ENDPOINT_URL``, profiles),
    assuming ``role_arn`` first when given."""
    try:
        import boto3
    except ImportError:
        raise BadInputError("reading from S3 needs boto3",
                            hint="pip install 'finops-toolkit[aws]'") from None
    session = boto3.Session(profile_name=profile)
    if role_arn:
        creds = session.client("sts").assume_role(
            RoleArn=role_arn, RoleSessionName="finops-collect"
        )["Credentials"]
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"], region_name=session.region_name,
        )
    return session.client("s3")


def _list(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend(page.get("Contents", []))
    return out


def find_deliveries(client: Any, bucket: str, prefix: str) -> tuple[list[Delivery], dict[str, str]]:
    """The current delivery of each (report, period), and every object's ETag."""
    objects = _list(client, bucket, prefix)
    etags = {o["Key"]: str(o.get("ETag", "")) for o in objects}
    candidates: dict[tuple[str, str], Delivery] = {}
    for obj in objects:
        key = obj["Key"]
        if not key.lower().endswith("manifest.json"):
            continue
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            manifest = json.loads(body)
            period = _period(str(manifest["billingPeriod"]["start"]))
        except (ValueError, KeyError, TypeError):
            raise BadInputError(
                f"s3://{bucket}/{key}: not a CUR manifest (no billingPeriod.start)",
                hint="Point --prefix at the report's folder, or remove the stray file.",
            ) from None
        if "reportKeys" in manifest:
            keys = tuple(manifest["reportKeys"])
            report = str(manifest.get("reportName", ""))
            version = str(manifest.get("assemblyId", ""))
        else:
            keys = tuple(
                re.sub(rf"^s3://{re.escape(bucket)}/", "", k) for k in manifest.get("dataFiles", [])
            )
            report = str(manifest.get("exportName", manifest.get("exportArn", "")))
            version = str(manifest.get("executionId", ""))
        delivery = Delivery(report, period, version, key, obj["LastModified"], keys)
        current = candidates.get((report, period))
        if current is None or (delivery.modified, -len(key)) > (current.modified, -len(current.manifest_key)):
            candidates[(report, period)] = delivery
    reports = sorted({r for r, _ in candidates})
    if len(reports) > 1:
        raise BadInputError(
            f"s3://{bucket}/{prefix} holds several reports ({', '.join(reports)}); collecting them "
            "together would count the same cost twice",
            hint="Give a --prefix that points at one report's folder.",
        )
    return sorted(candidates.values(), key=lambda d: d.period), etags


def _fingerprint(delivery: Delivery, etags: dict[str, str]) -> str:
    return json.dumps({"version": delivery.version,
                       "files": {k: etags.get(k, "missing") for k in delivery.keys}}, sort_keys=True)


def collect_aws_s3(
    wh: Warehouse, state: State, *, bucket: str, prefix: str, source: str | None,
    max_rejected_share: float, client: Any, force: bool = False,
) -> IngestResult | None:
    """Collect every new or restated period; None when every period was unchanged."""
    from collectors.aws import ingest_files

    source = source or "aws"
    deliveries, etags = find_deliveries(client, bucket, prefix)
    if not deliveries:
        raise BadInputError(f"s3://{bucket}/{prefix}: no CUR manifest (*Manifest.json) found",
                            hint="Check --bucket and --prefix; they should hold the report's folder.")
    todo = []
    for d in deliveries:
        cursor_key = f"{source}:{d.period}"
        missing = [k for k in d.keys if k not in etags]
        if missing:
            raise BadInputError(
                f"s3://{bucket}/{d.manifest_key} lists {len(missing)} file(s) that are not in the "
                f"bucket, e.g. {missing[0]}",
                hint="The delivery may still be in progress; collect again later.",
            )
        if not force and state.get_cursor(CURSOR, cursor_key) == _fingerprint(d, etags):
            info(f"{d.period}: unchanged since the last collect (assembly {d.version}), skipped")
            continue
        todo.append(d)
    if not todo:
        return None
    scratch = wh.home / "_staging" / f"download-{uuid.uuid4().hex}"
    scratch.mkdir(parents=True)
    try:
        inputs = []
        total = sum(len(d.keys) for d in todo)
        with progress("downloading", total) as step:
            for d in todo:
                for n, key in enumerate(d.keys):
                    local = scratch / d.period / f"{n:05d}-{Path(key).name}"
                    local.parent.mkdir(parents=True, exist_ok=True)
                    client.download_file(bucket, key, str(local))
                    inputs.append(InputFile(local, f"s3://{bucket}/{key}"))
                    step.advance(key)
        notes = [f"{d.period}: assembly {d.version} ({len(d.keys)} file(s))" for d in todo]
        result = ingest_files(wh, state, inputs, source=source,
                              max_rejected_share=max_rejected_share, notes=notes)
        for d in todo:
            state.set_cursor(CURSOR, f"{source}:{d.period}", _fingerprint(d, etags))
        return result
    except FinopsError:
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
