"""Attribution: every billing row finds an owner, with the method and rule that placed it.

Order in which a dollar finds its owner (DESIGN.md), each step recorded in
``x_AllocationMethod`` and ``x_AllocationRule``:
1. ``tag``: the row's own tags (normalised keys and values), or its account's tags;
2. ``rule``: the first virtual-tag rule that matches;
3. ``shared`` / ``usage``: the first pool that matches (built-in pools for unused
   commitments and untagged credits first, then the config's), split among tenants per
   day and currency by the pool's method; a ``metric`` pool is ``usage``;
4. ``unallocated``: the rest, visibly.

A split row becomes one row per tenant; the amounts are rounded to 12 decimals and the
largest share takes the remainder, so each row's parts add up to it exactly. Totals per
period and currency are then checked on every run.

Each billing period is processed on its own: one pass finds each row's owner and stages
its narrow columns, a narrow aggregate of the direct costs (the "global step" of a split)
gives the pool weights, then one streaming pass writes the allocated ledger (ledger.py).
The same functions run per partition on Spark (models/allocation/spark.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import polars as pl

from finops.errors import StageError
from finops.focus import MONEY
from finops.ingest import BILLING, PERIOD
from finops.lookup import gathered, index_of, mapped, row_of
from finops.progress import progress
from finops.state import PeriodTotal, State
from finops.warehouse import ROW_GROUP_ROWS, Warehouse
from models.allocation.config import UNALLOCATED, AllocationConfig, Pool, load_config
from models.allocation.ledger import ALLOCATED, ROW, SOURCE, ledger_metadata
from models.allocation.match import FIELDS, condition
from models.tags import normalise_value

NO_SHARED_SUBPLANS = pl.QueryOptFlags(comm_subplan_elim=False)
CUBE = "cube"
CENT = Decimal("0.01")
UNUSED_POOL = "builtin:unused-commitment"
CREDIT_POOL = "builtin:credits"
TAX_POOL = "builtin:taxes"
FOLLOW_SCOPE: tuple[str, ...] = ("BillingCurrency", "SubAccountId", "ServiceName")

ALLOCATION_COLUMNS = ("x_Tenant", "x_Team", "x_CostCenter", "x_AllocationMethod",
                      "x_AllocationRule", "x_AllocationShare")
LINEAGE = (SOURCE, "x_SourceFile", "x_SourceRow", ROW)
CUBE_DIMENSIONS = ("day", "x_Tenant", "x_Team", "x_CostCenter", "ServiceName", "ServiceCategory",
                   "SubAccountId", "SubAccountName", "ProviderName", "RegionId", "ChargeCategory",
                   "x_AllocationMethod", "BillingCurrency")
# The FOCUS columns allocated/ keeps: the cube's dimensions, what showback, explain and
# access read per row, and the costs. The others stay in billing/ (ledger.py joins them).
LEDGER_FOCUS = ("ChargePeriodStart", "ProviderName", "SubAccountId", "SubAccountName",
                "ServiceName", "ServiceCategory", "RegionId", "ChargeCategory", "BillingCurrency",
                "ResourceId", "ResourceName", "BilledCost", "EffectiveCost")
BASIS_KEYS = ("day", "BillingCurrency", "SubAccountId", "ServiceName", "PricingCategory", "x_Tenant")


def default_config_path(home: Path) -> Path:
    return home / "allocation.yaml"


def resolve_config(home: Path, explicit: Path | None) -> AllocationConfig:
    """The config given, else ``<home>/allocation.yaml`` if present, else the defaults."""
    if explicit is not None:
        return load_config(explicit)
    default = default_config_path(home)
    return load_config(default) if default.exists() else AllocationConfig()


# ---- step 1 and 2: direct owners ---------------------------------------------------------

def _dimension(cfg: AllocationConfig, dimension: str) -> pl.Expr:
    """The dimension's value from the row's tags, else its account's inherited tags."""
    aliases = cfg.tags.aliases(dimension)
    tags = pl.col("Tags")

    def norm(expr: pl.Expr) -> pl.Expr:
        if cfg.tags.case == "lower":
            return normalise_value(expr)
        stripped = expr.str.strip_chars()
        return pl.when(stripped.str.len_bytes() > 0).then(stripped)

    value = pl.coalesce([norm(tags.map.get(a)) for a in aliases])
    inherited = {
        acct: next((v for a in aliases if (v := tags_.get(a))), None)
        for acct, tags_ in cfg.tags.accounts.items()
    }
    inherited = {k: v for k, v in inherited.items() if v}
    if inherited:
        account_value = mapped(pl.col("SubAccountId"), inherited)
        value = pl.coalesce(value, norm(account_value))
    aliases_map = {k.strip().lower(): v for k, v in cfg.tags.values.get(dimension, {}).items()}  # type: ignore[call-overload]
    if aliases_map:
        value = mapped(value, aliases_map, default=value)
    return value


