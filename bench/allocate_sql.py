"""The allocation rules written as DuckDB SQL, for the benchmark's same-run comparison.

It covers what the benchmark's config uses: tag aliases, virtual-tag rules on the match
fields, proportional / even / fixed pools per day and currency, and the built-in pools
(unused commitments, credits and taxes following their charges). Not a second engine:
a yardstick.
"""

from __future__ import annotations

from models.allocation.config import AllocationConfig, Match, glob_to_regex
from models.allocation.match import FIELDS

DAY = ("day", "BillingCurrency")
# One query covers every period, so the period-wide scope carries the period explicitly.
FOLLOW = ("billing_period", "BillingCurrency", "SubAccountId", "ServiceName")


def q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _values(column: str, values: str | list[str]) -> str:
    options = [values] if isinstance(values, str) else values
    plain = [v.lower() for v in options if not any(c in v for c in "*?")]
    parts = []
    if plain:
        parts.append(f"coalesce(lower({column}) IN ({', '.join(q(v) for v in plain)}), false)")
    parts += [f"coalesce(regexp_matches({column}, {q(glob_to_regex(v))}), false)"
              for v in options if any(c in v for c in "*?")]
    return "(" + " OR ".join(parts) + ")"


def condition(match: Match) -> str:
    parts = []
    for field, column in FIELDS.items():
        values = getattr(match, field)
        if values is not None:
            parts.append(_values(f'"{column}"', values))
    for key, values in match.tags.items():
        parts.append(_values(f"Tags[{q(key)}]", values))
    if match.untagged is not None:
        parts.append("tag_tenant IS NULL" if match.untagged else "tag_tenant IS NOT NULL")
    return " AND ".join(parts)


def _dimension(cfg: AllocationConfig, dim: str) -> str:
    return "coalesce(" + ", ".join(
        f"nullif(lower(trim(Tags[{q(a)}])), '')" for a in cfg.tags.aliases(dim)) + ")"


