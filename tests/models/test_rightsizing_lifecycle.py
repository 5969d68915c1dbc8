"""Decisions on recommendations, and the ``finops recommend`` command line.

A dismissed recommendation stays dismissed until its evidence changes materially: its
current or recommended value changes, or its monthly savings move by more than 20%.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from models.rightsizing.base import COLUMNS
from models.rightsizing.lifecycle import Decision, effective_status, material_change
from tests.core.cli import finops

T0 = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def _decision(savings: str, current: str = "m5.2xlarge", recommended: str = "m5.large",
              status: str = "dismissed") -> Decision:
    return Decision("rec-1", "rightsize_compute", "i-1", status, "ana", "not now",
                    "2026-05-15T00:00:00+00:00",
                    current, recommended, Decimal(savings), "USD")


@pytest.mark.parametrize(("current", "recommended", "savings", "status"), [
    ("m5.2xlarge", "m5.large", "100.00", "dismissed"),
    ("m5.2xlarge", "m5.large", "120.00", "dismissed"),  # +20%: not more than 20%
    ("m5.2xlarge", "m5.large", "80.00", "dismissed"),
    ("m5.2xlarge", "m5.large", "120.01", "new"),
    ("m5.2xlarge", "m5.large", "79.99", "new"),
    ("m5.2xlarge", "m5.xlarge", "100.00", "new"),  # the recommended type changed
    ("m5.4xlarge", "m5.large", "100.00", "new"),  # the resource was resized meanwhile
])
def test_material_change(current: str, recommended: str, savings: str, status: str) -> None:
    shown, why = effective_status(_decision("100.00"), current, recommended, Decimal(savings), 0.2)
    assert shown == status
    assert (why is None) == (status == "dismissed")
    changed = material_change(_decision("100.00", status="accepted"), current, recommended,
                              Decimal(savings), 0.2)
    assert (changed is None) == (status == "dismissed")
    assert effective_status(None, current, recommended, Decimal(savings), 0.2) == ("new", None)


def _inputs(tmp: Path, hourly_cost: float, cpu: float = 5.0) -> tuple[Path, Path]:
    util = tmp / f"util-{cpu}.csv"
    lines = ["timestamp,resource_id,metric,value"]
    for h in range(14 * 24):
        ts = (T0 + dt.timedelta(hours=h)).isoformat()
        lines += [f"{ts},i-1,cpu_percent,{cpu}", f"{ts},i-1,memory_percent,20",
                  f"{ts},i-1,network_bytes,50000000"]
    util.write_text("\n".join(lines) + "\n", encoding="utf-8")
    inv = tmp / f"inv-{hourly_cost}.csv"
    inv.write_text("resource_id,provider,region,resource_type,instance_type,hourly_cost,attached\n"
                   f"i-1,aws,us-east-1,ec2_instance,m5.2xlarge,{hourly_cost},\n"
                   "vol-9,aws,us-east-1,ebs_volume,gp3,0.011,false\n", encoding="utf-8")
    return util, inv


def _recommend(home: Path, *extra: str) -> list[dict[str, object]]:
    proc = finops("recommend", "--home", home, "--format", "json", *extra, check=True)
    rows: list[dict[str, object]] = json.loads(proc.stdout)
    return rows


def test_recommend_cli_and_the_dismissed_lifecycle(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    util, inv = _inputs(tmp_path, 0.384)
    finops("collect", "utilization", "--path", util, "--home", home, check=True)
    finops("collect", "inventory", "--path", inv, "--home", home, check=True)

    rows = _recommend(home)
    assert [list(r) for r in rows] == [list(COLUMNS)] * len(rows)  # exactly the DESIGN columns, in order
    by_resource = {r["resource_id"]: r for r in rows}
    rec = by_resource["i-1"]
    # cpu 5% of 8 vCPU × 1.2 = 0.48 vCPU, memory 20% of 32 GiB × 1.2 = 7.68 GiB → m5.large;
    # (0.384 − 0.096) × 730 = 210.24.
    assert (rec["kind"], rec["current"], rec["recommended"], rec["monthly_savings"], rec["status"]) == (
        "rightsize_compute", "m5.2xlarge", "m5.large", "210.24", "new")
    evidence = rec["evidence"]
    assert isinstance(evidence, dict)
    assert (evidence["cpu_p99_pct"], evidence["memory_max_pct"], evidence["days_covered"]) == (5.0, 20.0, 14)
    assert len(evidence["series"]) == 14
    vol = by_resource["vol-9"]
    assert (vol["kind"], vol["recommended"], vol["monthly_savings"]) == (
        "unattached_volume", "delete", "8.03")  # 0.011 × 730

    csv = finops("recommend", "--home", home, "--format", "csv", "--no-refresh", check=True).stdout
    assert csv.splitlines()[0] == ",".join(COLUMNS)

    rid = str(rec["recommendation_id"])
    finops("recommend", "decide", rid, "--status", "dismissed", "--who", "ana", "--comment",
           "batch job at month end", "--home", home, check=True)
    assert all(r["recommendation_id"] != rid for r in _recommend(home))  # hidden by default
    shown = {r["recommendation_id"]: r for r in _recommend(home, "--all")}
    assert shown[rid]["status"] == "dismissed"

    # The price paid moves 10%: savings (0.4224 − 0.1056) × 730 = 231.26 (+10%): still dismissed.
    _, inv2 = _inputs(tmp_path, 0.4224)
    finops("collect", "inventory", "--path", inv2, "--home", home, check=True)
    shown = {r["recommendation_id"]: r for r in _recommend(home, "--all")}
    assert (shown[rid]["monthly_savings"], shown[rid]["status"]) == ("231.26", "dismissed")

    # 50% more: the evidence changed materially; the recommendation is new again, saying why.
    _, inv3 = _inputs(tmp_path, 0.576)
    finops("collect", "inventory", "--path", inv3, "--home", home, check=True)
    again = {r["recommendation_id"]: r for r in _recommend(home)}
    assert again[rid]["status"] == "new"
    assert "dismissed by ana" in str(again[rid]["evidence"]["reopened"])  # type: ignore[index]

    # Accepted, then the recommended type changes (more CPU is needed): new again.
    finops("recommend", "decide", rid, "--status", "accepted", "--who", "bo", "--home", home, check=True)
    assert {r["recommendation_id"]: r for r in _recommend(home)}[rid]["status"] == "accepted"
    util2, _ = _inputs(tmp_path, 0.576, cpu=30.0)
    finops("collect", "utilization", "--path", util2, "--home", home, check=True)
    latest = {r["recommendation_id"]: r for r in _recommend(home)}[rid]
    assert (latest["recommended"], latest["status"]) == ("m5.xlarge", "new")


def test_decide_unknown_id_and_bad_status_exit_2(tmp_path: Path) -> None:
    home = tmp_path / "wh"
    util, inv = _inputs(tmp_path, 0.384)
    finops("collect", "utilization", "--path", util, "--home", home, check=True)
    finops("collect", "inventory", "--path", inv, "--home", home, check=True)
    rid = str(_recommend(home)[0]["recommendation_id"])
    proc = finops("recommend", "decide", rid[:-1] + "x", "--status", "dismissed", "--home", home)
    assert proc.returncode == 2
    assert "is not in the latest recommendations" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = finops("recommend", "decide", rid, "--status", "maybe", "--home", home)
    assert proc.returncode == 2
    assert "accepted, dismissed, done" in proc.stderr


def test_recommend_on_an_empty_warehouse(tmp_path: Path) -> None:
    assert _recommend(tmp_path / "wh") == []