def _tag_rule(cfg: AllocationConfig) -> pl.Expr:
    """``tag:<key>`` naming the alias that gave the tenant (or ``tag:account``)."""
    tags = pl.col("Tags")
    parts = [pl.when(normalise_value(tags.map.get(a)).is_not_null()).then(pl.lit(f"tag:{a}"))
             for a in cfg.tags.aliases("tenant")]
    return pl.coalesce([*parts, pl.lit("tag:account")])


def _chain(pairs: list[tuple[pl.Expr, str]]) -> pl.Expr:
    if not pairs:
        return pl.lit(None, pl.String)
    expr: Any = pl.when(pairs[0][0]).then(pl.lit(pairs[0][1]))
    for cond, value in pairs[1:]:
        expr = expr.when(cond).then(pl.lit(value))
    return cast(pl.Expr, expr.otherwise(pl.lit(None, pl.String)))


def builtin_pools(cfg: AllocationConfig) -> list[tuple[pl.Expr, str]]:
    out = []
    if cfg.commitments.unused != "unallocated":
        out.append(((pl.col("CommitmentDiscountStatus") == "Unused").fill_null(False), UNUSED_POOL))
    if cfg.commitments.credits_follow_charges:
        out.append(((pl.col("ChargeCategory") == "Credit").fill_null(False)
                    | (pl.col("ChargeClass") == "Correction").fill_null(False), CREDIT_POOL))
    if cfg.commitments.taxes_follow_charges:
        out.append(((pl.col("ChargeCategory") == "Tax").fill_null(False), TAX_POOL))
    return out


def with_owners(billing: pl.LazyFrame, cfg: AllocationConfig) -> pl.LazyFrame:
    """Adds the direct owner (tag, then rule) and the pool a row falls to, evaluated on
    every row of ``billing`` (``owners`` calls it once per distinct decision input)."""
    tag_tenant = _dimension(cfg, "tenant")
    rule_id = _chain([(condition(r.match, tag_tenant=pl.col("__tag_tenant")), r.id) for r in cfg.rules])
    rule_tenant = {r.id: r.set.tenant for r in cfg.rules if r.set.tenant}
    rule_team = {r.id: r.set.team for r in cfg.rules if r.set.team}
    rule_cc = {r.id: r.set.cost_center for r in cfg.rules if r.set.cost_center}

    def from_rule(mapping: dict[str, str]) -> pl.Expr:
        return mapped(pl.col("__rule"), mapping)

    lf = billing.with_columns(
        tag_tenant.alias("__tag_tenant"),
        _dimension(cfg, "team").alias("__tag_team"),
        _dimension(cfg, "cost_center").alias("__tag_cc"),
    ).with_columns(
        pl.when(pl.col("__tag_tenant").is_null()).then(rule_id).alias("__rule"),
    )
    tenant = pl.coalesce(pl.col("__tag_tenant"), from_rule(rule_tenant))
    lf = lf.with_columns(
        tenant.alias("x_Tenant"),
        pl.coalesce(pl.col("__tag_team"), from_rule(rule_team)).alias("x_Team"),
        pl.coalesce(pl.col("__tag_cc"), from_rule(rule_cc)).alias("x_CostCenter"),
        pl.when(pl.col("__tag_tenant").is_not_null()).then(pl.lit("tag"))
        .when(tenant.is_not_null()).then(pl.lit("rule")).alias("x_AllocationMethod"),
        pl.when(pl.col("__tag_tenant").is_not_null()).then(_tag_rule(cfg))
        .when(tenant.is_not_null()).then(pl.col("__rule")).alias("x_AllocationRule"),
    )
    pools = [*builtin_pools(cfg),
             *[(condition(p.match, tag_tenant=pl.col("__tag_tenant")), p.id) for p in cfg.pools]]
    lf = lf.with_columns(
        pl.when(pl.col("x_AllocationMethod").is_null()).then(_chain(pools)).alias("__pool")
    )
    # A row that stays whole takes its tenant's team and cost centre from the hierarchy
    # where neither tag nor rule gave one; a split row takes its new tenant's (split_groups).
    stays = pl.col("__pool").is_null()
    return lf.with_columns(
        pl.when(stays).then(_in_hierarchy(pl.col("x_Team"), cfg.tenant_team())).alias("x_Team"),
        pl.when(stays).then(_in_hierarchy(pl.col("x_CostCenter"), cfg.tenant_cost_center()))
        .alias("x_CostCenter"),
    ).drop("__tag_tenant", "__tag_team", "__tag_cc", "__rule")