def _case(pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return "NULL"
    return "CASE " + " ".join(f"WHEN {c} THEN {q(v)}" for c, v in pairs) + " END"


def _weights(name: str, keys: tuple[str, ...], basis_filter: str, method: str,
             tenants: list[str], fixed: dict[str, float]) -> str:
    k = ", ".join(keys)
    if method == "proportional":
        where = basis_filter + (f" AND tenant IN ({', '.join(q(t) for t in tenants)})" if tenants else "")
        return (f"{name} AS (SELECT {k}, tenant, c / sum(c) OVER (PARTITION BY {k}) AS w FROM "
                f"(SELECT {k}, tenant, sum(cost) AS c FROM basis WHERE {where} GROUP BY ALL) WHERE c > 0)")
    if method == "even":
        people = "(VALUES " + ", ".join(f"({q(t)})" for t in tenants) + ") AS t(tenant)"
        return (f"{name} AS (SELECT g.*, t.tenant, 1.0 / {len(tenants)} AS w FROM "
                f"(SELECT DISTINCT {k} FROM basis) g CROSS JOIN {people})")
    total = sum(fixed.values())
    rows = ", ".join(f"({q(t)}, {w / total!r})" for t, w in fixed.items())
    values = f"(VALUES {rows}) AS t(tenant, w)"
    return (f"{name} AS (SELECT g.*, t.tenant, t.w FROM (SELECT DISTINCT {k} FROM basis) g "
            f"CROSS JOIN {values})")


def allocation_sql(cfg: AllocationConfig, billing_glob: str, out_dir: str, columns: list[str]) -> list[str]:
    """Statements to run in order: owners into a temporary table (once, as DuckDB would
    otherwise re-evaluate the rules for every consumer of a CTE), then split and write."""
    rules = [(condition(r.match), r.id) for r in cfg.rules]
    rule_tenant = _case([(f"rule_id = {q(r.id)}", r.set.tenant) for r in cfg.rules if r.set.tenant])
    builtin = [
        ("coalesce(CommitmentDiscountStatus = 'Unused', false)", "builtin:unused-commitment"),
        ("coalesce(ChargeCategory = 'Credit', false) OR coalesce(ChargeClass = 'Correction', false)",
         "builtin:credits"),
        ("coalesce(ChargeCategory = 'Tax', false)", "builtin:taxes"),
    ]
    pools = builtin + [(condition(p.match), p.id) for p in cfg.pools]
    tenants = [t.id for t in cfg.tenants]
    weights = [
        _weights("w_unused", DAY, "PricingCategory = 'Committed'", "proportional", [], {}),
        _weights("w_credits", FOLLOW, "true", "proportional", [], {}),
        _weights("w_taxes", FOLLOW, "true", "proportional", [], {}),
    ]
    specs = [("builtin:unused-commitment", "w_unused", DAY), ("builtin:credits", "w_credits", FOLLOW),
             ("builtin:taxes", "w_taxes", FOLLOW)]
    for n, p in enumerate(cfg.pools):
        keys = DAY if p.granularity == "day" else ("billing_period", "BillingCurrency")
        if p.method == "metric":
            # The benchmark warehouse has no query history: like the engine, the pool
            # finds no basis and its rows stay unallocated (`<pool>:no-basis`).
            weights.append(f"w_{n} AS (SELECT NULL::DATE AS day, NULL::VARCHAR AS tenant, "
                           "NULL::DOUBLE AS w WHERE false)")
            specs.append((p.id, f"w_{n}", ("day",)))
            continue
        # As the engine: proportional among the pool's tenants if listed (else all with
        # direct cost); even among the pool's tenants, else the configured ones.
        among = p.tenants if p.method == "proportional" else (p.tenants or tenants)
        weights.append(_weights(f"w_{n}", keys, "true", p.method, among, p.weights))
        specs.append((p.id, f"w_{n}", keys))
    team_of = _case([(f"tenant = {q(t.id)}", t.team) for t in cfg.tenants if t.team])
    money = ("BilledCost", "EffectiveCost")
    base_cols = ", ".join(f'"{c}"' for c in columns if c not in money) + ', "BilledCost", "EffectiveCost"'
    splits = []
    for pool_id, wname, keys in specs:
        splits.append(f"""
  SELECT {base_cols}, x_BillingRow, coalesce(w.tenant, 'unallocated') AS tenant,
         CASE WHEN w.w IS NULL THEN 'unallocated' ELSE 'shared' END AS method,
         CASE WHEN w.w IS NULL THEN {q(pool_id + ':no-basis')} ELSE {q(pool_id)} END AS rule,
         coalesce(w.w, 1.0) AS share, NULL AS team
  FROM pooled p LEFT JOIN {wname} w USING ({", ".join(keys)}) WHERE p.pool = {q(pool_id)}""")
    fix = ", ".join(
        f"""CASE WHEN share_rank = 1 THEN "{m}" - (sum(part_{m}) OVER (PARTITION BY x_BillingRow) - part_{m})
             ELSE part_{m} END::DECIMAL(38,12) AS "{m}\""""
        for m in money)
    parts = ", ".join(f'CAST("{m}" * CAST(share AS DECIMAL(38,12)) AS DECIMAL(38,12)) AS part_{m}'
                      for m in money)
    others = ", ".join(f'"{c}"' for c in columns if c not in money)
    # What the split reads: the output columns and the owner, not the whole billing row
    # (materialising 100M wide rows with their tags spilled more than 60 GB).
    kept = ", ".join(f'"{c}"' for c in dict.fromkeys(
        [*columns, "PricingCategory", "x_BillingRow", "day", "tag_tenant", "tag_team", "rule_id",
         "tenant", "pool"]))
    owners = f"""
CREATE OR REPLACE TEMP TABLE pooled AS
WITH billing AS (
  SELECT *, hash(filename, file_row_number) AS x_BillingRow
  FROM read_parquet({q(billing_glob)}, hive_partitioning = true, filename = true, file_row_number = true,
                    union_by_name = true)
), owned AS (
  SELECT *, {_dimension(cfg, "tenant")} AS tag_tenant, {_dimension(cfg, "team")} AS tag_team,
         CAST(ChargePeriodStart AS DATE) AS day FROM billing
), ruled AS (
  SELECT *, CASE WHEN tag_tenant IS NULL THEN {_case(rules)} END AS rule_id FROM owned
), direct AS (
  SELECT *, coalesce(tag_tenant, {rule_tenant}) AS tenant FROM ruled
), pooled AS (
  SELECT *, CASE WHEN tenant IS NULL THEN {_case(pools)} END AS pool FROM direct
)
SELECT {kept} FROM pooled
"""
    split = f"""
COPY (
WITH basis AS (
  SELECT billing_period, day, BillingCurrency, SubAccountId, ServiceName, PricingCategory, tenant,
         sum(EffectiveCost)::DOUBLE AS cost FROM pooled WHERE tenant IS NOT NULL GROUP BY ALL
), {", ".join(weights)},
direct_parts AS (
  SELECT {base_cols}, tenant,
         CASE WHEN tag_tenant IS NOT NULL THEN 'tag' ELSE 'rule' END AS method,
         CASE WHEN tag_tenant IS NOT NULL THEN 'tag' ELSE rule_id END AS rule, 1.0 AS share, tag_team AS team
  FROM pooled WHERE tenant IS NOT NULL
  UNION ALL
  SELECT {base_cols}, 'unallocated', 'unallocated', 'unallocated', 1.0, tag_team
  FROM pooled WHERE tenant IS NULL AND pool IS NULL
), split_parts AS ({" UNION ALL ".join(splits)}
), ranked AS (
  SELECT *, row_number() OVER (PARTITION BY x_BillingRow ORDER BY share DESC) AS share_rank, {parts}
  FROM split_parts
), all_parts AS (
  SELECT * FROM direct_parts
  UNION ALL
  SELECT {others}, {fix}, tenant, method, rule, share, team FROM ranked
)
SELECT {others}, "BilledCost", "EffectiveCost", tenant AS x_Tenant,
       coalesce(team, {team_of}, 'unallocated') AS x_Team,
       method AS x_AllocationMethod, rule AS x_AllocationRule, share AS x_AllocationShare
FROM all_parts
) TO {q(out_dir)} (FORMAT parquet, PARTITION_BY (billing_period), OVERWRITE_OR_IGNORE true)
"""
    return [owners, split]
