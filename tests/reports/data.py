"""A small warehouse for the report tests, written dataset by dataset with replace_partition.

The cube holds ten weeks of daily cost (2 March to 10 May 2026) for four tenants and the
unallocated share; the report week is 2026-W19 (4-10 May). Each tenant's daily amounts
are distinct, so a test can tell one tenant's figures from another's. The tests compute
the figures they expect from ``SPEND`` here, never through the report code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl

from finops.state import PeriodTotal, open_state
from finops.warehouse import Warehouse

MONEY = pl.Decimal(38, 12)
TS = pl.Datetime("us", "UTC")
XSS = "<img src=x onerror=alert(1)>"
WEEK = "2026-W19"
MONDAY = dt.date(2026, 5, 4)
SUNDAY = dt.date(2026, 5, 10)
FIRST_DAY = dt.date(2026, 3, 2)
TENANTS = ("acme", "globex", "initech", XSS)


@dataclass(frozen=True)
class Line:
    tenant: str
    service: str
    account: str
    daily: Decimal
    week_daily: Decimal | None = None  # the amount per day in the report week, if different
    spike: tuple[dt.date, Decimal] | None = None  # one day's extra cost in the report week


SPEND: tuple[Line, ...] = (
    Line("acme", "Amazon EC2", "111111111111", Decimal("100.00"), spike=(dt.date(2026, 5, 6),
                                                                          Decimal("240.00"))),
    Line("acme", "Amazon S3", "111111111111", Decimal("20.25")),
    Line("globex", "Amazon RDS", "222222222222", Decimal("77.77"), week_daily=Decimal("55.55")),
    Line("initech", "Amazon EC2", "333333333333", Decimal("33.31"), week_daily=Decimal("41.13")),
    Line(XSS, "Amazon EC2", "444444444444", Decimal("12.34")),
    Line("unallocated", "AWS Support", "999999999999", Decimal("5.67")),
)


def days(start: dt.date = FIRST_DAY, end: dt.date = SUNDAY) -> Iterator[dt.date]:
    day = start
    while day <= end:
        yield day
        day += dt.timedelta(days=1)


def amount(line: Line, day: dt.date) -> Decimal:
    value = line.week_daily if line.week_daily is not None and MONDAY <= day <= SUNDAY \
        else line.daily
    if line.spike is not None and line.spike[0] == day:
        value += line.spike[1]
    return value


def expected(tenants: Sequence[str] | None, start: dt.date, end: dt.date,
             service: str | None = None) -> Decimal:
    """Exact spend of ``tenants`` (None: everyone) from ``start`` to ``end`` inclusive."""
    return sum(
        (amount(x, d) for x in SPEND for d in days(start, end)
         if (tenants is None or x.tenant in tenants) and (service is None or x.service == service)),
        Decimal(0),
    )


def money(value: Decimal) -> str:
    """``1,234.57``: formatted here, independently of the report's own formatting."""
    return f"{value.quantize(Decimal('0.01')):,.2f}"


def cube_rows(end: dt.date = SUNDAY) -> pl.DataFrame:
    rows = []
    for day in days(FIRST_DAY, end):
        for x in SPEND:
            cost = amount(x, day)
            rows.append({
                "day": day, "x_Tenant": x.tenant, "x_Team": "team-" + x.tenant[:3],
                "x_CostCenter": "cc-1", "ServiceName": x.service, "ServiceCategory": "Compute",
                "SubAccountId": x.account, "SubAccountName": "acct-" + x.account[:3],
                "ProviderName": "AWS", "RegionId": "us-east-1", "ChargeCategory": "Usage",
                "x_AllocationMethod": "unallocated" if x.tenant == "unallocated" else "tag",
                "BillingCurrency": "USD", "BilledCost": cost, "EffectiveCost": cost, "rows": 1,
            })
    return pl.DataFrame(rows, schema_overrides={"BilledCost": MONEY, "EffectiveCost": MONEY,
                                                "rows": pl.UInt32})