def _in_hierarchy(given: pl.Expr, of_tenant: dict[str, str], tenant: str = "x_Tenant") -> pl.Expr:
    return pl.coalesce(given, mapped(pl.col(tenant), of_tenant), pl.lit(UNALLOCATED))


# What ``with_owners`` decides, and what it reads beyond the columns rules and pools match.
OWNER_COLUMNS = ("x_Tenant", "x_Team", "x_CostCenter", "x_AllocationMethod", "x_AllocationRule", "__pool")
ALWAYS_READ = ("SubAccountId", "ChargeCategory", "ChargeClass", "CommitmentDiscountStatus", "Tags")
KEY = "__key"


def decision_columns(cfg: AllocationConfig, schema: pl.Schema) -> list[str]:
    """The columns a row's owner depends on: tags, account, the built-in pools' columns
    and whatever the config's rules and pools match on."""
    used = set(ALWAYS_READ)
    for match in [*(r.match for r in cfg.rules), *(p.match for p in cfg.pools)]:
        used |= {column for field, column in FIELDS.items() if getattr(match, field) is not None}
    return [c for c in schema if c in used]


def decision_key(columns: list[str]) -> pl.Expr:
    return pl.struct(columns).hash().alias(KEY)


def owner_table(distinct: pl.DataFrame, cfg: AllocationConfig) -> pl.DataFrame | None:
    """The owner of each distinct combination of the decision columns (with its ``KEY``),
    keyed by it; None when two different combinations share a hash (then the period is
    decided row by row, the same way).

    A billing period has ~30 times fewer distinct combinations than rows (resources
    repeat daily), so 50 rules with patterns cost almost nothing here.
    """
    if distinct[KEY].is_duplicated().any():
        return None
    return with_owners(distinct.lazy(), cfg).select(KEY, *OWNER_COLUMNS).collect()


def decisions(billing: pl.LazyFrame, cfg: AllocationConfig, columns: list[str]) -> pl.DataFrame | None:
    distinct = billing.select(columns).unique().collect(engine="streaming")
    return owner_table(distinct.with_columns(decision_key(columns)), cfg)


def _decided(rows: pl.LazyFrame, key: pl.Expr, table: pl.DataFrame) -> pl.LazyFrame:
    decided = gathered(index_of(key, table[KEY]), table.drop(KEY))
    return rows.with_columns(decided.alias("__owner")).unnest("__owner")


def _dated(billing: pl.LazyFrame) -> pl.LazyFrame:
    return billing.with_columns(pl.col("ChargePeriodStart").dt.date().alias("day"))


def owners(billing: pl.LazyFrame, cfg: AllocationConfig) -> pl.LazyFrame:
    """``billing`` with ``day``, its direct owner (x_ columns) and its pool (``__pool``)."""
    columns = decision_columns(cfg, billing.collect_schema())
    table = decisions(billing, cfg, columns)
    if table is None:
        return with_owners(_dated(billing), cfg)
    return _decided(_dated(billing), decision_key(columns), table)


