"""A warehouse with every dataset the app reads, for the page and access-control tests.

Billing is written and allocated as in :mod:`tests.app.conftest`; the later stages'
outputs (anomalies, forecasts, recommendations, query cost) are written straight into
their datasets with the schemas their models declare, so the app reads exactly what
those stages leave behind. Every tenant other than acme has amounts no acme figure can
produce (9191.91, 8282.82, …), so a test can look for them in everything a page shows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

import polars as pl

from finops.state import open_state
from finops.warehouse import Warehouse
from models.anomalies.api import ANOMALIES
from models.anomalies.api import SCHEMA as ANOMALY_SCHEMA
from models.anomalies.feedback import EventKey, register_events
from models.forecast import FORECASTS
from models.forecast import SCHEMA as FORECAST_SCHEMA
from models.query_cost import COST_SCHEMA, QUERY_COST
from models.rightsizing.base import SCHEMA as RECOMMENDATION_SCHEMA
from models.rightsizing.run import RECOMMENDATIONS
from tests.app.conftest import Line, build_warehouse

OWNER = "owner@acme.example"  # owns acme in the allocation config below
OTHER_OWNER = "ops@globex.example"
ALLOCATION_YAML = f"""
version: 1
teams:
  - {{id: platform, name: Platform, owners: [lead@platform.example]}}
tenants:
  - {{id: acme, team: platform, owners: ["{OWNER}"]}}
  - {{id: globex, team: platform, owners: ["{OWNER.replace('acme', 'globex')}", "{OTHER_OWNER}"]}}
  - {{id: initech, owners: [it@initech.example]}}