ANOMALIES = pl.DataFrame(
    {
        "anomaly_id": ["a-acme", "a-rds", "a-globex", "a-old"],
        "start_date": [dt.date(2026, 5, 6), dt.date(2026, 5, 5), dt.date(2026, 5, 9),
                       dt.date(2026, 4, 2)],
        "end_date": [dt.date(2026, 5, 6), dt.date(2026, 5, 5), dt.date(2026, 5, 9),
                     dt.date(2026, 4, 3)],
        "dimension": ["tenant", "service", "tenant", "tenant"],
        "dimension_value": ["acme", "Amazon RDS", "globex", "acme"],
        "actual_cost": [Decimal("340.00"), Decimal("300.00"), Decimal("90.00"), Decimal("1.00")],
        "expected_cost": [Decimal("100.00"), Decimal("200.00"), Decimal("60.00"), Decimal("2.00")],
        "impact": [Decimal("240.00"), Decimal("100.00"), Decimal("30.00"), Decimal("-1.00")],
        "severity": ["high", "medium", "critical", "low"],
        "root_causes": [
            [{"dimension": "service", "value": "Amazon EC2", "contribution": Decimal("240.00"),
              "share": 1.0},
             {"dimension": "tenant", "value": "acme", "contribution": Decimal("240.00"),
              "share": 1.0}],
            [{"dimension": "tenant", "value": "globex", "contribution": Decimal("80.00"),
              "share": 0.8},
             {"dimension": "tenant", "value": XSS, "contribution": Decimal("20.00"), "share": 0.2}],
            [{"dimension": "service", "value": "Amazon RDS", "contribution": Decimal("30.00"),
              "share": 1.0}],
            [],
        ],
        "currency": ["USD"] * 4,
    },
    schema_overrides={"actual_cost": MONEY, "expected_cost": MONEY, "impact": MONEY,
                      "root_causes": pl.List(pl.Struct({
                          "dimension": pl.String, "value": pl.String,
                          "contribution": pl.Decimal(38, 2), "share": pl.Float64}))},
)

RECOMMENDATIONS = pl.DataFrame({
    "recommendation_id": [f"r{n}" for n in range(1, 9)],
    "kind": ["rightsize", "rightsize", "delete_volume", "rightsize", "rightsize", "stop_idle",
             "rightsize", "rightsize"],
    "resource_id": ["i-acme-1", "db-globex", "vol-shared", "i-xss", "i-initech-1", "i-initech-2",
                    "i-initech-3", "i-acme-2"],
    "current": ["m5.2xlarge", "db.r5.4xlarge", "gp2 500 GiB", "c5.xlarge", "m5.xlarge",
                "t3.large", "m5.large", "m5.xlarge"],
    "recommended": ["m5.xlarge", "db.r5.2xlarge", "delete", "c5.large", "m5.large", "stop",
                    "t3.large", "m5.large"],
    "monthly_savings": [Decimal("412.34"), Decimal("987.65"), Decimal("55.00"), Decimal("31.41"),
                        Decimal("120.50"), Decimal("66.60"), Decimal("44.40"), Decimal("9000.00")],
    "confidence": [0.92, 0.8, 0.99, 0.7, 0.85, 0.6, 0.75, 0.5],
    "evidence": ["p95 CPU 18% over 30 days", "p95 CPU 22%", "unattached 45 days",
                 f"tag says {XSS}", "p95 CPU 30%", "idle 14 days", "p95 CPU 35%", "p95 CPU 5%"],
    "status": ["open", "open", "open", "open", "open", "open", "open", "dismissed"],
}, schema_overrides={"monthly_savings": MONEY})

RESOURCE_OWNERS = {"i-acme-1": ["acme"], "db-globex": ["globex"], "vol-shared": ["acme", "globex"],
                   "i-xss": [XSS], "i-initech-1": ["initech"], "i-initech-2": ["initech"],
                   "i-initech-3": ["initech"], "i-acme-2": ["acme"]}