def staged_owners(billing: pl.LazyFrame, cfg: AllocationConfig, path: Path) -> pl.LazyFrame:
    """``owners`` of a period from one pass over its billing rows, which both finds the
    distinct decision inputs and writes each row's ledger and basis columns with its
    decision key to ``path``. The later passes read that narrow file: the Tags map is
    decoded and hashed once, not once per pass."""
    columns = decision_columns(cfg, billing.collect_schema())
    keyed = _dated(billing).with_columns(decision_key(columns))
    kept = narrow_columns(keyed.collect_schema())
    options: dict[str, Any] = {"engine": "streaming", "compression": "lz4",
                               "row_group_size": ROW_GROUP_ROWS}
    distinct, _ = pl.collect_all([keyed.select(*columns, KEY).unique(),
                                  keyed.select(*kept, KEY).sink_parquet(path, lazy=True, **options)],
                                 engine="streaming")
    table = owner_table(distinct, cfg)
    if table is None:
        decided = with_owners(_dated(billing), cfg)
        decided.select(narrow_columns(decided.collect_schema())).sink_parquet(path, **options)
        return pl.scan_parquet(path)
    return _decided(pl.scan_parquet(path), pl.col(KEY), table).drop(KEY)


# ---- step 3: pool weights (the small global step) ----------------------------------------

def period_summary(owned: pl.LazyFrame) -> pl.DataFrame:
    """One pass over a period: cost per basis key and whether the owner is direct. It
    gives both the pools' basis and the input totals the run is reconciled against."""
    return (
        owned.group_by(*BASIS_KEYS, pl.col("x_AllocationMethod").is_not_null().alias("__direct"))
        .agg(pl.col("EffectiveCost").sum().alias("__effective"),
             pl.col("BilledCost").sum().alias("__billed"), pl.len().alias("__rows"))
        .collect(engine="streaming")
    )


def basis_of(summary: pl.DataFrame) -> pl.DataFrame:
    """Direct (tag and rule) EffectiveCost per day, currency, account, service, pricing
    category and tenant: everything the pools' weights are computed from."""
    return summary.filter(pl.col("__direct")).select(
        *BASIS_KEYS, pl.col("__effective").cast(pl.Float64).alias("cost"))


def direct_basis(owned: pl.LazyFrame) -> pl.DataFrame:
    return basis_of(period_summary(owned))


@dataclass(frozen=True)
class PoolSpec:
    id: str
    keys: tuple[str, ...]
    method: str  # shared or usage
    weights: pl.DataFrame  # keys..., x_Tenant, __w


def _normalise(df: pl.DataFrame, keys: tuple[str, ...]) -> pl.DataFrame:
    df = df.filter(pl.col("__w") > 0)
    total = pl.col("__w").sum().over(keys) if keys else pl.col("__w").sum()
    return df.with_columns((pl.col("__w") / total).alias("__w"))


def _proportional(basis: pl.DataFrame, keys: tuple[str, ...], tenants: list[str]) -> pl.DataFrame:
    df = basis.filter(pl.col("x_Tenant").is_in(tenants)) if tenants else basis
    return _normalise(df.group_by([*keys, "x_Tenant"]).agg(pl.col("cost").sum().alias("__w")), keys)


def _even(basis: pl.DataFrame, keys: tuple[str, ...], tenants: list[str]) -> pl.DataFrame:
    groups = basis.select(keys).unique() if keys else pl.DataFrame()
    if tenants:
        people = pl.DataFrame({"x_Tenant": tenants})
        df = groups.join(people, how="cross") if keys else people
    else:
        df = basis.filter(pl.col("cost") != 0).select([*keys, "x_Tenant"]).unique()
    return _normalise(df.with_columns(pl.lit(1.0).alias("__w")), keys)


