"""The anomalies the demo plants, and their ground truth for testing detectors.

Dates are placed relative to the window's last day so that any ``end`` keeps them in the
recent past, where a detector looking back a few weeks finds them. The extra cost an
anomaly caused is measured while the rows are generated, as the EffectiveCost above what
the same rows would have cost without it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from collectors.demo.org import Provider
from collectors.demo.window import Window


@dataclass(frozen=True)
class AnomalySpec:
    id: str
    kind: str  # spike | level_shift | runaway
    dimension: str  # the grouping where it shows: tenant | service
    value: str
    provider: Provider
    service: str
    tenant: str | None
    kinds: tuple[str, ...]  # catalogue kinds whose lines it moves
    meters: tuple[str, ...]  # SkuMeter names it moves; empty: all of the kind's meters
    starts_before_end: int  # days before the window's last day
    days: int | None  # None: lasts to the end of the window (a level shift)
    multiplier: float  # on the daily quantity; 1 for a runaway (the resource is the excess)
    description: str


ANOMALIES: Final = (
    AnomalySpec(
        "bigquery-spike-globex", "spike", "tenant", "globex", "gcp", "BigQuery", "globex",
        ("bigquery",), ("Analysis",), 40, 3, 7.0,
        "A backfill re-ran globex's event models against full tables instead of partitions "
        "for three days.",
    ),
    AnomalySpec(
        "data-onboarding-initech", "level_shift", "tenant", "initech", "aws", "Amazon Athena",
        "initech", ("athena", "glue", "s3"),
        ("Data Scanned", "ETL Job DPU-Hours", "Requests-Tier1", "Requests-Tier2"), 75, None, 1.8,
        "initech onboarded a second data source: Athena scans, Glue jobs and S3 requests "
        "stepped up by about 80% and stayed there.",
    ),
    AnomalySpec(
        "runaway-gpu-hooli", "runaway", "tenant", "hooli", "aws", "Amazon Elastic Compute Cloud",
        "hooli", ("ec2",), (), 19, 7, 1.0,
        "A p3.8xlarge GPU experiment was left running, idle, for a week.",
    ),
    AnomalySpec(
        "debug-logging-azure", "spike", "service", "Azure Monitor", "azure", "Azure Monitor", None,
        ("monitor",), (), 33, 9, 3.5,
        "Debug logging left on after an incident multiplied Log Analytics ingestion.",
    ),
)
ANOMALY_BY_ID: Final = {a.id: a for a in ANOMALIES}


@dataclass(frozen=True)
class PlacedAnomaly:
    spec: AnomalySpec
    first_day: int  # window index, inclusive
    last_day: int

    def multipliers(self, n_days: int) -> npt.NDArray[np.float64]:
        out = np.ones(n_days, dtype=np.float64)
        out[self.first_day : self.last_day + 1] = self.spec.multiplier
        return out


def place(window: Window) -> list[PlacedAnomaly]:
    """The anomalies that fit the window (a short window drops the older ones)."""
    last = window.n_days - 1
    out = []
    for spec in ANOMALIES:
        first = last - spec.starts_before_end
        # Leave a fortnight of normal history before it, or a detector cannot see it.
        if first < 14:
            continue
        end = last if spec.days is None else first + spec.days - 1
        out.append(PlacedAnomaly(spec, first, end))
    return out


@dataclass
class AnomalyTruth:
    id: str
    kind: str
    dimension: str
    value: str
    start: dt.date
    end: dt.date  # inclusive
    provider: str
    service: str
    tenant: str | None
    multiplier: float
    description: str
    # Extra EffectiveCost the anomaly caused, per billing currency, as decimal text.
    extra_effective_cost: dict[str, str] = field(default_factory=dict)
    resource_ids: list[str] = field(default_factory=list)


def truths(window: Window, placed: list[PlacedAnomaly], extra_units: dict[str, dict[str, int]],
           resource_ids: dict[str, list[str]], unit: Decimal) -> list[AnomalyTruth]:
    out = []
    for p in placed:
        s = p.spec
        out.append(AnomalyTruth(
            s.id, s.kind, s.dimension, s.value, window.day(p.first_day), window.day(p.last_day),
            s.provider, s.service, s.tenant, s.multiplier, s.description,
            {cur: str((Decimal(v) * unit).quantize(Decimal("0.01")))
             for cur, v in sorted(extra_units.get(s.id, {}).items())},
            sorted(resource_ids.get(s.id, []))[:50],
        ))
    return out


def write_truth(path: Path, items: list[AnomalyTruth]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for item in items:
        row = asdict(item)
        row["start"] = item.start.isoformat()
        row["end"] = item.end.isoformat()
        rows.append(row)
    path.write_text(json.dumps({"anomalies": rows}, indent=2) + "\n", encoding="utf-8")
