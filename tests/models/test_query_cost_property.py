"""Property: whatever the query timeline, query cost conserves the metered cost exactly."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from models.query_cost import snowflake_cost, snowflake_expected
from models.query_rules import IdlePolicy, QueryCostConfig
from models.query_store import ATTRIBUTION_SCHEMA, METERING_SCHEMA, QUERY_SCHEMA

BASE = dt.datetime(2026, 3, 1, 20, tzinfo=dt.UTC)  # timelines cross midnight
HOURS = 12
WAREHOUSES = ("W0", "W1", "W2")
TENANTS = ("a", "b", "c", None)
credits = st.decimals(min_value=0, max_value=8, places=9, allow_nan=False, allow_infinity=False)


@st.composite
def timelines(draw: st.DrawFn) -> dict[str, object]:
    meter = []
    for wh in WAREHOUSES[: draw(st.integers(1, 3))]:
        for hour in sorted(draw(st.sets(st.integers(0, HOURS - 1), max_size=HOURS))):
            meter.append({
                "warehouse": wh, "start_time": BASE + dt.timedelta(hours=hour),
                "end_time": BASE + dt.timedelta(hours=hour + 1),
                "credits_compute": draw(credits),
                "credits_cloud_services": draw(st.decimals(min_value=0, max_value=2, places=9)),
            })
    queries, attributed = [], []
    for n in range(draw(st.integers(0, 25))):
        start = BASE + dt.timedelta(seconds=draw(st.integers(0, HOURS * 3600)))
        duration_ms = draw(st.one_of(st.integers(0, 5_000), st.integers(0, 4 * 3600 * 1000)))
        execution_ms = draw(st.integers(0, duration_ms))
        tenant = draw(st.sampled_from(TENANTS))
        query_id = f"q{n}"
        queries.append({
            "query_id": query_id,
            "warehouse": draw(st.sampled_from((*WAREHOUSES, None))),
            "execution_status": draw(st.sampled_from(("SUCCESS", "FAIL"))),
            "start_time": start, "end_time": start + dt.timedelta(milliseconds=duration_ms),
            "execution_ms": execution_ms,
            "bytes_scanned": draw(st.integers(0, 10**13)),
            "cloud_services_credits": draw(st.floats(0, 1, allow_nan=False)),
            "query_hash": f"h{n % 4}",
            "query_tag": None if tenant is None else draw(st.sampled_from(
                (f"tenant={tenant}", f'{{"tenant": "{tenant}", "team": "x"}}', f"team=y;tenant={tenant}"))),
        })
        if draw(st.booleans()) and draw(st.booleans()):
            attributed.append({"query_id": query_id, "credits_attributed_compute":
                               draw(st.floats(0, 3, allow_nan=False))})
    lo = draw(st.integers(0, HOURS))
    window = draw(st.one_of(st.none(), st.tuples(st.just(lo), st.integers(lo, HOURS))))
    return {
        "meter": meter, "queries": queries, "attributed": attributed, "window": window,
        "price": draw(st.decimals(min_value=Decimal("0.5"), max_value=5, places=4)),
        "policy": draw(st.sampled_from(list(IdlePolicy))),
    }


def frame(rows: list[dict[str, object]], schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    df = pl.DataFrame(rows, schema_overrides={k: v for k, v in schema.items()
                                              if any(k in r for r in rows)},
                      strict=False) if rows else pl.DataFrame()
    return pl.LazyFrame(df).select(
        [(pl.col(n).cast(t) if n in df.columns else pl.lit(None, t)).alias(n)
         for n, t in schema.items()])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines())
# Found by hypothesis: a day whose only cloud-services user used a subnormal amount, and
# a query on the next day (the per-day share once overflowed to inf).
@example({
    "meter": [{"warehouse": "W0", "start_time": BASE, "end_time": BASE + dt.timedelta(hours=1),
               "credits_compute": Decimal(0), "credits_cloud_services": Decimal("1E-9")}],
    "queries": [
        {"query_id": "q0", "warehouse": "W0", "execution_status": "SUCCESS", "start_time": BASE,
         "end_time": BASE, "execution_ms": 0, "bytes_scanned": 0,
         "cloud_services_credits": 2.225073858507203e-309, "query_hash": "h0", "query_tag": "tenant=a"},
        {"query_id": "q1", "warehouse": "W0", "execution_status": "SUCCESS",
         "start_time": BASE + dt.timedelta(hours=4),
         "end_time": BASE + dt.timedelta(hours=4, microseconds=1000), "execution_ms": 0,
         "bytes_scanned": 0, "cloud_services_credits": 1.0, "query_hash": "h1", "query_tag": "tenant=a"},
    ],
    "attributed": [], "window": None, "price": Decimal("0.5000"), "policy": IdlePolicy.tenant_share,
})
def test_random_timelines_conserve_cost(case: dict[str, object]) -> None:
    config = QueryCostConfig(credit_price=case["price"], idle_policy=case["policy"],  # type: ignore[arg-type]
                             warehouse_owners={"W1": "owner-team"})
    meter = frame(case["meter"], METERING_SCHEMA)  # type: ignore[arg-type]
    queries = frame(case["queries"], QUERY_SCHEMA)  # type: ignore[arg-type]
    attributed = case["attributed"]
    attribution = (frame(attributed, ATTRIBUTION_SCHEMA)  # type: ignore[arg-type]
                   if attributed else None)
    start = end = None
    if case["window"] is not None:
        lo, hi = case["window"]  # type: ignore[misc]
        start, end = BASE + dt.timedelta(hours=lo), BASE + dt.timedelta(hours=hi)
    if not case["meter"]:
        return
    cost = snowflake_cost(queries, meter, config, attribution=attribution, start=start,
                          end=end).collect()
    expected = snowflake_expected(meter, config, start=start, end=end)
    want = expected["cost"].sum() if expected.height else Decimal(0)
    # Exact, not just to the cent: every pool's rounding remainder is placed.
    assert cost["cost"].sum() == want
    assert all(c >= 0 for c in cost["cost"])
    # Credits are conserved as well (floats, to a tight bound).
    m = meter.collect()
    if start is not None:
        m = m.filter((pl.col("start_time") >= start) & (pl.col("start_time") < end))
    compute = float(m["credits_compute"].sum() or 0)
    assert abs(cost["compute_credits"].sum() - compute) < 1e-6 * max(1.0, compute)
    # Every query is counted once, in the window holding its last hour of execution.
    n = len(case["queries"])  # type: ignore[arg-type]
    if start is None:
        assert cost["queries"].sum() == n
    else:
        assert cost["queries"].sum() <= n
    pieces = cost.filter(pl.col("kind") == "query")
    if start is not None and pieces.height:
        assert pieces["hour"].min() >= start and pieces["hour"].max() < end  # type: ignore[operator]
    # Idle that a policy cannot place stays visible as ``idle``, never dropped.
    assert set(cost["tenant"].unique().to_list()) <= {"a", "b", "c", "unallocated", "idle",
                                                      "owner-team"}