def _metric(pool: Pool, wh: Warehouse, period: str) -> pl.DataFrame:
    assert pool.metric is not None
    if pool.metric == "query_history" or pool.metric.startswith("query_history:"):
        # Each tenant's share of the warehouse's query cost per day (models/query_cost.py);
        # "query_history:snowflake" keeps one service's shares.
        from models.query_cost import bridge_shares

        shares = bridge_shares(wh)
        if ":" in pool.metric:
            shares = shares.filter(pl.col("service_key") == pool.metric.split(":", 1)[1])
        df = shares.select(pl.col("day").cast(pl.Date), pl.col("tenant").alias("x_Tenant"),
                           pl.col("share").cast(pl.Float64).alias("__w")).collect()
    else:
        path = Path(pool.metric)
        if not path.exists():
            raise StageError(f"pool {pool.id!r}: metric file {path} does not exist",
                             hint="Give a CSV with columns day, tenant, value.")
        raw = pl.read_csv(path, try_parse_dates=True)
        missing = {"day", "tenant", "value"} - set(raw.columns)
        if missing:
            raise StageError(f"pool {pool.id!r}: metric file {path} lacks column(s) {sorted(missing)}",
                             hint="The metric CSV needs day, tenant, value.")
        df = raw.select(pl.col("day").cast(pl.Date), pl.col("tenant").cast(pl.String).alias("x_Tenant"),
                        pl.col("value").cast(pl.Float64).alias("__w"))
    df = df.filter(pl.col("day").dt.strftime("%Y-%m") == period)
    df = df.group_by("day", "x_Tenant").agg(pl.col("__w").sum())
    if pool.tenants:
        df = df.filter(pl.col("x_Tenant").is_in(pool.tenants))
    return _normalise(df, ("day",))


def pool_specs(cfg: AllocationConfig, basis: pl.DataFrame, wh: Warehouse, period: str) -> list[PoolSpec]:
    day: tuple[str, ...] = ("day", "BillingCurrency")
    specs = []
    if cfg.commitments.unused != "unallocated":
        committed = basis.filter(pl.col("PricingCategory") == "Committed")
        weights = (_proportional(committed, day, []) if cfg.commitments.unused == "proportional"
                   else _even(basis, day, []))
        specs.append(PoolSpec(UNUSED_POOL, day, "shared", weights))
    follow = _proportional(basis, FOLLOW_SCOPE, [])
    if cfg.commitments.credits_follow_charges:
        specs.append(PoolSpec(CREDIT_POOL, FOLLOW_SCOPE, "shared", follow))
    if cfg.commitments.taxes_follow_charges:
        specs.append(PoolSpec(TAX_POOL, FOLLOW_SCOPE, "shared", follow))
    configured = [t.id for t in cfg.tenants]
    for pool in cfg.pools:
        keys = day if pool.granularity == "day" else ("BillingCurrency",)
        if pool.method == "proportional":
            weights = _proportional(basis, keys, pool.tenants)
        elif pool.method == "even":
            weights = _even(basis, keys, pool.tenants or configured)
        elif pool.method == "fixed":
            total = sum(pool.weights.values())
            fixed = pl.DataFrame({"x_Tenant": list(pool.weights),
                                  "__w": [w / total for w in pool.weights.values()]})
            groups = basis.select(keys).unique()
            weights = groups.join(fixed, how="cross")
        else:
            weights = _metric(pool, wh, period)
            keys = ("day",)
        specs.append(PoolSpec(pool.id, keys, "usage" if pool.method == "metric" else "shared", weights))
    return specs


# ---- step 3 and 4: the allocated rows ----------------------------------------------------

# Every pool's weights in one table, so a pool row needs one lookup, not one per pool. A
# key a pool does not split by is null on both the row and the weights.
KEY_COLUMNS: dict[str, tuple[str, pl.DataType]] = {
    "day": ("__k_day", pl.Date()),
    "BillingCurrency": ("__k_cur", pl.String()),
    "SubAccountId": ("__k_acct", pl.String()),
    "ServiceName": ("__k_svc", pl.String()),
}


def combined_weights(specs: list[PoolSpec]) -> pl.DataFrame:
    """Every pool's weights with, per split group, each tenant's cumulative share range
    [__lo, __hi): the last tenant's __hi is exactly 1."""
    frames = []
    for spec in specs:
        w = spec.weights
        ids = pl.DataFrame({"__pool": [spec.id] * w.height}, schema={"__pool": pl.String})
        frames.append(ids.with_columns(
            *[(w[k].cast(dtype) if k in spec.keys else pl.lit(None, dtype)).alias(alias)
              for k, (alias, dtype) in KEY_COLUMNS.items()],
            w["x_Tenant"].cast(pl.String).alias("__share_tenant"),
            w["__w"].cast(pl.Float64).alias("__w"),
            pl.lit(spec.method).alias("__method"),
        ))
    schema = pl.Schema({"__pool": pl.String(), **dict(KEY_COLUMNS.values()),
                        "__share_tenant": pl.String(), "__w": pl.Float64(), "__method": pl.String()})
    df = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    group = ["__pool", *[a for a, _ in KEY_COLUMNS.values()]]
    df = df.sort([*group, "__w", "__share_tenant"], descending=[*[False] * len(group), True, False],
                 nulls_last=True)
    hi = pl.col("__w").cum_sum().over(group)
    last = pl.int_range(pl.len()).over(group) == pl.len().over(group) - 1
    df = df.with_columns(pl.when(last).then(pl.lit(1.0)).otherwise(hi).alias("__hi"))
    return df.with_columns(pl.col("__hi").shift(1).over(group).fill_null(0.0).alias("__lo"))