"""

ORG_LINES: tuple[Line, ...] = (
    Line("2026-03", 2, "1111.11", "1011.11", "acme", "Amazon EC2", "i-acme-1"),
    Line("2026-03", 3, "9191.91", "9191.91", "globex", "Amazon RDS", "db-globex"),
    Line("2026-03", 4, "8282.82", "8282.82", "initech", "Amazon EC2", "i-initech-1"),
    Line("2026-03", 5, "7373.73", "7373.73", None, "AWS Support", "support"),
    Line("2026-04", 1, "1222.22", "1122.22", "acme", "Amazon EC2", "i-acme-1"),
    Line("2026-04", 2, "333.33", "333.33", "acme", "Amazon S3", "bucket-acme"),
    Line("2026-04", 3, "9292.92", "9292.92", "globex", "Amazon RDS", "db-globex"),
    Line("2026-04", 4, "8383.83", "8383.83", "initech", "Amazon EC2", "i-initech-1"),
    Line("2026-04", 5, "7474.74", "7474.74", None, "AWS Support", "support"),
)
OTHER_TENANTS = ("globex", "initech", "unallocated")
# Amounts only other tenants (or all of them together) have.
OTHER_AMOUNTS = ("9191.91", "8282.82", "7373.73", "9292.92", "8383.83", "7474.74", "6161.61",
                 "5151.51", "4141.41", "3131.31")
AS_OF = dt.date(2026, 4, 28)


def forbidden_amounts(lines: Iterable[Line] = ORG_LINES) -> list[str]:
    """Other tenants' amounts and the organisation's totals, in the ways a page may print
    them: ``9191.91``, ``9,191.91``."""
    values = [Decimal(a) for a in OTHER_AMOUNTS]
    for period in ("2026-03", "2026-04"):
        for cost in ("billed", "effective"):
            values.append(sum((Decimal(getattr(x, cost)) for x in lines if x.period == period),
                              Decimal(0)))
    out = []
    for v in values:
        q = v.quantize(Decimal("0.01"))
        out += [f"{q}", f"{q:,}"]
    return sorted(set(out))


def _money(value: str) -> Decimal:
    return Decimal(value)


def anomaly_rows() -> list[dict[str, object]]:
    def cause(dimension: str, value: str, amount: str, share: float) -> dict[str, object]:
        return {"dimension": dimension, "value": value, "contribution": Decimal(amount),
                "share": share}

    def event(anomaly_id: str, dimension: str, value: str, actual: str, expected: str,
              severity: str, causes: list[dict[str, object]], day: int) -> dict[str, object]:
        a, e = _money(actual), _money(expected)
        return {"anomaly_id": anomaly_id, "start_date": dt.date(2026, 4, day),
                "end_date": dt.date(2026, 4, day + 1), "dimension": dimension,
                "dimension_value": value, "actual_cost": a, "expected_cost": e, "impact": a - e,
                "severity": severity, "root_causes": causes, "currency": "USD",
                "impact_pct": float((a - e) / e), "label": None,
                "detected_on": dt.date(2026, 4, day + 3)}

    return [
        event("an-acme000001", "tenant", "acme", "1500.00", "1000.00", "high",
              [cause("service", "Amazon EC2", "450.00", 0.9), cause("tenant", "acme", "500.00", 1.0)],
              1),
        event("an-globex0001", "tenant", "globex", "9999.99", "6161.61", "critical",
              [cause("service", "Amazon RDS", "3838.38", 1.0)], 3),
        event("an-service001", "service", "Amazon RDS", "9999.99", "5151.51", "medium",
              [cause("tenant", "globex", "4848.48", 1.0)], 5),
        event("an-total00001", "total", "total", "30000.00", "26000.00", "low",
              [cause("tenant", "initech", "3131.31", 0.8), cause("tenant", "acme", "10.00", 0.01)],
              7),
    ]


def forecast_rows() -> list[dict[str, object]]:
    rows = []
    for dimension, value, base in (("total", "total", "26000.00"), ("tenant", "acme", "1500.00"),
                                   ("tenant", "globex", "4141.41"), ("service", "Amazon RDS",
                                                                     "9400.00")):
        b = _money(base)
        for horizon, period, actual in (("month_end", "2026-04", b - 100), ("next_month", "2026-05",
                                                                           Decimal(0))):
            rows.append({
                "dimension": dimension, "dimension_value": value, "currency": "USD",
                "period": period, "horizon": horizon, "actual_to_date": actual, "forecast": b,
                "lower_80": b - 50, "upper_80": b + 50, "lower_95": b - 80, "upper_95": b + 80,
                "run_rate": b, "budget": None, "budget_status": None, "model": "ets_add",
                "data_through": dt.date(2026, 4, 26),
            })
    return rows


def recommendation_rows() -> list[dict[str, object]]:
    def rec(rid: str, kind: str, resource: str, current: str, recommended: str, savings: str,
            confidence: float) -> dict[str, object]:
        return {"recommendation_id": rid, "kind": kind, "resource_id": resource, "current": current,
                "recommended": recommended, "monthly_savings": Decimal(savings),
                "confidence": confidence,
                "evidence": json.dumps({"cpu_p99": 0.07, "note": f"{resource} is oversized"}),
                "summary": f"{resource}: cpu p99 7%", "provider": "aws", "region": "us-east-1",
                "currency": "USD"}

    return [
        rec("rec-acme00000001", "rightsize_compute", "i-acme-1", "m5.2xlarge", "m5.large", "321.09",
            0.9),
        rec("rec-globex000001", "idle_instance", "db-globex", "db.r6g.4xlarge", "stop", "6161.61",
            0.8),
        rec("rec-commit000001", "commitment_purchase", "AWS compute (USD)", "on-demand 10/h",
            "Savings Plan 6/h", "5151.51", 0.6),
    ]


def query_cost_rows() -> list[dict[str, object]]:
    def piece(kind: str, tenant: str, query: str | None, cost: str, queries: int, tb: float,
              day: int, warehouse: str = "BI_WH", user: str | None = "ANA") -> dict[str, object]:
        return {"kind": kind, "day": dt.date(2026, 4, day),
                "hour": dt.datetime(2026, 4, day, 10, tzinfo=dt.UTC), "query_id": query,
                "query_hash": f"h-{tenant}" if query else None, "warehouse": warehouse,
                "user_name": user, "role_name": None, "database_name": None,
                "execution_status": "SUCCESS" if query else None, "tenant": tenant,
                "tenant_rule": "tag:tenant", "method": "usage:query_history",
                "service_key": "snowflake", "queries": queries, "execution_ms": 1000.0 * queries,
                "tb_scanned": tb, "compute_credits": 1.0, "cloud_services_credits": 0.0,
                "credits": 1.0, "cost": Decimal(cost), "currency": "USD"}

    return [
        piece("query", "acme", "q-acme-1", "12.34", 1, 0.5, 2),
        piece("query", "acme", "q-acme-2", "23.45", 1, 1.5, 3),
        piece("query", "acme", "q-acme-3", "34.56", 1, 2.0, 4),
        piece("query", "globex", "q-globex-1", "4141.41", 1, 9.0, 2, "ETL_WH", "GLOBEX_SVC"),
        piece("query", "globex", "q-globex-2", "3131.31", 1, 8.0, 3, "ETL_WH", "GLOBEX_SVC"),
        piece("query", "initech", "q-initech-1", "8282.82", 1, 7.0, 4, "ETL_WH", "INITECH_SVC"),
        piece("idle", "idle", None, "7373.73", 0, 0.0, 4, "ETL_WH", None),
    ]


def write_model_outputs(home: Path) -> None:
    """Anomalies (registered in state.db, so they can be labelled), forecasts,
    recommendations and query cost, as their stages write them."""
    wh = Warehouse(home)
    state = open_state(home)
    try:
        run_id = state.start_run("fixture", None, [])
        anomalies = pl.DataFrame(anomaly_rows(), schema=ANOMALY_SCHEMA, orient="row")
        wh.replace_partition(ANOMALIES, {"as_of": AS_OF.isoformat()}, anomalies, run_id=run_id)
        register_events(state, [
            (EventKey(r["anomaly_id"], "USD", r["dimension"], r["dimension_value"], r["start_date"],
                      r["end_date"], Decimal(str(r["impact"])).quantize(Decimal("0.01")),
                      frozenset({f"USD|{r['dimension']}|{r['dimension_value']}"})), "[]")
            for r in anomalies.iter_rows(named=True)], AS_OF)
        forecasts = pl.DataFrame(forecast_rows(), schema=FORECAST_SCHEMA, orient="row")
        wh.replace_partition(FORECASTS, {"as_of": AS_OF.isoformat()}, forecasts, run_id=run_id)
        recs = pl.DataFrame(recommendation_rows(), schema=RECOMMENDATION_SCHEMA, orient="row")
        wh.replace_partition(RECOMMENDATIONS, {"as_of": AS_OF.isoformat()}, recs, run_id=run_id)
        cost = pl.DataFrame(query_cost_rows(), schema=COST_SCHEMA, orient="row")
        wh.replace_partition(QUERY_COST, {"source": "snowflake", "month": "2026-04"}, cost,
                             run_id=run_id)
        state.finish_run(run_id, status="succeeded")
        wh.drop_staging(run_id)
    finally:
        state.close()


def build_org(home: Path, lines: Iterable[Line] = ORG_LINES) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    (home / "allocation.yaml").write_text(ALLOCATION_YAML, encoding="utf-8")
    build_warehouse(home, list(lines))
    write_model_outputs(home)
    return home


def write_access(home: Path, text: str) -> Path:
    path = home / "access.toml"
    path.write_text(text, encoding="utf-8")
    return path


OIDC_ACCESS = """
identity = "oidc"

[[users]]
email = "cfo@example.com"
role = "finance"

[[users]]
email = "sre@example.com"
role = "platform"

[[users]]
email = "viewer@example.com"
role = "viewer"
tenants = ["acme"]
"""