# Billing data per source runs through this day: gcp-main is three days late.
SOURCES = {"aws-main": SUNDAY, "gcp-main": dt.date(2026, 5, 7)}


def forecasts_frame(month_end: dt.date = dt.date(2026, 5, 31)) -> pl.DataFrame:
    """Daily forecasts from 11 May to month end: the total and each tenant."""
    rows = []
    for day in days(SUNDAY + dt.timedelta(days=1), month_end):
        rows.append({"date": day, "dimension": "total", "dimension_value": None,
                     "currency": "USD", "forecast": 300.0})
        for tenant, value in (("acme", 125.0), ("globex", 60.0), ("initech", 40.0), (XSS, 12.0)):
            rows.append({"date": day, "dimension": "tenant", "dimension_value": tenant,
                         "currency": "USD", "forecast": value})
    return pl.DataFrame(rows)


def build(home: Path, *, anomalies: bool = True, recommendations: bool = True,
          forecasts: bool = False, failed_source: str | None = None) -> Path:
    wh = Warehouse(home)
    state = open_state(home)
    run = "fixture"
    try:
        cube = cube_rows().with_columns(pl.col("day").dt.strftime("%Y-%m").alias("billing_period"))
        for (period,), part in cube.group_by("billing_period"):
            wh.replace_partition("cube", {"billing_period": str(period)}, part, run_id=run)
            owners = pl.DataFrame(
                [{"ResourceId": r, "x_Tenant": t, "EffectiveCost": Decimal(1)}
                 for r, ts in RESOURCE_OWNERS.items() for t in ts],
                schema_overrides={"EffectiveCost": MONEY})
            wh.replace_partition("allocated", {"billing_period": str(period)}, owners, run_id=run)
        for source, through in SOURCES.items():
            run_id = state.start_run("collect", source, ["fixture"])
            stamps = [dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)
                      for d in days(dt.date(2026, 5, 1), through)]
            frame = pl.DataFrame({"ChargePeriodStart": stamps,
                                  "BilledCost": [Decimal(1)] * len(stamps)},
                                 schema_overrides={"ChargePeriodStart": TS, "BilledCost": MONEY})
            wh.replace_partition("billing", {"source": source, "billing_period": "2026-05"},
                                 frame, run_id=run)
            state.finish_run(run_id, status="succeeded", rows_in=len(stamps), rows_out=len(stamps),
                             totals=[PeriodTotal("2026-05", "USD", len(stamps),
                                                 Decimal(len(stamps)), Decimal(len(stamps)))])
        allocate_id = state.start_run("allocate", None, [])
        state.finish_run(allocate_id, status="succeeded")
        if failed_source:
            run_id = state.start_run("collect", failed_source, ["fixture"])
            state.finish_run(run_id, status="failed", message="access denied to bucket")
        if anomalies:
            wh.replace_partition("anomalies", {"as_of": "2026-05-11"}, ANOMALIES, run_id=run)
        if recommendations:
            wh.replace_partition("recommendations", {"as_of": "2026-05-11"}, RECOMMENDATIONS,
                                 run_id=run)
        if forecasts:
            wh.replace_partition("forecasts", {"as_of": "2026-05-11"}, forecasts_frame(),
                                 run_id=run)
        wh.drop_staging(run)
    finally:
        state.close()
    return home


CONFIG = """
[reports]
top_movers = 5
freshness_grace_days = 0

[reports.budgets]
currency = "USD"
total = 6000
tenants = {{ acme = 3000, globex = 2500 }}

[reports.delivery]
attempts = 3
backoff_seconds = 0.01

[[reports.recipients]]
email = "cfo@example.com"
name = "Fiona Finance"
role = "finance"

[[reports.recipients]]
email = "acme-owner@example.com"
role = "tenant_owner"
tenants = ["acme"]

[[reports.recipients]]
email = "platform@example.com"
role = "platform"
{extra}
"""


def write_config(path: Path, extra: str = "") -> Path:
    path.write_text(CONFIG.format(extra=extra), encoding="utf-8")
    return path