SPLIT_GROUP = ["__pool", *[a for a, _ in KEY_COLUMNS.values()]]
SHARE_FIELDS = ("__share_tenant", "__share_team", "__share_cc", "__w", "__lo", "__hi", "__method")


def split_groups(specs: list[PoolSpec], cfg: AllocationConfig) -> pl.DataFrame:
    """One row per split group (a pool and the keys it splits by) with its tenants'
    shares as a list, in ``combined_weights`` order, each with the tenant's team and
    cost centre."""
    weights = combined_weights(specs).with_columns(
        _in_hierarchy(pl.lit(None, pl.String), cfg.tenant_team(), "__share_tenant").alias("__share_team"),
        _in_hierarchy(pl.lit(None, pl.String), cfg.tenant_cost_center(), "__share_tenant")
        .alias("__share_cc"))
    return weights.group_by(SPLIT_GROUP, maintain_order=True).agg(
        pl.struct(*SHARE_FIELDS).alias("__shares"))


def output_columns(schema: pl.Schema) -> list[str]:
    """The ledger's columns: what ``allocated/`` keeps of a billing row, its lineage and
    its allocation. A split row repeats these ~20 columns, not the ~60 of the FOCUS row
    (the Tags map above all); the rest are read from ``billing/`` by ``x_BillingRow``
    (models/allocation/ledger.py)."""
    kept = [c for c in LEDGER_FOCUS if c in schema]
    period = [PERIOD] if PERIOD in schema else []
    return [*kept, *[c for c in LINEAGE if c in schema], *ALLOCATION_COLUMNS, *period]


def allocate_lazy(owned: pl.LazyFrame, specs: list[PoolSpec], cfg: AllocationConfig) -> pl.LazyFrame:
    """All allocated rows of one period, in one pass over the input.

    Rows with a direct owner or none pass through. A pool row finds its split group's
    shares (it becomes one row per tenant) and each tenant's part is
    ``round(C × hi) − round(C × lo)`` over its cumulative share range, so the parts
    telescope to ``round(C × 1) − round(C × 0) = C`` exactly, with no window over rows
    (which would stop the query streaming).
    """
    schema = owned.collect_schema()
    cols = output_columns(pl.Schema({**schema, **dict.fromkeys(ALLOCATION_COLUMNS, pl.String())}))
    # Narrow before a pool row is repeated per tenant: repeating wide rows was most of the time.
    keyed = owned.select(narrow_columns(schema)).with_columns(
        pl.when(pl.col("__pool").is_in([s.id for s in specs if k in s.keys])).then(pl.col(k))
        .otherwise(None).cast(dtype).alias(alias)
        for k, (alias, dtype) in KEY_COLUMNS.items()
    )
    # Each pool row takes its split group's list of shares and becomes one row per share:
    # a lookup and an explode, where a join would copy every wide row through a hash table.
    groups = split_groups(specs, cfg)
    shares = gathered(row_of(SPLIT_GROUP, groups.select(SPLIT_GROUP)), groups.select("__shares"))
    joined = (keyed.with_columns(shares.struct.field("__shares"))
              .explode("__shares").unnest("__shares"))
    pooled = pl.col("__pool").is_not_null()
    has = pl.col("__w").is_not_null()
    share = pl.Decimal(38, 12)
    amounts = []
    for name in ("BilledCost", "EffectiveCost"):
        upper = (pl.col(name) * pl.col("__hi").cast(share)).cast(MONEY)
        lower = (pl.col(name) * pl.col("__lo").cast(share)).cast(MONEY)
        amounts.append(pl.when(has).then(upper - lower).otherwise(pl.col(name)).cast(MONEY).alias(name))
    placed = joined.with_columns(
        *amounts,
        pl.when(has).then(pl.col("__share_tenant")).when(pooled).then(pl.lit(UNALLOCATED))
        .otherwise(pl.col("x_Tenant").fill_null(UNALLOCATED)).alias("x_Tenant"),
        pl.when(has).then(pl.col("__method")).when(pooled).then(pl.lit(UNALLOCATED))
        .otherwise(pl.col("x_AllocationMethod").fill_null(UNALLOCATED)).alias("x_AllocationMethod"),
        pl.when(has).then(pl.col("__pool")).when(pooled).then(pl.col("__pool") + ":no-basis")
        .otherwise(pl.col("x_AllocationRule").fill_null(UNALLOCATED)).alias("x_AllocationRule"),
        pl.when(has).then(pl.col("__w")).otherwise(pl.lit(1.0)).alias("x_AllocationShare"),
        pl.when(has).then(pl.col("__share_team")).when(pooled).then(pl.lit(UNALLOCATED))
        .otherwise(pl.col("x_Team")).alias("x_Team"),
        pl.when(has).then(pl.col("__share_cc")).when(pooled).then(pl.lit(UNALLOCATED))
        .otherwise(pl.col("x_CostCenter")).alias("x_CostCenter"),
    )
    return placed.select(cols)


