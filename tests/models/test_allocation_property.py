"""Property: whatever the rows and the rules, allocation conserves every row's cost exactly
and every period's total per currency, and places each row once."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finops.focus import SCHEMA
from finops.ingest import ensure_focus_columns
from finops.warehouse import Warehouse
from models.allocation.config import AllocationConfig
from models.allocation.engine import allocate_period
from tests.models.billing_rows import line

TENANTS = ["acme", "globex", "initech"]
SERVICES = ["Amazon EC2", "Amazon VPC", "AWS Support", "Datadog", "Amazon S3"]

costs = st.decimals(min_value=Decimal("-500"), max_value=Decimal("5000"), places=12,
                    allow_nan=False, allow_infinity=False)
rows = st.lists(
    st.builds(
        lambda day, cost, eff, tenant, service, account, cur, category, status: line(
            f"2026-03-{day:02d}", str(cost), effective=str(eff),
            tags={"tenant": tenant} if tenant else None, service=service, account=account,
            currency=cur, category=category, status=status,
            pricing="Committed" if status == "Used" else "Standard"),
        st.integers(1, 4), costs, costs, st.sampled_from([*TENANTS, None, None]),
        st.sampled_from(SERVICES), st.sampled_from(["1", "2"]), st.sampled_from(["USD", "USD", "EUR"]),
        st.sampled_from(["Usage", "Usage", "Credit", "Tax"]), st.sampled_from([None, None, "Used", "Unused"]),
    ),
    min_size=1, max_size=40,
)
pools = st.lists(
    st.sampled_from([
        {"id": "net", "match": {"service": "Amazon VPC"}, "method": "proportional"},
        {"id": "support", "match": {"service": "AWS Support"}, "method": "even"},
        {"id": "support-fixed", "match": {"service": "AWS Support"}, "method": "fixed",
         "weights": {"acme": 0.2, "globex": 0.8}},
        {"id": "dd", "match": {"service": "Datadog"}, "method": "even", "tenants": ["initech"]},
        {"id": "all-s3", "match": {"service": "Amazon S3", "untagged": True}, "method": "proportional",
         "granularity": "period"},
    ]),
    max_size=4, unique_by=lambda p: p["id"],
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, pools=pools, unused=st.sampled_from(["proportional", "even", "unallocated"]),
       credits=st.booleans())
def test_allocation_conserves_cost(tmp_path: Path, rows: list[dict[str, object]],
                                   pools: list[dict[str, object]], unused: str, credits: bool) -> None:
    cfg = AllocationConfig.model_validate({
        "tenants": [{"id": t} for t in TENANTS], "pools": pools,
        "rules": [{"id": "r-ec2-2", "match": {"service": "Amazon EC2", "account": "2"},
                   "set": {"tenant": "globex"}}],
        "commitments": {"unused": unused, "credits_follow_charges": credits},
    })
    frame = pl.DataFrame([{k: v for k, v in r.items() if k != "__source"} for r in rows],
                         schema={k: SCHEMA[k] for k in rows[0] if k in SCHEMA})
    billing = ensure_focus_columns(
        frame.lazy().with_columns(pl.int_range(pl.len()).cast(pl.Int64).alias("x_SourceRow"))
    )
    out = allocate_period(billing, cfg, Warehouse(tmp_path), "2026-03").collect()

    source = billing.collect()
    for cost in ("BilledCost", "EffectiveCost"):
        want = source.group_by("BillingCurrency").agg(pl.col(cost).sum()).sort("BillingCurrency")
        got = out.group_by("BillingCurrency").agg(pl.col(cost).sum()).sort("BillingCurrency")
        assert want.rows() == got.rows()
        per_row = out.group_by("x_SourceRow").agg(pl.col(cost).sum()).sort("x_SourceRow")
        assert per_row.rows() == source.select("x_SourceRow", cost).sort("x_SourceRow").rows()
    # Every row is placed exactly once: its shares add to one, each part names a method.
    shares = out.group_by("x_SourceRow").agg(pl.col("x_AllocationShare").sum())
    assert all(abs(s - 1.0) < 1e-9 for s in shares["x_AllocationShare"])
    assert out["x_AllocationMethod"].null_count() == 0
    assert set(out["x_AllocationMethod"]) <= {"tag", "rule", "shared", "usage", "unallocated"}
    assert out["x_Tenant"].null_count() == 0