def prepare(billing: pl.LazyFrame, cfg: AllocationConfig) -> pl.LazyFrame:
    """``billing`` with its owners; rows are numbered (``x_BillingRow``) unless the scan
    numbered them already (per partition: :func:`allocate`)."""
    if ROW not in billing.collect_schema():
        billing = billing.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
    return owners(billing, cfg)


def narrow_columns(schema: pl.Schema) -> list[str]:
    """What the passes after the owners read of a period: the ledger's columns, the
    basis keys and the owner (those of them in ``schema``)."""
    wanted = [*LEDGER_FOCUS, *LINEAGE, *BASIS_KEYS, *OWNER_COLUMNS, PERIOD]
    return [c for c in dict.fromkeys(wanted) if c in schema]


def allocate_period(billing: pl.LazyFrame, cfg: AllocationConfig, wh: Warehouse,
                    period: str) -> pl.LazyFrame:
    owned = prepare(billing, cfg)
    specs = pool_specs(cfg, direct_basis(owned), wh, period)
    return allocate_lazy(owned, specs, cfg)


def cube_frame(allocated: pl.LazyFrame) -> pl.LazyFrame:
    return (
        allocated.with_columns(pl.col("ChargePeriodStart").dt.date().alias("day"))
        .group_by(CUBE_DIMENSIONS)
        .agg(pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum(), pl.len().alias("rows"))
        .sort(CUBE_DIMENSIONS, nulls_last=True)
    )


# ---- the stage -----------------------------------------------------------------------------

@dataclass
class PeriodCheck:
    period: str
    currency: str
    input_billed: Decimal
    input_effective: Decimal
    allocated_billed: Decimal
    allocated_effective: Decimal
    input_rows: int = 0
    allocated_rows: int = 0

    @property
    def ok(self) -> bool:
        return (abs(self.input_billed - self.allocated_billed) < CENT / 2
                and abs(self.input_effective - self.allocated_effective) < CENT / 2)


@dataclass
class AllocationResult:
    run_id: str
    periods: list[str]
    checks: list[PeriodCheck]
    coverage: pl.DataFrame  # method, BillingCurrency, effective_cost, share


def _sums(lf: pl.LazyFrame, rows: str) -> dict[str, tuple[Decimal, Decimal, int]]:
    """Billed, effective and row count per currency from an aggregate (summary or cube)."""
    df = lf.group_by("BillingCurrency").agg(
        pl.col("BilledCost").sum(), pl.col("EffectiveCost").sum(), pl.col(rows).sum()
    ).collect(engine="streaming")
    return {r[0]: (r[1] or Decimal(0), r[2] or Decimal(0), int(r[3])) for r in df.iter_rows()}


def allocate(wh: Warehouse, state: State, *, periods: list[str] | None = None,
             config: AllocationConfig | None = None, config_path: Path | None = None) -> AllocationResult:
    """Allocate every billing period (or those given) and rebuild their cube partitions."""
    cfg = config if config is not None else resolve_config(wh.home, config_path)
    available = sorted({k[PERIOD] for k in wh.partitions(BILLING)})
    todo = [p for p in available if periods is None or p in periods]
    run_id = state.start_run("allocate", None, todo)
    checks: list[PeriodCheck] = []
    try:
        with progress("allocating", len(todo)) as step:
            for period in todo:
                fingerprint = ledger_metadata(wh, period)
                staged = wh.staging_dir(run_id) / f"owned-{period}.parquet"
                owned = staged_owners(wh.scan(BILLING, where={PERIOD: period}, row_index=ROW), cfg,
                                      staged)
                summary = period_summary(owned)
                specs = pool_specs(cfg, basis_of(summary), wh, period)
                # The two branches (whole rows, split rows) each scan the period again: a
                # shared cached subplan would hold the whole period in memory instead.
                wh.replace_partition(ALLOCATED, {PERIOD: period}, allocate_lazy(owned, specs, cfg),
                                     run_id=run_id, optimizations=NO_SHARED_SUBPLANS,
                                     metadata=fingerprint, checksum=False)
                staged.unlink()
                if ledger_metadata(wh, period) != fingerprint:
                    raise StageError(f"billing of {period} was collected again while it was being "
                                     "allocated", hint="Run `finops allocate` again.")
                allocated = wh.scan(ALLOCATED, where={PERIOD: period})
                wh.replace_partition(CUBE, {PERIOD: period}, cube_frame(allocated), run_id=run_id,
                                     checksum=False)
                before = _sums(summary.lazy().rename({"__billed": "BilledCost",
                                                      "__effective": "EffectiveCost"}), "__rows")
                after = _sums(wh.scan(CUBE, where={PERIOD: period}), "rows")
                zero = (Decimal(0), Decimal(0), 0)
                for cur in sorted(set(before) | set(after)):
                    ib, ie, ir = before.get(cur, zero)
                    ab, ae, ar = after.get(cur, zero)
                    checks.append(PeriodCheck(period, cur, ib, ie, ab, ae, ir, ar))
                step.advance(period)
        # Periods no longer in billing must not linger in allocated results.
        for keys in wh.partitions(ALLOCATED):
            if keys[PERIOD] not in available:
                wh.delete_partition(ALLOCATED, keys)
                wh.delete_partition(CUBE, keys)
        bad = [c for c in checks if not c.ok]
        if bad:
            raise StageError(
                "allocation lost or duplicated cost: "
                + "; ".join(f"{c.period} {c.currency}: input {c.input_billed}, "
                            f"allocated {c.allocated_billed}" for c in bad)
            )
        coverage = coverage_by_method(wh, todo)
        state.finish_run(
            run_id, status="succeeded", rows_in=sum(c.input_rows for c in checks),
            rows_out=sum(c.allocated_rows for c in checks), rows_rejected=0,
            totals=[PeriodTotal(c.period, c.currency, c.allocated_rows, c.allocated_billed,
                                c.allocated_effective) for c in checks],
        )
    except BaseException as exc:
        state.finish_run(run_id, status="failed", message=str(exc)[:2000])
        raise
    finally:
        wh.drop_staging(run_id)
    return AllocationResult(run_id, todo, checks, coverage)


def coverage_by_method(wh: Warehouse, periods: list[str] | None = None) -> pl.DataFrame:
    if not wh.has_data(CUBE):
        return pl.DataFrame(schema={"method": pl.String, "BillingCurrency": pl.String,
                                    "effective_cost": MONEY, "share": pl.Float64})
    cube = wh.scan(CUBE, where={PERIOD: periods} if periods else None)
    df = (
        cube.group_by(pl.col("x_AllocationMethod").alias("method"), "BillingCurrency")
        .agg(pl.col("EffectiveCost").sum().alias("effective_cost"))
        .collect()
    )
    return df.with_columns(
        (pl.col("effective_cost").cast(pl.Float64)
         / pl.col("effective_cost").cast(pl.Float64).sum().over("BillingCurrency")).alias("share")
    ).sort("BillingCurrency", "method")
